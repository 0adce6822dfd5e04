# The two commands: `make run` and `make test`. Both set themselves up on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-postgres setup setup-dev browser lint format bench screenshots clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Tocsin needs Python 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

setup-dev: $(VENV)/.installed-dev

## run: set up, migrate, create the admin account, serve http://127.0.0.1:8000 with workers
run: setup
	$(BIN)/python manage.py bootstrap
	$(BIN)/python manage.py run

## browser: Debian's chromium for the Playwright tests (installed when missing and we may)
browser:
	@bash scripts/ensure-chromium

## test: ruff, then the whole suite on the embedded default (SQLite, no Redis)
test: setup-dev browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

## test-postgres: the suite against PostgreSQL and Redis on 127.0.0.1 (what CI runs second)
test-postgres: setup-dev browser
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/tocsin} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} \
	TOCSIN_REQUIRE_SERVICES=1 $(BIN)/pytest

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup-dev
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## screenshots: the dashboard, service, alert and incident pages at 1366 and 390 px, into docs/screenshots/
screenshots: setup-dev browser
	TOCSIN_WRITE_SCREENSHOTS=1 $(BIN)/pytest tests/tocsin/test_browser_screenshots.py -q

clean:
	rm -rf $(VENV) var/staticfiles var/test_tocsin*.sqlite3* .pytest_cache .ruff_cache
