#!/usr/bin/env bash
# The browser suite: Chromium, the app and its Redis inside a network namespace
# whose only interface is loopback, so WebRTC never leaves this machine.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v ip >/dev/null || missing+=(iproute2)
# The connectivity tests: firewall rules in the namespace, and a real TURN relay.
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
command -v turnserver >/dev/null || missing+=(coturn)
# A Korean font, so that Korean pages (and their screenshots) show letters.
fc-list :lang=ko 2>/dev/null | grep -q . || missing+=(fonts-nanum)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The catalogs the pages are read in, and axe-core for the accessibility checks.
bash scripts/i18n.sh compile
bash scripts/ensure-node.sh

# The suite empties its database: each run gets its own, so that runs by
# several people on one machine leave each other alone.
scratch=$(mktemp -d /tmp/browser-db.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export SQLITE_PATH="${BROWSER_SQLITE_PATH:-$scratch/db.sqlite3}"
export SQLITE_TEST_PATH="${BROWSER_SQLITE_TEST_PATH:-$scratch/test.sqlite3}"
unset DATABASE_URL REDIS_URL
unshare --net -- bash -c \
  'ip link set lo up && exec .venv/bin/python -m pytest -m browser tests/browser "$@"' \
  bash "$@"
