#!/usr/bin/env bash
# Machine set-up for the pipeline integrations (build, scan, push).
# Idempotent: safe to run twice; every wait is bounded; background services are
# fully detached so a caller reading our stdout (make, CI) is not held open.
# Runs as root on Debian bookworm. Prints `DOCKER_HOST=...` as its last line.
set -euo pipefail

REGISTRY_ADDR="${ROLLGATE_REGISTRY_ADDR:-127.0.0.1:5000}"
REGISTRY_CONFIG=/etc/rollgate/registry.yml
REGISTRY_STORAGE="${ROLLGATE_REGISTRY_STORAGE:-/var/lib/rollgate-registry}"
PODMAN_SOCKET=/run/podman/podman.sock
LOG_DIR=/var/log/rollgate
APT_PACKAGES=(podman buildah runc docker-registry busybox-static curl)

log() { echo "setup-pipelines: $*" >&2; }

wait_for_other_apt() {
    # Another apt-get may be running (machine provisioning); dpkg's lock would
    # make ours fail, so wait for it, bounded to 10 minutes.
    local waited=0
    while pgrep -x apt-get >/dev/null || pgrep -x dpkg >/dev/null; do
        if (( waited >= 600 )); then
            log "another apt-get/dpkg still running after ${waited}s; giving up waiting"
            return 1
        fi
        (( waited % 30 == 0 )) && log "waiting for another apt-get/dpkg to finish (${waited}s)"
        sleep 5
        waited=$((waited + 5))
    done
}

install_missing_packages() {
    local missing=()
    for package in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if (( ${#missing[@]} == 0 )); then
        return 0
    fi
    wait_for_other_apt
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

write_if_changed() {
    # write_if_changed PATH  (content on stdin): leaves mtime alone when unchanged.
    local path="$1" tmp
    tmp="$(mktemp)"
    cat >"$tmp"
    mkdir -p "$(dirname "$path")"
    if [[ -f "$path" ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$path"
        chmod 0644 "$path"
        log "wrote $path"
    fi
}

write_container_configs() {
    # runc is the runtime Debian ships here (crun is absent); the ulimits keep
    # `podman run` from failing on hosts whose hard limits are lower than podman's defaults.
    write_if_changed /etc/containers/containers.conf <<'EOF'
# Managed by scripts/setup-pipelines.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
    write_if_changed /etc/containers/registries.conf.d/50-rollgate-local.conf <<EOF
# Managed by scripts/setup-pipelines.sh: the local test registry speaks plain HTTP.
[[registry]]
location = "${REGISTRY_ADDR}"
insecure = true
EOF
    write_if_changed "$REGISTRY_CONFIG" <<EOF
# Managed by scripts/setup-pipelines.sh: loopback-only registry, no auth.
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${REGISTRY_STORAGE}
  delete:
    enabled: true
http:
  addr: ${REGISTRY_ADDR}
EOF
}

port_answers() {
    # port_answers URL: true when an HTTP server answers at URL (any status).
    curl -s -o /dev/null --max-time 2 "$1"
}

start_registry() {
    if port_answers "http://${REGISTRY_ADDR}/v2/"; then
        return 0
    fi
    mkdir -p "$REGISTRY_STORAGE" "$LOG_DIR"
    log "starting docker-registry on ${REGISTRY_ADDR}"
    # From /: a long-lived service must not keep (or lose) the checkout it was started from as its directory.
    (cd / && exec setsid nohup /usr/bin/docker-registry serve "$REGISTRY_CONFIG") \
        </dev/null >>"$LOG_DIR/registry.log" 2>&1 &
    for _ in $(seq 1 50); do
        port_answers "http://${REGISTRY_ADDR}/v2/" && return 0
        sleep 0.2
    done
    log "registry did not answer on ${REGISTRY_ADDR}; see $LOG_DIR/registry.log"
    return 1
}

podman_service_answers() {
    [[ -S "$PODMAN_SOCKET" ]] && curl -s -o /dev/null --max-time 2 --unix-socket "$PODMAN_SOCKET" http://d/_ping \
        && podman_service_cwd_ok
}

podman_service_cwd_ok() {
    # A service started from a checkout that was deleted since cannot start containers any more: restart it.
    local pid
    pid=$(pgrep -f "podman system service" | head -1) || return 0
    [[ -z "$pid" ]] && return 0
    if [[ "$(readlink "/proc/$pid/cwd")" == *"(deleted)" ]]; then
        log "podman service $pid runs in a deleted directory; restarting it"
        kill "$pid" 2>/dev/null; sleep 1
        return 1
    fi
}

start_podman_service() {
    if podman_service_answers; then
        return 0
    fi
    mkdir -p "$(dirname "$PODMAN_SOCKET")" "$LOG_DIR"
    rm -f "$PODMAN_SOCKET"
    log "starting podman system service on ${PODMAN_SOCKET}"
    # From /: conmon inherits the service's directory, and fails ("Failed to get working directory") once a
    # deleted checkout was it.
    (cd / && exec setsid nohup podman system service --time=0 "unix://${PODMAN_SOCKET}") \
        </dev/null >>"$LOG_DIR/podman-service.log" 2>&1 &
    for _ in $(seq 1 50); do
        podman_service_answers && return 0
        sleep 0.2
    done
    log "podman service did not answer on ${PODMAN_SOCKET}; see $LOG_DIR/podman-service.log"
    return 1
}

install_missing_packages
write_container_configs
start_registry
start_podman_service
echo "DOCKER_HOST=unix://${PODMAN_SOCKET}"
