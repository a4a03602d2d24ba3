#!/usr/bin/env bash
# Make sure Redis and PostgreSQL answer on 127.0.0.1 (start them, or install
# them from Debian's packages on a machine that has neither).
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install $*" >&2
    return 1
  fi
  [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock || true)" ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! port_open 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -n | tail -1)
  conf=/etc/postgresql/$version/main
  # Trust on loopback and the socket, as on the CI machine.
  if ! grep -q "consult-trust" "$conf/pg_hba.conf"; then
    sed -i '1i host all all 127.0.0.1/32 trust # consult-trust\nlocal all all trust # consult-trust' "$conf/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi

for _ in $(seq 50); do
  port_open 6379 && port_open 5432 && exit 0
  sleep 0.2
done
echo "Redis or PostgreSQL did not come up" >&2
exit 1
