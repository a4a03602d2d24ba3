#!/usr/bin/env bash
# s3rver, an S3-compatible HTTP server on the local disk, for the test of the
# recordings stored in a bucket (tests/consult/test_recordings_s3.py), from the
# npm registry into the git-ignored .tools/s3rver.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.tools/s3rver
[ -x "$dir/node_modules/.bin/s3rver" ] && exit 0
command -v npm >/dev/null || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
}
mkdir -p "$dir"
echo "== installing s3rver into $dir"
npm install --prefix "$dir" --no-audit --no-fund --silent s3rver@3.7.1
