"""REST API of the SLA gate. Views parse input, ask the policy, call one selector or service, serialise."""
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from releases import policy as access
from releases import selectors as release_selectors
from releases.api.base import KEYSET_PARAMETERS, KeysetPagination, StrictInputSerializer, requires
from releases.keyset import keyset_page
from releases.models import AgentService, Environment
from releases.services import Actor
from sla import selectors, services
from sla.api.renderers import SlaReportCsvRenderer
from sla.models import REPORT_STATUSES
from sla.policy import PolicyInvalid

TAG_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
NAME_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"
CSV_CHUNK = 2000
CSV_LOCK_SECONDS = 60  # renewed with every chunk: an export whose worker died frees the lock after this


def _csv_chunk(qs, cursor):
    page = keyset_page(qs, field="evaluated_at", size=CSV_CHUNK, cursor=cursor)
    return SlaReportCsvRenderer.rows_text([selectors.report_row(r) for r in page], header=False), page.next_cursor


async def _csv_stream(qs, lock_key: str):
    """Every matching report, newest first, read and sent a chunk at a time (an async iterator under ASGI)."""
    try:
        yield SlaReportCsvRenderer.rows_text([], header=True)
        cursor = None
        while True:
            text, cursor = await sync_to_async(_csv_chunk)(qs, cursor)
            yield text
            if cursor is None:
                return
            await cache.atouch(lock_key, CSV_LOCK_SECONDS)
    finally:
        await cache.adelete(lock_key)


def _tag_field(required: bool):
    return serializers.RegexField(TAG_RE, required=required, default="" if not required else serializers.empty,
                                  error_messages={"invalid": "must be a version tag such as v3.3.1 (letters, digits, "
                                                             "'.', '_', '-'; at most 100 characters)",
                                                  "required": "the version to report on, e.g. ?version=v3.3.1",
                                                  "blank": "the version to report on, e.g. ?version=v3.3.1"})


def _name_field():
    return serializers.RegexField(NAME_RE, required=False, default="", error_messages={
        "invalid": "must be a name of lowercase letters, digits and '-'"})


class ReportFilters(serializers.Serializer):
    version = _tag_field(required=False)
    environment = _name_field()
    service = _name_field()
    status = serializers.CharField(required=False, default="", max_length=100)

    def validate_status(self, value):
        unknown = [s for s in value.split(",") if s and s not in REPORT_STATUSES]
        if unknown:
            raise serializers.ValidationError(
                f"unknown status {', '.join(unknown)}; statuses: {', '.join(REPORT_STATUSES)}")
        return value


class DesignReportOutput(serializers.Serializer):
    """The design document's SLA report."""

    version = serializers.CharField()
    start_ts = serializers.CharField()
    agent_group = serializers.CharField()
    success_rate = serializers.FloatField(allow_null=True)
    p95_latency_ms = serializers.IntegerField(allow_null=True)
    error_trace_ratio = serializers.FloatField(allow_null=True)
    callback_fail_rate = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=REPORT_STATUSES)
    action = serializers.CharField()


class AgentSlaReportApi(APIView):
    """GET /monitor/agent-sla-report?version=v3.3.1 — the latest SLA report of a version in the design shape.

    Optional service= and environment= narrow it when several services or environments run that version; the
    answer carries the report's service, environment and id in the X-Rollgate-* headers."""

    permission_classes = [requires(access.SLA_VIEW)]

    class Params(ReportFilters):
        version = _tag_field(required=True)

    @extend_schema(parameters=[Params], responses=DesignReportOutput, operation_id="monitor_agent_sla_report")
    def get(self, request):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = selectors.report_list(user=request.user, **params.validated_data).first()
        if report is None:
            where = ", ".join(f"{k}={v}" for k, v in params.validated_data.items() if v and k != "version")
            return Response({"detail": f"no SLA report for version {params.validated_data['version']}"
                                       + (f" with {where}" if where else "") + " yet", "code": "not_found"},
                            status=404)
        return Response(report.design_shape(), headers={
            "X-Rollgate-Report-Id": str(report.pk), "X-Rollgate-Service": report.service.name,
            "X-Rollgate-Environment": report.environment.name})


class ReleaseSlaApi(APIView):
    """GET /api/releases/<id>/sla/ — the latest verdict with its reasons and the canary-vs-baseline series."""

    permission_classes = [requires(access.SLA_VIEW)]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, release_id: int):
        release = release_selectors.release_get(user=request.user, release_id=release_id)
        if release is None:
            return Response({"detail": f"no release with id {release_id}", "code": "not_found"}, status=404)
        return Response(selectors.release_sla(user=request.user, release=release))


