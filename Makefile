# Rollgate: `make run` starts the whole stack with the demo; `make test` runs the test suite.
# Both install what they need on a fresh Debian/Ubuntu machine (run as root, or with the packages present).
SHELL := /bin/bash
PY := .venv/bin/python
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/rollgate
STAMP := .venv/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run serve test bench deps system services migrate clean messages

# Without DJANGO_SETTINGS_MODULE the app runs production settings (and refuses to start without its secrets);
# these targets choose the local and test settings themselves.
run serve migrate: export DJANGO_SETTINGS_MODULE ?= config.settings.local
test: export DJANGO_SETTINGS_MODULE = config.settings.test

system:
	@bash scripts/install-system.sh

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	@$(PY) -m pip install -q --upgrade pip 2> >(grep -v "is neither a file nor a directory" >&2)
	@$(PY) -m pip install -q -r requirements-dev.txt 2> >(grep -v "is neither a file nor a directory" >&2)
	@$(PY) -m pip install -q --no-deps -e .  # the `rollgate` command (pyproject.toml), in .venv/bin
	@rm -f .venv/.installed-* && touch $(STAMP)

node_modules/.installed: package.json
	@npm install --no-audit --no-fund --silent
	@touch node_modules/.installed

deps: system $(STAMP) node_modules/.installed

services:
	@bash scripts/services.sh redis

migrate: deps services
	@$(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py seed_demo

# The one-command demo (issue 8): podman + registry, Redis, Prometheus, migrate, seed, then web, worker, beat,
# Prometheus, the local agents, the traffic generator and the story under honcho (Procfile.demo; scripts/run-demo.sh).
# DEMO_RESET=1 replays the story from scratch. `make serve` runs only web, worker and beat (Procfile).
run: deps
	@PORT=$(PORT) DEMO_RESET=$(DEMO_RESET) bash scripts/run-demo.sh || [ $$? -eq 130 ]  # Ctrl-C is a normal stop

serve: migrate
	@echo "Rollgate is starting at http://127.0.0.1:$(PORT)/   (Ctrl-C stops everything)"
	@PORT=$(PORT) .venv/bin/honcho -f Procfile start

test: deps
	@bash scripts/install-system.sh chromium prometheus-alertmanager docker-compose fonts-wqy-microhei gettext  # browser tests (a CJK font for the zh-hans screenshots), Alertmanager, compose check, gettext (catalogue test)
	@bash scripts/services.sh postgres redis
	@bash scripts/setup-pipelines.sh >/dev/null
	@bash scripts/setup-sla.sh >/dev/null
	@DATABASE_URL=$(TEST_DATABASE_URL) $(PY) -m pytest

bench: deps
	@bash scripts/services.sh postgres redis
	@for script in bench/*.py; do echo "== $$script"; DATABASE_URL=$(TEST_DATABASE_URL) $(PY) $$script || exit 1; done

# The zh-hans catalogue (locale/): collect new strings from templates and code, then compile (needs gettext).
# tests/frontend/test_i18n.py fails while any string is untranslated.
MESSAGES_IGNORE := -i ".venv/*" -i "node_modules/*" -i "tests/*" -i "bench/*" -i "var/*" -i "staticfiles/*" -i "test-artifacts/*"
messages:
	@DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemessages -l zh_Hans $(MESSAGES_IGNORE)
	@DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py compilemessages $(MESSAGES_IGNORE)

clean:
	rm -rf .venv node_modules var
