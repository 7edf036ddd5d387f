"""A weekly freeze window is wall-clock time in a zone of its own (Fridays 18:00-23:00 in Shanghai), UTC unless
it says otherwise; a zone that does not exist is refused naming the window."""
from datetime import datetime, timezone

import pytest

from releases.freeze import active_freeze, describe, validate_freeze_windows
from tests.conftest import client_for

SHANGHAI_FRIDAY_EVENING = {"weekdays": [4], "from": "18:00", "to": "23:00", "time_zone": "Asia/Shanghai",
                           "reason": "weekend change freeze"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("now,frozen", [
    ("2026-11-27T09:59:00", False),  # Fri 17:59 in Shanghai
    ("2026-11-27T10:00:00", True),   # Fri 18:00 in Shanghai
    ("2026-11-27T14:59:00", True),   # Fri 22:59 in Shanghai
    ("2026-11-27T15:00:00", False),  # Fri 23:00 in Shanghai
    ("2026-11-27T18:30:00", False),  # Fri 18:30 UTC is Saturday 02:30 in Shanghai
])
def test_a_weekly_window_follows_its_own_time_zone(now, frozen):
    windows = validate_freeze_windows([SHANGHAI_FRIDAY_EVENING])
    assert (active_freeze(windows, at(now)) is not None) == frozen


def test_without_a_zone_the_window_is_utc_and_describe_names_the_zone():
    utc_window = validate_freeze_windows([{"weekdays": [4], "from": "18:00", "to": "23:00"}])
    assert "time_zone" not in utc_window[0]
    assert active_freeze(utc_window, at("2026-11-27T18:30:00")) is not None
    assert describe(validate_freeze_windows([SHANGHAI_FRIDAY_EVENING])[0]) == \
        "frozen Fri 18:00-23:00 Asia/Shanghai (weekend change freeze)"
    assert describe(utc_window[0]) == "frozen Fri 18:00-23:00 UTC"


@pytest.mark.django_db
def test_ops_set_a_zone_and_a_wrong_one_is_refused_naming_the_window(ops, environments):
    client = client_for(ops)
    good = client.patch("/api/environments/prod/", {"freeze_windows": [SHANGHAI_FRIDAY_EVENING]}, format="json")
    assert good.status_code == 200, good.content
    assert good.json()["freeze_windows"][0]["time_zone"] == "Asia/Shanghai"
    bad = client.patch("/api/environments/prod/", {"freeze_windows": [
        {**SHANGHAI_FRIDAY_EVENING, "time_zone": "Mars/Olympus_Mons"}]}, format="json")
    assert bad.status_code == 400
    assert "freeze_windows[0].time_zone: 'Mars/Olympus_Mons' is not an IANA time zone" in bad.json()["detail"]
