# The commands a platform engineer and CI run. Everything goes through uv's locked environment.
SHELL := /bin/bash
UV ?= uv
RUN := $(UV) run --frozen
STACK ?= dev
PYTEST_ARGS ?=

.PHONY: setup render test lint format bench clean

setup: ## Install the locked Python environment and the Node test tools
	$(UV) sync --frozen
	npm ci --no-audit --no-fund --loglevel=error

render: setup ## Render one stack offline (STACK=dev|dev3|test|staging|prod|all) into build/<stack>/
	$(RUN) python -m tools.render $(STACK)

test: setup ## Run the whole test suite (slow suites included)
	$(RUN) pytest $(PYTEST_ARGS)

lint: ## ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format:
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: setup ## Performance figures (see README); not a test
	$(RUN) python -m bench

clean:
	rm -rf build test-artifacts .pytest_cache
