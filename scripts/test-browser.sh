#!/usr/bin/env bash
# The browser suite: Chromium, the app and its Redis inside a network namespace
# whose only interface is loopback, so WebRTC never leaves this machine.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install chromium and redis-server" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null
fi

export SQLITE_PATH="${BROWSER_SQLITE_PATH:-/tmp/browser-db.sqlite3}"
export SQLITE_TEST_PATH="${BROWSER_SQLITE_TEST_PATH:-/tmp/browser-test.sqlite3}"
unset DATABASE_URL REDIS_URL
exec unshare --net -- bash -c \
  'ip link set lo up && exec .venv/bin/python -m pytest -m browser tests/browser "$@"' \
  bash "$@"