class SlaReportListApi(APIView):
    """GET /api/sla/reports/ (JSON array, paginated) or /api/sla/reports.csv (?format=csv): stored snapshots."""

    permission_classes = [requires(access.SLA_VIEW)]
    renderer_classes = [JSONRenderer, SlaReportCsvRenderer]

    @extend_schema(parameters=[ReportFilters, *KEYSET_PARAMETERS], responses=OpenApiTypes.OBJECT,
                   operation_id="sla_reports_list")
    def get(self, request, format=None):
        filters = ReportFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.report_list(user=request.user, **filters.validated_data)
        if request.accepted_renderer.format == "csv":
            lock_key = f"sla-report-export:{request.user.pk}"
            if not cache.add(lock_key, "running", CSV_LOCK_SECONDS):
                return Response({"detail": "an SLA report export of yours is still running: wait for it to finish",
                                 "code": "export_running"}, status=409)
            response = StreamingHttpResponse(_csv_stream(qs, lock_key), content_type="text/csv")
            response["Content-Disposition"] = 'attachment; filename="sla-reports.csv"'
            return response
        paginator = KeysetPagination("evaluated_at")
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([selectors.report_row(r) for r in page])


class SlaReportCsvApi(SlaReportListApi):
    """GET /api/sla/reports.csv — the same list as CSV: every matching row, streamed; one export per user at a time."""

    @extend_schema(parameters=[ReportFilters], responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="sla_reports_csv")
    def get(self, request, format=None):
        return super().get(request, format=format)


class SlaReportDetailApi(APIView):
    """GET /api/sla/reports/<id>/ — one snapshot with every number, threshold, query, window and the verdict."""

    permission_classes = [requires(access.SLA_VIEW)]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, report_id: int):
        report = selectors.report_get(user=request.user, report_id=report_id)
        if report is None:
            return Response({"detail": f"no SLA report with id {report_id}", "code": "not_found"}, status=404)
        return Response({**selectors.report_row(report), "report": report.design_shape(),
                         "window_s": selectors.report_window_s(report), "findings": selectors.report_findings(report),
                         "readings": report.readings, "verdict": report.verdict})


class SlaPolicyApi(APIView):
    """GET/PUT /api/sla/policies/<environment>/[?service=<name>] — the effective policy and its versions.

    PUT {"policy": {...}, "comment": "..."}: for an environment, the full policy (missing fields take the
    defaults); for a service, only the fields it overrides. Durations accept seconds or "30s", "10m", "1h"."""

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "SlaPolicyInput"

        policy = serializers.JSONField()
        comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")

    class Params(serializers.Serializer):
        service = _name_field()

    def get_permissions(self):
        action = access.SLA_VIEW if self.request.method == "GET" else access.SLA_POLICY_MANAGE
        return [requires(action)()]

    def _scope(self, request, environment: str):
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        env = Environment.objects.filter(name=environment).first()
        if env is None:
            known = ", ".join(Environment.objects.values_list("name", flat=True))
            return None, None, Response({"detail": f"no environment named '{environment}'; environments: {known}",
                                         "code": "not_found"}, status=404)
        service = None
        if params.validated_data["service"]:
            service = AgentService.objects.filter(name=params.validated_data["service"]).first()
            if service is None:
                return None, None, Response(
                    {"detail": f"service: no service named '{params.validated_data['service']}'", "code": "invalid",
                     "errors": {"service": ["no such service"]}}, status=400)
        return env, service, None

    @extend_schema(parameters=[OpenApiParameter("service", str, required=False)], responses=OpenApiTypes.OBJECT)
    def get(self, request, environment: str):
        env, service, error = self._scope(request, environment)
        if error:
            return error
        return Response(selectors.policy_view(user=request.user, environment=env, service=service))

    @extend_schema(request=InputSerializer, parameters=[OpenApiParameter("service", str, required=False)],
                   responses=OpenApiTypes.OBJECT)
    def put(self, request, environment: str):
        env, service, error = self._scope(request, environment)
        if error:
            return error
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.policy_version_save(actor=Actor.of(request.user), environment=env.name,
                                         service=service.name if service else "",
                                         policy=data.validated_data["policy"], comment=data.validated_data["comment"])
        except PolicyInvalid as exc:
            raise serializers.ValidationError({"policy": {name: [rule] for name, rule in exc.errors.items()}})
        return Response(selectors.policy_view(user=request.user, environment=env, service=service))

