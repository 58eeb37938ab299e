# The commands a platform engineer and CI run. Everything goes through uv's locked environment.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --frozen
STACK ?= dev
PYTEST_ARGS ?=
# One worker per core; each test file stays on one worker, so its module fixtures (a moto
# account, a jupyter server) start once. Most of the suite waits on real processes (hub,
# browser, moto server) or is CPU-bound Python, so two workers on two cores halve the run
# (README, "Tests"). PYTEST_WORKERS= runs everything in one process.
PYTEST_WORKERS ?= -n auto --dist loadfile --no-loadscope-reorder

A ?= staging
B ?= prod

.PHONY: setup render check diff test lint format bench load clean import-plan preflight smoke screenshots system-packages

setup: ## Install the locked Python environment and the Node test tools
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --compile-bytecode
	npm ci --no-audit --no-fund --loglevel=error

render: setup ## Render one stack offline (STACK=dev|dev3|test|staging|prod|all) into build/<stack>/
	$(RUN) python -m tools.render $(STACK)

check: render ## Validate the rendered output: schemas, parliament, policy pack (STACK=... or all)
	$(RUN) python -m tools.check $(STACK)

diff: setup ## What differs between two environments (A=staging B=prod)
	$(RUN) python -m tools.render $(A) $(B) >/dev/null
	$(RUN) python -m tools.diff $(A) $(B)

test: system-packages setup ## Run the whole test suite (slow suites included)
	$(RUN) pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

system-packages: ## The Debian packages the tests drive (.ci/debian-packages): installed as root, else the command that does
	@.ci/system-packages

lint: ## ruff lint, format check and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format:
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

import-plan: setup ## What `pulumi import` must adopt before the first up (STACK=...) -> build/<stack>/import.json
	$(RUN) python -m tools.import_plan $(STACK)

preflight: setup ## Read-only checks of the live environment before any up (STACK=...; PREFLIGHT_ARGS=--adopting for an ArgoCD-run one)
	$(RUN) python -m tools.preflight $(STACK) $(PREFLIGHT_ARGS)

smoke: setup ## Read-only checks that a deployed environment works (STACK=...; after every up; SMOKE_HUB_TOKEN, PULUMI_STACK_NAME)
	$(RUN) python -m tools.smoke $(STACK) $(SMOKE_ARGS)

screenshots: setup ## Refresh the README's spawn-page screenshots in docs/screenshots/ (headless Chromium)
	EODH_SCREENSHOTS=docs/screenshots $(RUN) pytest -q -p no:cacheprovider tests/hub/test_spawn_browser.py

bench: setup ## Performance figures (see README); not a test
	$(RUN) python -m bench

load: setup ## Load and fault scenarios on 127.0.0.1, as figures (LOAD_ARGS="burst restart proxy keycloak kubernetes marker")
	$(RUN) python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf build test-artifacts .pytest_cache
