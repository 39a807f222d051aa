# The two commands a new machine needs: `make run` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# TypeScript (clients/typescript/package-lock.json) for the widget's type check; npm writes this file on install.
TS_DIR := clients/typescript
TS_STAMP := $(TS_DIR)/node_modules/.package-lock.json
PG_URL ?= postgres://postgres@127.0.0.1:5432/amodal
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

# Development defaults for `make run`: SQLite, in-memory channel layer, the bundled example agent
# on the offline `local` provider, and the demo finance API it calls.
RUN_ENV := DEBUG=1 AMODAL_DEMO_API=1 FINANCE_API_URL=http://127.0.0.1:8000/demo/finance-api

# daphne's timeouts, pinned (README "Production"): a WebSocket lives at most a day, finishes its handshake
# in 5 s and is closed 30 s after an unanswered ping (sent after 20 s idle); an app gets 10 s after a
# client disconnects to save what it has. No --http-timeout: it only starts once a request is complete,
# so it cannot stop a slow client, and it cuts every longer response, event streams included. `make run`
# listens with a backlog of 1024 (`-e tcp:...:backlog=`): with Twisted's default of 50 the kernel drops
# connections when hundreds arrive at once.
DAPHNE_FLAGS := --websocket_timeout 86400 --websocket_connect_timeout 5 --ping-interval 20 --ping-timeout 30 --application-close-timeout 10

.PHONY: install run test test-sqlite test-postgres lint check services bench bench-postgres schemas cluster test-cluster bench-load bench-rls

$(STAMP): pyproject.toml clients/python/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet -e ./clients/python
	touch $(STAMP)

# Without npm the Python side still installs; the widget's type check (tests/widget/test_widget_types.py) then skips.
$(TS_STAMP): $(TS_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix $(TS_DIR) --no-audit --no-fund; \
	else echo "install: npm not found, skipping $(TS_DIR) (the widget's type check will skip)"; fi

install: $(STAMP) $(TS_STAMP)

run: install
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_store categories examples/seed/finance-categories.json
	$(RUN_ENV) $(PY) manage.py generate_demo_data --scopes 40 --sessions 400 --usage-rows 2000
	$(RUN_ENV) $(PY) manage.py demo_setup
	$(RUN_ENV) $(VENV)/bin/daphne -e tcp:port=8000:interface=127.0.0.1:backlog=1024 $(DAPHNE_FLAGS) amodal_site.asgi:application

# nginx on 127.0.0.1:8080 in front of two daphne workers (unix sockets) sharing PostgreSQL and the Redis
# channel layer (docs/deploy.md); Ctrl-C stops them all. Options in CLUSTER_ARGS, e.g. `--workers 4`.
cluster: install services
	DEBUG=1 AMODAL_DEMO_API=1 DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) \
	  $(PY) -m deploy.cluster --demo-setup --daphne-flags '$(DAPHNE_FLAGS)' $(CLUSTER_ARGS)

lint: install
	$(VENV)/bin/ruff check .

# The generated contract files, committed (tests fail when they are stale): the agent folder's JSON Schemas
# and the chat events' (docs/schemas/), and the TypeScript declarations (clients/typescript/*.d.ts).
# Run after changing a folder model, an event record (core/events.py) or an API serializer.
schemas: install
	$(RUN_ENV) $(PY) manage.py export_folder_schemas
	$(RUN_ENV) $(PY) manage.py export_event_schemas
	$(RUN_ENV) $(PY) manage.py export_typescript

# The checks that keep the house in order (each also runs from .pre-commit-config.yaml): lint with a
# complexity limit, formatting, the apps' one-way layers, and types.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test-sqlite: install
	$(VENV)/bin/pytest -n 2

test-postgres: install
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(VENV)/bin/pytest -n 2

# The black-box live tests with every server replaced by nginx in front of two workers (tests/e2e/cluster.py).
CLUSTER_TESTS := tests/e2e/test_live_chat.py tests/e2e/test_tenant_boundary_live.py \
  tests/e2e/test_cross_process_cancel.py tests/e2e/test_cluster_live.py
test-cluster: install services
	AMODAL_LIVE_TARGET=cluster DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(VENV)/bin/pytest -n 2 $(CLUSTER_TESTS)

# Everything: the checks, the whole suite on SQLite, then again on PostgreSQL with the Redis channel layer.
test: services check test-sqlite test-postgres

services:
	bash .ci/services

# Benchmarks print their figures and ratios against a baseline measured in the same run (README
# "Benchmarks"); extra options in BENCH_ARGS, e.g. `make bench BENCH_ARGS=--quick`.
bench: install
	$(PY) -m benchmarks.chat $(BENCH_ARGS)

bench-postgres: install
	$(PY) -m benchmarks.chat --postgres $(BENCH_ARGS)
	DATABASE_URL=$(PG_URL) $(PY) -m benchmarks.store_query
	DATABASE_URL=$(PG_URL) $(PY) -m benchmarks.scope_lifecycle

# N concurrent streaming conversations through the cluster, against one worker directly (docs/deploy.md).
bench-load: install services
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(PY) -m benchmarks.load $(BENCH_ARGS)

# The same load against a worker with AMODAL_DB_ROW_SECURITY off and one with it on, alternating (docs/security.md).
bench-rls: install services
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(PY) -m benchmarks.row_security $(BENCH_ARGS)
