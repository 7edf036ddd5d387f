from django.contrib import admin

from alerts.models import AlertEvent


@admin.register(AlertEvent)
class AlertEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "status", "alertname", "service_name", "environment_name", "version_tag",
                    "outcome", "release"]
    list_filter = ["status", "outcome", "environment_name"]
    search_fields = ["alertname", "service_name", "fingerprint", "summary"]
    readonly_fields = [field.name for field in AlertEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
