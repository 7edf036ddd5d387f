"""Persona fixtures (dev, rm, ops, qa, auditor) and small factories, shared by every test package."""
import itertools
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.test import APIClient

from releases.choices import ReleaseStatus, Role
from releases.models import AgentService, Environment, GrayPhase
from releases.services import Actor, release_create, release_worker_transition

_shas = itertools.count(1)


def sha() -> str:
    return f"{next(_shas):040x}"


# --- the app's database role (issue 14) ---------------------------------------------------------------------------
# pytest itself runs as the owner role: it creates the test database, migrates it and empties it between tests
# (TRUNCATE). Every Rollgate process a test starts (uvicorn, Celery workers, beat, the demo stack) runs as the
# app role that `manage.py db_app_role` makes, as in production: no ownership, no TRUNCATE, audit rows append-only.
APP_ROLE = "rollgate_app"
_BASE_DATABASE_NAME = settings.DATABASES["default"]["NAME"]  # read before pytest-django switches to the test one


@pytest.fixture(scope="session", autouse=True)
def app_database_role(django_db_setup, django_db_blocker):
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    if connection.settings_dict["NAME"] == _BASE_DATABASE_NAME:
        return None  # no test in this run uses the database, so pytest-django did not create a test database
    with django_db_blocker.unblock():
        call_command("db_app_role", APP_ROLE, stdout=open("/dev/null", "w"))
    return APP_ROLE


def app_database_url() -> str:
    """DATABASE_URL of the test database as the app role, for the processes a test starts."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{APP_ROLE}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def make_user(username: str, *roles: str):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def environments(db):
    envs = {}
    for position, (name, protected, approvals) in enumerate(
        [("dev", False, {}), ("test", False, {}), ("staging", False, {}),
         ("prod", True, {"release_manager": 1, "qa": 1})]
    ):
        env = Environment.objects.create(name=name, namespace=f"agent-{name}", position=position,
                                         protected=protected, required_approvals=approvals)
        for index, weight in enumerate([5, 10, 30, 50, 100]):
            GrayPhase.objects.create(environment=env, position=index, weight=weight)
        envs[name] = env
    return envs


@pytest.fixture
def service(db):
    return AgentService.objects.create(name="agent-infer", image_repository="registry.example.com/agent/agent-core")


@pytest.fixture
def dev(db):
    return make_user("dev", Role.DEVELOPER)


@pytest.fixture
def rm(db):
    return make_user("rm", Role.RELEASE_MANAGER)


@pytest.fixture
def rm2(db):
    return make_user("rm2", Role.RELEASE_MANAGER)


@pytest.fixture
def ops(db):
    return make_user("ops", Role.OPS)


@pytest.fixture
def qa(db):
    return make_user("qa", Role.QA)


@pytest.fixture
def auditor(db):
    return make_user("auditor", Role.AUDITOR)


@pytest.fixture
def nobody(db):
    return make_user("nobody")


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def make_release(environments, service, dev):
    """Create a release through the service layer and bring it to `status` the way the pipeline would."""

    def make(tag="v1.0.0", env="staging", status=ReleaseStatus.READY, by=None, branch=""):
        # One transaction: whatever reacts on commit (the build pipeline) finds the release already built.
        with transaction.atomic():
            release = release_create(actor=Actor.of(by or dev), service=service.name, environment=env, tag=tag,
                                     commit=sha(), branch=branch)
            if status == ReleaseStatus.READY:
                assert release_worker_transition(release_id=release.pk, from_statuses={ReleaseStatus.PENDING},
                                                 to_status=ReleaseStatus.READY, actor_name="pipeline",
                                                 action="pipeline.succeeded")
        release.refresh_from_db()
        return release

    return make


@pytest.fixture
def live_release(make_release, rm):
    """v1.0.0 live in staging: the stable version later releases ramp against."""
    from releases.services import release_promote

    release = make_release("v1.0.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.LIVE
    return release


# --- browser tests (issue 7): list the screenshots this run saved, after the results ----------------------------
_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter):
    folder = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
    saved = sorted(p for p in folder.glob("*.png") if p.stat().st_mtime >= _SESSION_STARTED) if folder.is_dir() else []
    if saved:
        terminalreporter.write_sep("-", "screenshots")
        for path in saved:
            terminalreporter.write_line(f"screenshot: {path}")
