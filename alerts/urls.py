from django.urls import path

from alerts import api

urlpatterns = [
    path("alerts/alertmanager", api.AlertmanagerWebhookApi.as_view(), name="api-alerts-alertmanager"),
]
