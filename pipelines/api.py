"""REST API of the pipelines: per-release pipeline, stage logs, artefacts, retry, scan override, webhooks.

One view per action; logic in pipelines/services.py, pipelines/selectors.py and pipelines/triggers.py.
"""
from django.http import HttpResponse
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines import selectors, services, triggers
from pipelines.models import StageName, WebhookEndpoint, WebhookFormat
from releases import policy
from releases.api.base import StrictInputSerializer, requires
from releases.errors import NotFound
from releases.services import Actor


# --- output serializers: what the pipeline answers look like (they read selectors.pipeline_summary) -----------


class LogLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    time = serializers.CharField(help_text="ISO 8601")
    level = serializers.CharField()
    message = serializers.CharField()


class ArtefactOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    label = serializers.CharField()
    size_bytes = serializers.IntegerField()
    content_type = serializers.CharField()
    url = serializers.CharField()


class StageOutput(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.CharField()
    attempt = serializers.IntegerField()
    task_id = serializers.CharField()
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    failure_reason = serializers.CharField()
    log_url = serializers.CharField()
    log_tail = LogLineOutput(many=True)
    artefacts = ArtefactOutput(many=True)


class ScanOverrideOutput(serializers.Serializer):
    by = serializers.CharField()
    reason = serializers.CharField()
    overridden = serializers.CharField(help_text="what the override accepted: High findings, unverified checks")


class ReusedImageOutput(serializers.Serializer):
    release_id = serializers.IntegerField(help_text="the release whose pipeline built, scanned and pushed the image")
    pipeline_id = serializers.IntegerField()
    digest = serializers.CharField()


class PipelineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    release_id = serializers.IntegerField()
    status = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    failure_reason = serializers.CharField()
    reused_from = ReusedImageOutput(allow_null=True, help_text="build once: set when the image was reused")
    scan_override = ScanOverrideOutput(allow_null=True)
    created_at = serializers.CharField()
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    stages = StageOutput(many=True)


class StageLogOutput(serializers.Serializer):
    pipeline_id = serializers.IntegerField()
    stage = serializers.CharField()
    status = serializers.CharField()
    lines = LogLineOutput(many=True)
    next_after = serializers.IntegerField(help_text="pass as ?after= to get the lines after these")


def _summary_or_404(request, release_id: int) -> dict:
    pipeline = selectors.pipeline_for_release(user=request.user, release_id=release_id)
    if pipeline is None:
        raise NotFound(gettext("release #%(release_id)s has no pipeline you may see") % {"release_id": release_id})
    return PipelineOutput(selectors.pipeline_summary(pipeline)).data


class ReleasePipelineApi(APIView):
    permission_classes = [requires(policy.RELEASE_VIEW)]

    @extend_schema(responses=PipelineOutput)
    def get(self, request, release_id: int):
        return Response(_summary_or_404(request, release_id))


class PipelineRetryApi(APIView):
    permission_classes = [requires(policy.PIPELINE_RUN)]

    @extend_schema(request=None, responses={202: PipelineOutput})
    def post(self, request, release_id: int):
        if selectors.pipeline_for_release(user=request.user, release_id=release_id) is None:
            raise NotFound(gettext("release #%(release_id)s has no pipeline you may see") % {
                               "release_id": release_id})
        services.pipeline_retry_from_failed_stage(actor=Actor.of(request.user), release_id=release_id)
        return Response(_summary_or_404(request, release_id), status=status.HTTP_202_ACCEPTED)


class ScanOverrideApi(APIView):
    permission_classes = [requires(policy.SCAN_OVERRIDE)]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "ScanOverrideInput"

        reason = serializers.CharField(max_length=4000)

    @extend_schema(request=InputSerializer, responses={202: PipelineOutput})
    def post(self, request, release_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if selectors.pipeline_for_release(user=request.user, release_id=release_id) is None:
            raise NotFound(gettext("release #%(release_id)s has no pipeline you may see") % {
                               "release_id": release_id})
        services.scan_override(actor=Actor.of(request.user), release_id=release_id,
                               reason=data.validated_data["reason"])
        return Response(_summary_or_404(request, release_id), status=status.HTTP_202_ACCEPTED)


class StageLogApi(APIView):
    permission_classes = [requires(policy.RELEASE_VIEW)]

    class FilterSerializer(serializers.Serializer):
        after = serializers.IntegerField(required=False, min_value=0, default=0)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=selectors.LOG_PAGE_MAX,
                                         default=selectors.LOG_PAGE_MAX)

    @extend_schema(parameters=[FilterSerializer], responses=StageLogOutput)
    def get(self, request, pipeline_id: int, stage_name: str):
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pipeline_id)
        if pipeline is None:
            raise NotFound(gettext("no pipeline with id %(pipeline_id)s") % {"pipeline_id": pipeline_id})
        if stage_name not in StageName.values:
            raise NotFound(gettext("no stage '%(stage_name)s'; stages: %(values)s") % {
                               "stage_name": stage_name[:30], "values": ', '.join(StageName.values)})
        stage = pipeline.stages.get(name=stage_name)
        lines = selectors.stage_log(stage=stage, after_id=params.validated_data["after"],
                                    limit=params.validated_data["limit"])
        return Response(StageLogOutput({
            "pipeline_id": pipeline.pk, "stage": stage.name, "status": stage.status,
            "lines": [{"id": line.pk, "time": line.time.isoformat(), "level": line.level, "message": line.message}
                      for line in lines],
            "next_after": lines[-1].pk if lines else params.validated_data["after"],
        }).data)


