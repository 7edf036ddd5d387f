from django.urls import path

from pipelines import api

urlpatterns = [
    path("releases/<int:release_id>/pipeline/", api.ReleasePipelineApi.as_view(), name="api-release-pipeline"),
    path("releases/<int:release_id>/pipeline/retry/", api.PipelineRetryApi.as_view(), name="api-pipeline-retry"),
    path("releases/<int:release_id>/scan-override/", api.ScanOverrideApi.as_view(), name="api-scan-override"),
    path("pipelines/<int:pipeline_id>/stages/<slug:stage_name>/log/", api.StageLogApi.as_view(),
         name="api-pipeline-stage-log"),
    path("pipelines/<int:pipeline_id>/artefacts/<int:artefact_id>/", api.ArtefactDownloadApi.as_view(),
         name="api-pipeline-artefact"),
    path("webhooks/gitlab/", api.GitlabWebhookApi.as_view(), name="api-webhook-gitlab"),
    path("webhook-endpoints/", api.WebhookEndpointListApi.as_view(), name="api-webhook-endpoints"),
    path("webhook-endpoints/<int:endpoint_id>/", api.WebhookEndpointDetailApi.as_view(),
         name="api-webhook-endpoint"),
]
