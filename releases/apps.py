from django.apps import AppConfig


class ReleasesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "releases"
    verbose_name = "Releases"

    def ready(self):
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import m2m_changed

        from releases import receivers
        from releases.api import schema_extensions  # noqa: F401 (registers the drf-spectacular extension)

        user_locked_out.connect(receivers.audit_lockout, dispatch_uid="rollgate-audit-lockout")
        m2m_changed.connect(receivers.audit_group_change, sender=get_user_model().groups.through,
                            dispatch_uid="rollgate-audit-group-change")
        user_logged_out.connect(receivers.close_sockets_on_logout, dispatch_uid="rollgate-close-sockets-on-logout")
