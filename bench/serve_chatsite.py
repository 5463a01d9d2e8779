"""Run chatsite under daphne in this process, counting its database writes (for bench_*.py).

    bench/serve_chatsite.py setup --conversations 400   # migrate, one user, 400 conversations;
                                                         # prints {"cookie", "conversations"}
    bench/serve_chatsite.py setup --conversations 8 --model local \
        --generation-settings '{"max_output_tokens": 256}'   # the offline model's, with settings
    bench/serve_chatsite.py serve --port 8003

Settings come from the environment, as with `make run` (DATABASE_URL, SECRET_KEY,
GEMINI_API_KEY, GEMINI_API_BASE_URL, ...). Every INSERT, UPDATE and DELETE the server runs is
counted by a `connection.execute_wrapper` installed on `connection_created`, and
GET /_bench/stats answers the counts. That endpoint exists only in this launcher.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import threading
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

MODEL = "gemini-3.5-flash"
STATS_PATH = "/_bench/stats"
WRITE = re.compile(r'\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+"?(\w+)', re.I)

writes: Counter[str] = Counter()  # e.g. "UPDATE conversations_turn" -> statements
_writes_lock = threading.Lock()  # database work runs in worker threads


def count_writes(execute, sql, params, many, context):
    match = WRITE.match(sql)
    if match:
        with _writes_lock:
            # executemany runs the statement once for each row of parameters.
            writes[f"{match[1].split()[0].upper()} {match[2]}"] += len(params) if many else 1
    return execute(sql, params, many, context)


def install_write_counter() -> None:
    from django.db.backends.signals import connection_created

    def on_connection_created(sender, connection, **kwargs) -> None:
        # The wrapper object outlives its connections (CONN_MAX_AGE=0 reconnects per hop).
        if count_writes not in connection.execute_wrappers:
            connection.execute_wrappers.append(count_writes)

    connection_created.connect(on_connection_created, weak=False)


def with_stats(app):
    """The ASGI app, plus GET /_bench/stats for the benchmark driver."""

    async def application(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == STATS_PATH:
            with _writes_lock:
                body = json.dumps({"writes": dict(writes)}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return application


def setup(conversations: int, model: str = MODEL,
          generation_settings: dict | None = None) -> dict:
    """A fresh database with one user, N conversations of `model` (with `generation_settings`
    when given) and a logged-in session cookie."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import transaction

    from conversations import services

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench")
    with transaction.atomic():
        made = [services.conversation_create(owner=user, model=model)
                for _ in range(conversations)]
        if generation_settings is not None:
            for conversation in made:
                services.conversation_update_settings(
                    conversation=conversation, generation_settings=generation_settings)
    ids = [str(conversation.pk) for conversation in made]
    session = importlib.import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {"cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
            "conversations": ids}


def serve(port: int) -> None:
    from bench.relays.common import serve_daphne
    from chatsite.asgi import application  # django.setup(), which installs daphne's reactor

    install_write_counter()
    serve_daphne(with_stats(application), port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    setup_parser = commands.add_parser("setup", help="create the database and print its ids")
    setup_parser.add_argument("--conversations", type=int, required=True)
    setup_parser.add_argument("--model", default=MODEL, help=f"their model (default {MODEL}; "
                              "the offline one is 'local')")
    setup_parser.add_argument("--generation-settings", type=json.loads, metavar="JSON",
                              help='e.g. \'{"temperature": 0.2, "max_output_tokens": 256}\'')
    serve_parser = commands.add_parser("serve", help="serve chatsite with the write counter")
    serve_parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "setup":
        print(json.dumps(setup(args.conversations, args.model, args.generation_settings)))
    else:
        serve(args.port)


if __name__ == "__main__":
    main()
