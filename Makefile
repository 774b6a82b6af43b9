# TradeAssure developer commands. Two matter for a newcomer: `make run` and `make test`.
# Both create .venv (Python 3.11) on first use and reinstall only when pyproject.toml or
# constraints.txt changed.

SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tradeassure-installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Links in emails and notifications point here; it follows HOST and PORT unless set explicitly.
SITE_URL ?= http://$(HOST):$(PORT)
PYTEST_ARGS ?=
# The embedded profile's data folder (SQLite file, broker folders, media); the settings read the
# same variable, so exporting it keeps `make run`, its processes and `make schema` in one place.
TRADEASSURE_VAR_DIR ?= $(CURDIR)/var
export TRADEASSURE_VAR_DIR
VAR := $(TRADEASSURE_VAR_DIR)

.PHONY: help install dirs run test lint typecheck format bench bench-smoke bench-micro schema lock

help:
	@echo "make run     start web (http://$(HOST):$(PORT)/) + Celery worker + beat, with demo data"
	@echo "make test    run the whole test suite (PostgreSQL when DATABASE_URL points at it)"
	@echo "make lint    ruff check + ruff format --check"
	@echo "make typecheck  mypy (django/drf plugins) + lint-imports (layer contracts)"
	@echo "make format  ruff fix + format"
	@echo "make bench   the at-scale benchmark vs its floor (PostgreSQL, gunicorn, wrk; bench/README.md)"
	@echo "make bench-smoke  the same, tiny and short (what CI runs)"
	@echo "make schema  write the OpenAPI schema to \$$TRADEASSURE_VAR_DIR/openapi.yaml (default var/)"
	@echo "make lock    regenerate constraints.txt from the venv"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 is required (python3.11 or python3 on PATH)."; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

dirs:
	@mkdir -p "$(VAR)/broker/out" "$(VAR)/broker/processed" "$(VAR)/broker/control" \
	  "$(VAR)/media" "$(VAR)/private"

run: install dirs
	@$(BIN)/python manage.py migrate --noinput
	export SITE_URL="$(SITE_URL)"
	logins="$$($(BIN)/python manage.py seed_demo)"
	echo "$$logins"
	# Each process gets its own session (process group) so Ctrl-C / kill stops it with all its
	# children (runserver's autoreloader, celery's pool), and one dying stops the others.
	pids=()
	alive() { for pid in "$${pids[@]}"; do kill -0 -- "-$$pid" 2>/dev/null && return 0; done; return 1; }
	stop() {
	  trap - INT TERM HUP EXIT
	  echo "Stopping web, worker and beat…"
	  for pid in "$${pids[@]}"; do kill -TERM -- "-$$pid" 2>/dev/null || true; done
	  for _ in $$(seq 40); do alive || break; sleep 0.25; done
	  for pid in "$${pids[@]}"; do kill -KILL -- "-$$pid" 2>/dev/null || true; done
	}
	trap 'stop; exit 130' INT TERM HUP
	trap stop EXIT
	setsid $(BIN)/python manage.py runserver "$(HOST):$(PORT)" & pids+=($$!)
	setsid $(BIN)/celery -A tradeassure worker --pool=solo --loglevel=INFO & pids+=($$!)
	setsid $(BIN)/celery -A tradeassure beat --loglevel=INFO & pids+=($$!)
	sleep 4
	echo
	echo "================================================================================"
	echo " TradeAssure is running at http://$(HOST):$(PORT)/  (staff admin: http://$(HOST):$(PORT)/admin/)"
	echo " Web, Celery worker and beat are up. Ctrl-C stops all three."
	echo "$$logins" | tail -n +2
	echo "================================================================================"
	set +e
	wait -n "$${pids[@]}"
	status=$$?
	echo "A process exited (status $$status); stopping the others."
	exit $$status

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Its own database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/tradeassure_bench),
# dropped and recreated each run; refuses SQLite. Load by wrk when installed (apt-get install wrk).
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: install
	$(BIN)/python -m bench.run --smoke $(BENCH_ARGS)

# The older in-process ratio micro-benchmarks (bench/bench_*.py), kept for quick comparisons.
bench-micro: install
	$(BIN)/python bench/micro.py

schema: install
	@mkdir -p "$(VAR)"
	$(BIN)/python manage.py spectacular --file "$(VAR)/openapi.yaml"
	@echo "Wrote $(VAR)/openapi.yaml"

lock: install
	@{ echo "# Full pinned lock of the venv (regenerate: make lock). Used as pip -c by the Makefile and .ci/run."; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt
