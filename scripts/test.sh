#!/usr/bin/env bash
# The whole test suite: lint, then every test on SQLite, then the database and
# multi-process tests again on PostgreSQL, then the browser tests. Redis and
# PostgreSQL are started (or installed) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

bash scripts/ensure-services.sh
bash scripts/ensure-tools.sh
bash scripts/ensure-s3rver.sh
bash scripts/ensure-node.sh
bash scripts/i18n.sh compile
export SQLITE_TEST_PATH="${SQLITE_TEST_PATH:-/tmp/consult-test-$$.sqlite3}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/1}"
export DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-test-only-secret-key}"
PG_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/consult}"
unset DATABASE_URL

echo "== lint"
$PY -m ruff check .
$PY -m ruff format --check .
bash scripts/audit.sh
echo "== message catalogs"
bash scripts/i18n.sh check

echo "== tests on SQLite"
# Server processes share the database over the network: PostgreSQL only.
# Browser tests need their own network namespace: the last step runs them.
$PY -m pytest -m "not processes and not browser" "$@"

echo "== tests on PostgreSQL ($PG_URL)"
DATABASE_URL="$PG_URL" $PY -m pytest -m "not browser" "$@"

echo "== browser tests (Chromium, loopback-only network namespace)"
bash scripts/test-browser.sh "$@"
