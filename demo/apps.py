from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The one-command demo (`make run`): set-up and the story driver. Sits on top: imports every app, none
    imports it. demo/agent, demo/traffic.py and demo/prometheus.py stay Django-free."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
