from django.urls import path

from sla.api import views

urlpatterns = [
    path("releases/<int:release_id>/sla/", views.ReleaseSlaApi.as_view(), name="api-release-sla"),
    path("releases/<int:release_id>/sla/acknowledge/", views.ReleaseSlaAcknowledgeApi.as_view(),
         name="api-release-sla-acknowledge"),
    path("sla/reports/", views.SlaReportListApi.as_view(), name="api-sla-reports"),
    path("sla/reports.csv", views.SlaReportCsvApi.as_view(), {"format": "csv"}, name="api-sla-reports-csv"),
    path("sla/reports/<int:report_id>/", views.SlaReportDetailApi.as_view(), name="api-sla-report"),
    path("dora/", views.DoraApi.as_view(), name="api-dora"),
    path("dora.csv", views.DoraCsvApi.as_view(), {"format": "csv"}, name="api-dora-csv"),
    path("sla/policies/<slug:environment>/", views.SlaPolicyApi.as_view(), name="api-sla-policy"),
    path("sla/policies/<slug:environment>/backtest/", views.SlaPolicyBacktestApi.as_view(),
         name="api-sla-policy-backtest"),
]