class ArtefactDownloadApi(APIView):
    permission_classes = [requires(policy.RELEASE_VIEW)]

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY, (200, "text/html"): OpenApiTypes.STR})
    def get(self, request, pipeline_id: int, artefact_id: int):
        artefact = selectors.artefact_get(user=request.user, pipeline_id=pipeline_id, artefact_id=artefact_id)
        if artefact is None:
            raise NotFound(gettext("no artefact %(artefact_id)s in pipeline %(pipeline_id)s") % {
                               "artefact_id": artefact_id, "pipeline_id": pipeline_id})
        response = HttpResponse(artefact.content, content_type=artefact.content_type)
        disposition = "inline" if request.query_params.get("download") != "1" else "attachment"
        response["Content-Disposition"] = f'{disposition}; filename="{artefact.filename}"'
        # The HTML report is escaped when rendered; the sandbox keeps it from running anything regardless.
        response["Content-Security-Policy"] = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
        response["X-Content-Type-Options"] = "nosniff"
        return response


# --- GitLab ----------------------------------------------------------------------------------------------------


class GitlabWebhookApi(APIView):
    """GitLab calls this with its secret token; it is not a user, so no session, CSRF or API token applies."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    class PushEventInput(serializers.Serializer):
        """The parts of GitLab's tag push event that are read (GitLab sends more; the rest is ignored)."""

        class Meta:
            ref_name = "GitlabTagPushInput"

        object_kind = serializers.CharField(required=False)
        ref = serializers.CharField(required=False, help_text="refs/tags/<tag>")
        checkout_sha = serializers.CharField(required=False, allow_null=True)
        project = serializers.DictField(required=False, help_text="path_with_namespace, name, ...")
        repository = serializers.DictField(required=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GitlabWebhookOutput"

        detail = serializers.CharField()
        release_id = serializers.IntegerField(required=False)
        status = serializers.CharField(required=False)

    @extend_schema(request=PushEventInput, responses={200: OutputSerializer, 201: OutputSerializer,
                                                      202: OutputSerializer})
    def post(self, request):
        token = request.headers.get("X-Gitlab-Token")
        event = request.headers.get("X-Gitlab-Event", "")
        # The token is checked before the body is parsed: a stranger's payload is never looked at.
        triggers.gitlab_check_token(token)
        payload = request.data if isinstance(request.data, dict) else {}
        release, message = triggers.gitlab_tag_push(token=token, event=event, payload=payload)
        if release is None:
            return Response({"detail": message}, status=status.HTTP_202_ACCEPTED)
        return Response({"detail": message, "release_id": release.pk, "status": release.status},
                        status=status.HTTP_201_CREATED if "created" in message else status.HTTP_200_OK)


# --- webhook endpoints (ops) -----------------------------------------------------------------------------------


class WebhookEndpointOutput(serializers.ModelSerializer):
    url = serializers.CharField(source="masked_url", help_text="scheme and host only: the URL may hold a token")
    signing_secret_set = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "format", "enabled", "signing_secret_set", "created_at"]

    def get_signing_secret_set(self, endpoint) -> bool:
        return bool(endpoint.signing_secret)


class _WebhookInput(StrictInputSerializer):
    name = serializers.RegexField(r"^[A-Za-z0-9 ._-]{1,100}$", error_messages={
        "invalid": "1-100 letters, digits, spaces, '.', '_' or '-'"})
    url = serializers.URLField(max_length=1000)
    format = serializers.ChoiceField(choices=WebhookFormat.choices, default=WebhookFormat.GENERIC)
    signing_secret = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                           write_only=True)
    enabled = serializers.BooleanField(required=False, default=True)

    def validate_url(self, value):
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError(gettext("must be an http:// or https:// URL"))
        return value


class WebhookEndpointListApi(APIView):
    permission_classes = [requires(policy.WEBHOOK_MANAGE)]

    class InputSerializer(_WebhookInput):
        class Meta:
            ref_name = "WebhookEndpointCreateInput"

    @extend_schema(responses=WebhookEndpointOutput(many=True))
    def get(self, request):
        return Response(WebhookEndpointOutput(selectors.webhook_endpoint_list(user=request.user), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: WebhookEndpointOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(actor=Actor.of(request.user), **data.validated_data)
        return Response(WebhookEndpointOutput(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailApi(APIView):
    permission_classes = [requires(policy.WEBHOOK_MANAGE)]

    class InputSerializer(_WebhookInput):
        class Meta:
            ref_name = "WebhookEndpointUpdateInput"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, partial=True, **kwargs)

    def _get(self, request, endpoint_id: int) -> WebhookEndpoint:
        endpoint = selectors.webhook_endpoint_list(user=request.user).filter(pk=endpoint_id).first()
        if endpoint is None:
            raise NotFound(gettext("no webhook with id %(endpoint_id)s") % {"endpoint_id": endpoint_id})
        return endpoint

    @extend_schema(responses=WebhookEndpointOutput)
    def get(self, request, endpoint_id: int):
        return Response(WebhookEndpointOutput(self._get(request, endpoint_id)).data)

    @extend_schema(request=InputSerializer, responses=WebhookEndpointOutput)
    def patch(self, request, endpoint_id: int):
        self._get(request, endpoint_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {key: value for key, value in data.validated_data.items() if key in request.data}
        endpoint = services.webhook_endpoint_update(actor=Actor.of(request.user), endpoint_id=endpoint_id,
                                                    changes=changes)
        return Response(WebhookEndpointOutput(endpoint).data)

    @extend_schema(responses={204: None})
    def delete(self, request, endpoint_id: int):
        self._get(request, endpoint_id)
        services.webhook_endpoint_delete(actor=Actor.of(request.user), endpoint_id=endpoint_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
