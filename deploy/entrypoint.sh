#!/bin/sh
# The image's entry point.
#   serve            daphne on 0.0.0.0:$PORT (the default command)
#   setup            apply migrations, then create the first superuser if there is no user
#   manage ARGS...   any manage.py command, e.g. `manage interrupt_turns`
#   anything else    run as given
set -eu
cd /app

case "${1:-serve}" in
    serve)
        # With LOG_FORMAT=json every line on the log is JSON: daphne's own access log is
        # plain text, so it is left to the proxy (nginx logs each request with its id).
        verbosity=1
        if [ "${LOG_FORMAT:-plain}" = json ]; then verbosity=0; fi
        # --proxy-headers: the client's address from X-Forwarded-For. Only the proxy can
        # reach this port (docker-compose.yml publishes nginx's alone).
        exec daphne --bind 0.0.0.0 --port "${PORT:-8000}" --proxy-headers \
            --verbosity "$verbosity" chatsite.asgi:application
        ;;
    setup)
        python manage.py migrate --noinput
        exec python manage.py ensure_admin
        ;;
    manage)
        shift
        exec python manage.py "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
