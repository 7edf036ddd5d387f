from django.urls import path

from releases.api import views

urlpatterns = [
    path("auth/token/", views.TokenApi.as_view(), name="api-token"),
    path("health/", views.HealthApi.as_view(), name="api-health"),
    path("services/", views.ServiceListApi.as_view(), name="api-services"),
    path("services/<slug:name>/", views.ServiceDetailApi.as_view(), name="api-service"),
    path("environments/", views.EnvironmentListApi.as_view(), name="api-environments"),
    path("environments/<slug:name>/", views.EnvironmentDetailApi.as_view(), name="api-environment"),
    path("releases/", views.ReleaseListApi.as_view(), name="api-releases"),
    path("releases/<int:release_id>/", views.ReleaseDetailApi.as_view(), name="api-release"),
    path("releases/<int:release_id>/approve/", views.ReleaseApproveApi.as_view(), name="api-release-approve"),
    path("releases/<int:release_id>/reject/", views.ReleaseRejectApi.as_view(), name="api-release-reject"),
    path("releases/<int:release_id>/promote/", views.ReleasePromoteApi.as_view(), name="api-release-promote"),
    path("releases/<int:release_id>/pause/", views.ReleasePauseApi.as_view(), name="api-release-pause"),
    path("releases/<int:release_id>/resume/", views.ReleaseResumeApi.as_view(), name="api-release-resume"),
    path("releases/<int:release_id>/rollback/", views.ReleaseRollbackApi.as_view(), name="api-release-rollback"),
    path("releases/<int:release_id>/evidence/", views.ReleaseEvidenceApi.as_view(), name="api-release-evidence"),
    path("releases/<int:release_id>/promote-next-env/", views.ReleasePromoteNextEnvApi.as_view(),
         name="api-release-promote-next-env"),
    path("audit-events/", views.AuditEventListApi.as_view(), name="api-audit-events"),
    path("audit-events/<int:event_id>/", views.AuditEventDetailApi.as_view(), name="api-audit-event"),
]
