#!/usr/bin/env bash
# `make run`: the whole release loop on one machine. Installs and starts what is missing (as root on Debian/Ubuntu),
# prepares the database and the demo, then runs every process under honcho (Procfile.demo). Ctrl-C (or SIGTERM)
# stops them all; the agents the worker started are stopped too, and this script checks that none is left.
#   PORT=8000 bash scripts/run-demo.sh        DEMO_RESET=1 to start the story from scratch (deletes var/ demo state)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT="${PORT:-8000}"
# The app defaults to production settings (secrets required); the demo runs the local ones unless told otherwise.
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_open "$PORT"; then
  echo "port $PORT is in use on 127.0.0.1: stop what runs there, or choose another: make run PORT=8010" >&2
  exit 1
fi

echo "== preparing: podman + local registry, Redis, database, demo data"
bash scripts/setup-pipelines.sh >/dev/null       # podman service (builds) + registry on 127.0.0.1:5000 (pushes)
bash scripts/setup-sla.sh                        # the prometheus binary (a private instance runs under honcho)
bash scripts/services.sh redis                   # Redis on 6379 unless one runs already
# The database: PostgreSQL on 127.0.0.1:5432 (started, or installed, when missing), database rollgate_demo, unless
# DATABASE_URL names another. Migrations and the demo data run as the owner role; every process under honcho runs
# as the app role db_app_role makes (no ownership, no TRUNCATE, audit rows append-only: README "Security").
if [ -z "${DATABASE_URL:-}" ]; then
  bash scripts/services.sh postgres
  OWNER_URL="postgres://postgres@127.0.0.1:5432/rollgate_demo"
  APP_URL="postgres://rollgate_app@127.0.0.1:5432/rollgate_demo"
else
  OWNER_URL="$DATABASE_URL"
  APP_URL="${ROLLGATE_APP_DATABASE_URL:-$DATABASE_URL}"
fi
export DATABASE_URL="$OWNER_URL"
if [ -n "${DEMO_RESET:-}" ]; then
  echo "DEMO_RESET: removing the demo's database, agents' state and build context under var/"
  $PY manage.py local_agents --stop >/dev/null 2>&1 || true
  rm -rf var/rollgate.sqlite3 var/local-target var/demo var/celerybeat-schedule*
  $PY manage.py demo_database --drop
fi
$PY manage.py demo_database                      # creates the database named by DATABASE_URL when it is missing
$PY manage.py migrate --noinput -v0
if [ "$APP_URL" != "$OWNER_URL" ]; then
  app_role="$($PY -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).username)' "$APP_URL")"
  $PY manage.py db_app_role "$app_role" >/dev/null
fi
$PY manage.py seed_demo
$PY manage.py demo_setup
export DATABASE_URL="$APP_URL"

export ROLLGATE_PORT="$PORT"
export ROLLGATE_PUBLIC_URL="http://127.0.0.1:$PORT"
export ROLLGATE_URL="$ROLLGATE_PUBLIC_URL"   # demo agents register and heartbeat there (agent registry)
PROMETHEUS_PORT="$($PY -m demo.prometheus --free-port)"
export PROMETHEUS_PORT PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT"
export SLA_GATE_INTERVAL_SECONDS="${SLA_GATE_INTERVAL_SECONDS:-2}"   # the demo policy judges in seconds
export ROLLGATE_AGENT_TOKEN_FILE="$PWD/var/demo/agent-token"          # the traffic generator's agent token
export DOCKER_HOST="${DOCKER_HOST:-unix:///run/podman/podman.sock}"
export PYTHONUNBUFFERED=1

cat <<BANNER

  Rollgate:   http://127.0.0.1:$PORT/      (API schema /api/schema/, health /api/health/)
  Logins:     dev, rm, ops, qa, auditor    password: rollgate-demo   (rm promotes and rolls back)
  Prometheus: $PROMETHEUS_URL   (1 s scrape of the demo agents and Rollgate's /metrics/traces)
  The story plays by itself (lines from "story.1"); Ctrl-C stops everything.

BANNER

stop_agents() {
  # Normally local_agents has stopped them already; this catches one a deploy started while everything stopped.
  $PY manage.py local_agents --stop >/dev/null 2>&1 || true
  left=$($PY -m deploy.targets.local status 2>/dev/null | grep -c running || true)
  if [ "${left:-0}" != 0 ]; then echo "warning: $left agent process group(s) still running" >&2; fi
  echo "all demo processes stopped"
}
trap stop_agents EXIT
# A handler (not SIG_IGN, which children would inherit): honcho receives the signal itself and stops its
# processes; this shell waits for it and then runs stop_agents.
trap 'true' INT TERM
status=0
.venv/bin/honcho --no-colour -f Procfile.demo start || status=$?
exit "$status"
