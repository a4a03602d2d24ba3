#!/usr/bin/env bash
# Tools that some tests drive, from Debian's packages when missing: coturn for
# the TURN relay tests, nftables for the browser connectivity tests, a Compose
# CLI for the docker-compose.yml check, nginx for the deploy/nginx limits test,
# ffmpeg (and its ffprobe) that joins and checks recordings (docs/recording.md),
# gettext for the message catalogs.
set -euo pipefail

missing=()
command -v turnserver >/dev/null || missing+=(coturn)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v unshare >/dev/null || missing+=(util-linux)
command -v ip >/dev/null || missing+=(iproute2)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
# msgfmt, msgmerge, msgattrib: the message catalogs (scripts/i18n.sh).
command -v msgfmt >/dev/null && command -v msgattrib >/dev/null || missing+=(gettext)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    missing+=(docker-compose)
fi
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
