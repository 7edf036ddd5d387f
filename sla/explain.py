"""Numbers and sentences for people: one place decides how the gate's figures are rounded and worded.

Percentages carry two decimals, milliseconds and counts are integers, p-values read "p < 1e-16" instead of
"p=0".  Findings store their measured value and threshold already rounded (in the unit named by `unit`), so
the API, the CSV and the pages show the same figures.
"""
from __future__ import annotations

import math

RATIO, MS, COUNT, SECONDS, STAT = "ratio", "ms", "count", "s", "stat"


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def ms(value_ms: float | None) -> str:
    return "n/a" if value_ms is None else f"{value_ms:,.0f} ms"


def count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} s"


def duration(value_s: float) -> str:
    """'about 40 seconds', 'about 6 minutes', 'about 2.5 hours'."""
    if not math.isfinite(value_s):
        return "an unknown time (no traffic now)"
    if value_s < 90:
        return f"about {max(1, round(value_s))} seconds"
    if value_s < 90 * 60:
        return f"about {round(value_s / 60)} minutes"
    return f"about {value_s / 3600:.1f} hours"


def rounded(value: float | None, unit: str) -> float | int | None:
    """The stored form of a measured value or threshold in `unit`."""
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if unit == RATIO:
        return round(value, 4)  # 2 decimals in percent
    if unit in (MS, COUNT, SECONDS):
        return int(round(value))
    return _plain(value)


def _plain(value: float) -> float:
    """Other figures (eval scores, cost per task, statistics): two decimals, or three significant digits below
    0.01, so a cost of 0.00083 per task does not read 0.00 against a threshold of 0.0084."""
    if value != 0 and abs(value) < 0.01:
        return float(f"{value:.3g}")
    return round(value, 2)


def show(value: float | None, unit: str) -> str:
    if unit == RATIO:
        return pct(value)
    if unit == MS:
        return ms(value)
    if unit == COUNT:
        return count(value)
    if unit == SECONDS:
        return seconds(value)
    if value is None:
        return "n/a"
    return f"{_plain(value):.3g}" if value != 0 and abs(value) < 0.01 else f"{value:.2f}"


def clock(at) -> str:
    return at.strftime("%H:%M:%S")


# What the controller does with each action, as the end of the verdict sentence.
ACTION_WORDS = {
    "rollback": "rolled back",
    "block_version": "version blocked in routing",
    "pause": "ramp paused",
    "hold": "held",
    "ready_to_promote": "ready for the next step",
}
