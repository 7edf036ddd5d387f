"""Fixtures for the fault tests: the users the API is driven as, and a stack that is always stopped."""
import json

import pytest

from releases.choices import Role
from tests.conftest import make_user

TIMED = "tests.faults.plugins.timed_stage"
TIMED_RUNNERS = json.dumps({name: TIMED for name in ("prepare", "build", "scan", "push")})


@pytest.fixture
def api_users(db):
    return {"dev": make_user("dev", Role.DEVELOPER), "rm": make_user("rm", Role.RELEASE_MANAGER)}
