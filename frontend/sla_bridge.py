"""The fleet's "last SLA verdict" column, read from the sla app when it offers a selector for it.

Contract for the sla app: `sla.selectors.latest_verdicts(*, release_ids: list[int]) -> dict[int, dict]` returning,
for each release that has one, its last verdict as {"verdict": "pass" | "fail" | ..., "url": optional link}.
Until that function exists the column is not shown at all (no placeholder pretending there is data).
"""
import importlib


def verdict_reader():
    """The sla selector, or None while the sla app does not provide one."""
    try:
        module = importlib.import_module("sla.selectors")
    except ImportError:
        return None
    reader = getattr(module, "latest_verdicts", None)
    return reader if callable(reader) else None


def latest_verdicts(release_ids: list[int]) -> dict[int, dict] | None:
    reader = verdict_reader()
    if reader is None:
        return None
    return reader(release_ids=release_ids) or {}
