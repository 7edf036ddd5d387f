from pathlib import Path

from releases.policy import PERMISSIONS, can, permission_matrix_markdown
from tests.conftest import make_user

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_carries_the_permission_matrix_the_policy_enforces():
    assert permission_matrix_markdown() in README.read_text(), (
        "README.md's permission table differs from releases/policy.py; paste permission_matrix_markdown()")


def test_every_role_gets_exactly_its_matrix_row_and_nothing_else(db):
    everything = set().union(*PERMISSIONS.values()) | {"made.up.action"}
    for role, allowed in PERMISSIONS.items():
        user = make_user(f"user-{role}", role)
        assert {action for action in everything if can(user, action)} == set(allowed)
