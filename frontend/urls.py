from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import (
    approval_views,
    audit_views,
    deploy_views,
    dora_views,
    environment_views,
    notification_views,
    pipeline_views,
    preference_views,
    release_new_views,
    routing_views,
    sla_views,
    views,
)

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.fleet, name="fleet"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("preferences/", preference_views.preferences, name="preferences"),  # browsers ask for it on pages without a <link rel=icon>
    path("approvals/", approval_views.approvals_inbox, name="approvals-inbox"),
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("audit/export.csv", audit_views.audit_export, name="audit-export"),
    path("notifications/", notification_views.notifications_page, name="notifications"),
    path("notifications/deliveries/<int:delivery_id>/retry/", notification_views.delivery_retry,
         name="notification-delivery-retry"),
    path("environments/", environment_views.environment_list, name="environment-list"),
    path("environments/<slug:name>/", environment_views.environment_detail, name="environment-detail"),
    path("releases/new/", release_new_views.release_new, name="release-new"),
    path("releases/new/check/", release_new_views.release_new_check, name="release-new-check"),
    # The release page and its sections. Section URLs come before release-action, which would match them.
    path("releases/<int:release_id>/", views.release_detail, name="release-detail"),
    path("releases/<int:release_id>/routing/", routing_views.release_routing, name="release-routing"),
    path("releases/<int:release_id>/routing/<slug:action>/", routing_views.release_routing_action,
         name="release-routing-action"),
    path("releases/<int:release_id>/pipeline/", pipeline_views.release_pipeline, name="release-pipeline"),
    path("releases/<int:release_id>/pipeline/<slug:action>/", pipeline_views.release_pipeline_action,
         name="release-pipeline-action"),
    path("releases/<int:release_id>/<slug:action>/", views.release_action, name="release-action"),
    path("deploy/releases/<int:release_id>/history/", deploy_views.history_section, name="deploy-history-section"),
    path("deploy/<slug:name>/<slug:env>/values/", deploy_views.environment_values, name="deploy-values"),
    path("deploy/<slug:name>/<slug:env>/revisions/<int:number>/rollback/", deploy_views.revision_rollback,
         name="deploy-revision-rollback"),
    # QA's SLA snapshots and the release page's SLA section
    path("sla/releases/<int:release_id>/", sla_views.release_sla_section, name="release-sla"),
    path("sla/releases/<int:release_id>/acknowledge/", sla_views.release_sla_acknowledge,
         name="release-sla-acknowledge"),
    path("sla/policy/<slug:environment>/", sla_views.sla_policy, name="sla-policy"),
    path("dora/", dora_views.dora_page, name="dora"),
    path("sla/reports/", sla_views.sla_reports, name="sla-reports"),
    path("sla/reports/<int:report_id>/", sla_views.sla_report, name="sla-report"),
    path("sla/reports/<int:report_id>/findings.csv", sla_views.sla_report_csv, name="sla-report-csv"),
]
