from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import pipeline_views, routing_views, sla_views, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.fleet, name="fleet"),
    path("releases/<int:release_id>/", views.release_detail, name="release-detail"),
    # Gray routing section of the release page (issue 6); before release-action, which would match it
    path("releases/<int:release_id>/routing/", routing_views.release_routing, name="release-routing"),
    path("releases/<int:release_id>/routing/<slug:action>/", routing_views.release_routing_action,
         name="release-routing-action"),
    # pipelines (issue 3): the release page's pipeline section (before release-action, which would match pipeline/)
    path("releases/<int:release_id>/pipeline/", pipeline_views.release_pipeline, name="release-pipeline"),
    path("releases/<int:release_id>/pipeline/<slug:action>/", pipeline_views.release_pipeline_action,
         name="release-pipeline-action"),
    path("releases/<int:release_id>/<slug:action>/", views.release_action, name="release-action"),
    # --- SLA gate pages (sla app) ---
    path("sla/releases/<int:release_id>/", sla_views.release_sla_section, name="release-sla"),
    path("sla/reports/", sla_views.sla_reports, name="sla-reports"),
    path("sla/reports/<int:report_id>/", sla_views.sla_report, name="sla-report"),
    path("sla/reports/<int:report_id>/findings.csv", sla_views.sla_report_csv, name="sla-report-csv"),
]

# Deploy targets (pipelines): the release page's deploy-history section, rollback to a revision, values per environment
from frontend import deploy_views  # noqa: E402

urlpatterns += [
    path("deploy/releases/<int:release_id>/history/", deploy_views.history_section, name="deploy-history-section"),
    path("deploy/<slug:name>/<slug:env>/values/", deploy_views.environment_values, name="deploy-values"),
    path("deploy/<slug:name>/<slug:env>/revisions/<int:number>/rollback/", deploy_views.revision_rollback,
         name="deploy-revision-rollback"),
]
