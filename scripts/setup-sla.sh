#!/bin/sh
# Machine set-up for the SLA gate tests and benchmark: the Debian `prometheus` package (prometheus + promtool).
# Idempotent: does nothing when both binaries are present. The tests start their own Prometheus on 127.0.0.1.
set -eu
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
# The package enables a system-wide Prometheus on :9090; the tests do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl disable --now prometheus || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
