#!/usr/bin/env bash
# Debian/Ubuntu packages Rollgate needs to build and run. Idempotent; installs only what is missing (as root).
# Extra packages come as arguments: `make test` passes chromium for the browser tests.
set -euo pipefail
packages=(python3 python3-venv python3-dev gcc make git curl ca-certificates nodejs npm redis-server prometheus)
packages+=("$@")
missing=()
for pkg in "${packages[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
# A machine may have these tools from elsewhere (pyenv, nvm): only install what has no command at all.
filtered=()
for pkg in "${missing[@]}"; do
  case "$pkg" in
    python3|python3-venv|python3-dev) python3 -c 'import venv, sysconfig' 2>/dev/null && continue ;;
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    redis-server) command -v redis-server >/dev/null && continue ;;
    prometheus) command -v prometheus >/dev/null && continue ;;  # the demo and the SLA tests run private instances
    gcc|make|git|curl) command -v "$pkg" >/dev/null && continue ;;
    chromium) test -x /usr/bin/chromium && continue ;;
    gettext) command -v msgfmt >/dev/null && continue ;;
    prometheus-alertmanager) command -v prometheus-alertmanager >/dev/null && continue ;;
    docker-compose) command -v docker-compose >/dev/null && continue ;;  # only `docker-compose config` in tests
  esac
  filtered+=("$pkg")
done
if [ ${#filtered[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "please install: ${filtered[*]} (or run as root)" >&2; exit 1; fi
  echo "installing Debian packages: ${filtered[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq  # waits for another apt/dpkg instead of failing
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${filtered[@]}" >/dev/null
fi
