"""Pages answer a fragment to htmx and the whole page otherwise, at the same URL: say so in Vary, so no cache (the
browser's included) hands a fragment back for a plain visit, e.g. after the back button."""
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from django.utils.cache import patch_vary_headers

NOT_PAGES = ("/api/", "/static/", "/metrics/", "/monitor/", "/ws/")


class HtmxVaryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(NOT_PAGES):
            patch_vary_headers(response, ["HX-Request", "HX-History-Restore-Request"])
        return response


TIMEZONE_SESSION_KEY = "rollgate_time_zone"
BROWSER_TIMEZONE_COOKIE = "rollgate_tz"  # set by live.js from Intl.DateTimeFormat().resolvedOptions().timeZone


def valid_time_zone(name: str) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


class UserTimezoneMiddleware:
    """Activate the time zone the person chose (copied into the session at login and when saved), else
    the browser's (the cookie live.js sets), else UTC. Templates' |date then shows local times."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = None
        session = getattr(request, "session", None)
        if session is not None:
            # put there at login (frontend.apps: user_logged_in) and when saved: no query per request
            zone = valid_time_zone(session.get(TIMEZONE_SESSION_KEY, ""))
        zone = zone or valid_time_zone(unquote(request.COOKIES.get(BROWSER_TIMEZONE_COOKIE, "")))
        if zone:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
