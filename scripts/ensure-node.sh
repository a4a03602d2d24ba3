#!/usr/bin/env bash
# The npm packages the browser tests use (package.json, pinned by
# package-lock.json): axe-core, injected into pages to check accessibility.
# Installed into the git-ignored node_modules/ when missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null; then
    echo "== installing npm"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
stamp=node_modules/.package-lock.json
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt "$stamp" ]; then
    echo "== npm ci (axe-core)"
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi
