from django.conf import settings
from django.db import models


class Preference(models.Model):
    """What a person chose for the pages: the time zone times are shown in (blank: the browser's)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA name, e.g. Asia/Shanghai; blank: "
                                                                      "the browser's")
    updated_at = models.DateTimeField(auto_now=True)
