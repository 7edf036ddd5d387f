#!/usr/bin/env bash
# Start what Rollgate's tests and local run need when it is not already running. Idempotent; run as root.
#   scripts/services.sh postgres redis
set -euo pipefail

need_apt() {  # install Debian packages that are missing
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq  # waits for another apt/dpkg instead of failing
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT NAME
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "$2 did not start on 127.0.0.1:$1" >&2; return 1
}

start_redis() {
  port_open 6379 && return 0
  command -v redis-server >/dev/null || need_apt redis-server
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379 redis
}

start_postgres() {
  if ! port_open 5432; then
    command -v pg_ctlcluster >/dev/null || need_apt postgresql
    local version; version=$(ls /etc/postgresql | sort -V | tail -1)
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    # Tests connect over loopback as postgres without a password (trust), as on the CI machines.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port 5432 postgresql
  fi
}

for service in "$@"; do
  case "$service" in
    redis) start_redis ;;
    postgres) start_postgres ;;
    *) echo "unknown service $service" >&2; exit 2 ;;
  esac
done
