"""The design document's endpoint for schedulers and the release system: /monitor/agent-sla-report?version=..."""
from django.urls import path

from sla.api import views

urlpatterns = [
    path("agent-sla-report", views.AgentSlaReportApi.as_view(), name="monitor-agent-sla-report"),
]
