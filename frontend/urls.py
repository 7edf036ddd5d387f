from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import sla_views, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.fleet, name="fleet"),
    path("releases/<int:release_id>/", views.release_detail, name="release-detail"),
    path("releases/<int:release_id>/<slug:action>/", views.release_action, name="release-action"),
    # --- SLA gate pages (sla app) ---
    path("sla/releases/<int:release_id>/", sla_views.release_sla_section, name="release-sla"),
    path("sla/reports/", sla_views.sla_reports, name="sla-reports"),
    path("sla/reports/<int:report_id>/", sla_views.sla_report, name="sla-report"),
    path("sla/reports/<int:report_id>/findings.csv", sla_views.sla_report_csv, name="sla-report-csv"),
]
