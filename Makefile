# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench soak clean migrate check discord-spec

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

migrate: $(STAMP)
	$(BIN)/python -m bot migrate

check: $(STAMP)
	$(BIN)/python -m bot check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench.bench_storage
	$(BIN)/python -m bench.bench_nanobanana
	$(BIN)/python -m bench.bench_bot
	$(BIN)/python -m bench.bench_processes

soak: $(STAMP)
	SOAK_OPERATIONS=$${SOAK_OPERATIONS:-10000} $(BIN)/pytest -m soak tests/reliability --timeout=0 -s

# Refresh the vendored Discord OpenAPI spec the fake Discord enforces (needs internet, or
# SPEC_GIT_DIR=<a clone of discord/discord-api-spec>), then run `make test`.
discord-spec: $(STAMP)
	$(BIN)/python -m tests.fakes.refresh_discord_spec $(if $(SPEC_GIT_DIR),--git-dir $(SPEC_GIT_DIR)) $(if $(SPEC_REF),--ref $(SPEC_REF))

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
