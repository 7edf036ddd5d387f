from django.apps import AppConfig


class FrontendConfig(AppConfig):
    """Server-rendered pages, htmx partials and the live-event websocket consumer."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "frontend"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(_remember_time_zone, dispatch_uid="frontend.remember_time_zone")


def _remember_time_zone(sender, request, user, **kwargs):
    """At login, copy the person's chosen time zone into the session (UserTimezoneMiddleware reads it there)."""
    from frontend.middleware import TIMEZONE_SESSION_KEY
    from frontend.models import Preference

    if request is not None and hasattr(request, "session"):
        request.session[TIMEZONE_SESSION_KEY] = (
            Preference.objects.filter(user=user).values_list("time_zone", flat=True).first() or "")
