"""Freeze windows: times when an environment accepts no promotion (rollbacks and pauses are always allowed)."""
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.dateparse import parse_datetime

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _parse_time(value: str, field: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise ValueError(f"{field}: '{value}' is not a time of day like 18:00")


def validate_freeze_windows(windows) -> list[dict]:
    """Return the windows normalised, or raise ValueError naming the index and field."""
    if not isinstance(windows, list):
        raise ValueError("freeze_windows: must be a list of windows")
    cleaned = []
    for index, window in enumerate(windows):
        where = f"freeze_windows[{index}]"
        if not isinstance(window, dict):
            raise ValueError(f"{where}: must be an object")
        reason = str(window.get("reason", ""))[:200]
        if "start" in window or "end" in window:
            start = parse_datetime(str(window.get("start", "")))
            end = parse_datetime(str(window.get("end", "")))
            if start is None or end is None or start.tzinfo is None or end.tzinfo is None:
                raise ValueError(f"{where}: start and end must be ISO-8601 times with a zone, e.g. 2026-12-24T00:00Z")
            if end <= start:
                raise ValueError(f"{where}: end must be after start")
            cleaned.append({"start": start.isoformat(), "end": end.isoformat(), "reason": reason})
        elif "weekdays" in window:
            days = window["weekdays"]
            if not isinstance(days, list) or not days or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
                raise ValueError(f"{where}.weekdays: must list days 0 (Monday) to 6 (Sunday)")
            start_t = _parse_time(window.get("from", ""), f"{where}.from")
            end_t = _parse_time(window.get("to", ""), f"{where}.to")
            if end_t <= start_t:
                raise ValueError(f"{where}.to: must be after 'from' (split a window that crosses midnight)")
            zone = str(window.get("time_zone") or "UTC")
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{where}.time_zone: '{zone[:64]}' is not an IANA time zone like Asia/Shanghai")
            cleaned.append({"weekdays": sorted(set(days)), "from": start_t.strftime("%H:%M"),
                            "to": end_t.strftime("%H:%M"), "reason": reason,
                            **({"time_zone": zone} if zone != "UTC" else {})})
        else:
            raise ValueError(f"{where}: needs either start/end or weekdays/from/to")
    return cleaned


def active_freeze(windows: list[dict], now: datetime) -> dict | None:
    """The window that covers `now` (UTC), if any."""
    for window in windows or []:
        if "start" in window:
            if parse_datetime(window["start"]) <= now < parse_datetime(window["end"]):
                return window
        else:
            # weekday windows are wall-clock times in their own zone (default UTC): "Fri 18:00-23:00 Asia/Shanghai"
            local = now.astimezone(ZoneInfo(window.get("time_zone") or "UTC"))
            if local.weekday() in window.get("weekdays", []) and \
                    _parse_time(window["from"], "from") <= local.time() < _parse_time(window["to"], "to"):
                return window
    return None


def describe(window: dict) -> str:
    reason = f" ({window['reason']})" if window.get("reason") else ""
    if "start" in window:
        return f"frozen until {window['end']}{reason}"
    days = ",".join(WEEKDAYS[d] for d in window["weekdays"])
    return f"frozen {days} {window['from']}-{window['to']} {window.get('time_zone') or 'UTC'}{reason}"
