# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What the bot needs to run (`make run`), and that plus the developer tools (`make test`).
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench soak clean migrate check discord-spec browser

# Playwright drives Debian's chromium (see `browser`); it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever pyproject.toml changes. Editable: the code runs from this checkout.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# The developer tools (pytest, Playwright, moto, mypy, ruff...) come with `make test` only.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m bot run

migrate: $(RUN_STAMP)
	$(BIN)/python -m bot migrate

check: $(RUN_STAMP)
	$(BIN)/python -m bot check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The web gallery's browser tests need Debian's chromium: installed here when missing (as root,
# as on CI); where it can't be, those tests skip with one line saying so.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	      >/dev/null 2>&1 || echo "chromium could not be installed: browser tests will be skipped"; \
	  else \
	    echo "chromium is missing (apt-get install chromium as root): browser tests will be skipped"; \
	  fi; }

# Two workers, each taking whole test files (their module fixtures stay in one process): most
# tests wait on fakes, so two halve the wall time on a 2-core machine. TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2
unit: $(STAMP) browser
	$(BIN)/pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python -m bench.bench_storage
	$(BIN)/python -m bench.bench_nanobanana
	$(BIN)/python -m bench.bench_bot
	$(BIN)/python -m bench.bench_abuse
	$(BIN)/python -m bench.bench_web
	$(BIN)/python -m bench.bench_budgets
	$(BIN)/python -m bench.bench_processes
	$(BIN)/python -m bench.bench_operations

soak: $(STAMP)
	SOAK_OPERATIONS=$${SOAK_OPERATIONS:-10000} $(BIN)/pytest -m soak tests/reliability --timeout=0 -s

# Refresh the vendored Discord OpenAPI spec the fake Discord enforces (needs internet, or
# SPEC_GIT_DIR=<a clone of discord/discord-api-spec>), then run `make test`.
discord-spec: $(STAMP)
	$(BIN)/python -m tests.fakes.refresh_discord_spec $(if $(SPEC_GIT_DIR),--git-dir $(SPEC_GIT_DIR)) $(if $(SPEC_REF),--ref $(SPEC_REF))

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
