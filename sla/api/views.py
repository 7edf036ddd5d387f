"""REST API of the SLA gate. Views parse input, ask the policy, call one selector or service, serialise."""
import csv
import io
import json
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.http import StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from releases import policy as access
from releases import selectors as release_selectors
from releases.api.base import (KEYSET_PARAMETERS, KeysetPagination, StrictInputSerializer, comma_choices_field,
                               requires)
from releases.keyset import keyset_page
from releases.services import Actor
from sla import dora, selectors, services
from sla.api.renderers import SlaReportCsvRenderer
from sla.models import REPORT_ACTIONS, REPORT_STATUSES
from sla.policy import PolicyInvalid, SlaPolicy

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
    status = comma_choices_field(REPORT_STATUSES, max_length=100,
                                 help_text=f"comma-separated: {', '.join(REPORT_STATUSES)}")
    action = comma_choices_field(REPORT_ACTIONS, max_length=100,
                                 help_text=f"comma-separated: {', '.join(REPORT_ACTIONS)}")

    def validate_status(self, value):
        unknown = [s for s in value.split(",") if s and s not in REPORT_STATUSES]
        if unknown:
            raise serializers.ValidationError(
                gettext("unknown status %(unknown)s; statuses: %(statuses)s") % {
                    "unknown": ', '.join(unknown), "statuses": ', '.join(REPORT_STATUSES)})
        return value

    def validate_action(self, value):
        unknown = [a for a in value.split(",") if a and a not in REPORT_ACTIONS]
        if unknown:
            raise serializers.ValidationError(
                gettext("unknown action %(unknown)s; actions: %(actions)s") % {
                    "unknown": ', '.join(unknown), "actions": ', '.join(REPORT_ACTIONS)})
        return value


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field):
    """A number passed through as stored (counts stay integers, ratios keep their rounding)."""

    def to_representation(self, value):
        return value


class FindingOutput(serializers.Serializer):
    """One rule's result; `measured` and `threshold` are rounded in `unit` (ratio, ms, count, s, stat)."""

    rule = serializers.CharField()
    fired = serializers.BooleanField()
    effect = serializers.CharField(allow_null=True, help_text="the action the rule asks for; null when it passed")
    text = serializers.CharField()
    measured = NumberField(allow_null=True)
    threshold = NumberField(allow_null=True)
    unit = serializers.CharField(required=False, allow_null=True)
    query = serializers.CharField(allow_null=True, help_text="per-release PromQL: paste it into Prometheus")


class ManualReviewOutput(serializers.Serializer):
    since = serializers.CharField(help_text="ISO 8601, when the gate raised it")
    reason = serializers.CharField()


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


class SlaGateOutput(serializers.Serializer):
    sequence = serializers.IntegerField()
    status = serializers.CharField()
    action = serializers.CharField()
    outcome = serializers.CharField()
    evaluated_at = serializers.CharField()
    evaluated_weight = serializers.IntegerField()
    consecutive_errors = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)
    action_taken = serializers.CharField(allow_blank=True, help_text="what the controller did, in words")
    healthy = serializers.BooleanField()
    healthy_at = serializers.CharField(allow_null=True)


class SlaVerdictOutput(serializers.Serializer):
    at = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    action = serializers.CharField(allow_null=True)
    summary = serializers.CharField(allow_null=True, help_text="the verdict in one plain sentence")
    healthy = serializers.BooleanField(allow_null=True)
    reasons = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                    help_text="fired rules first (they decided), then the ones that passed")
    findings = FindingOutput(many=True, allow_null=True)
    report = DesignReportOutput(allow_null=True)


def _series(child):
    return serializers.ListField(child=child)


class SlaSeriesOutput(serializers.Serializer):
    """Canary vs baseline per evaluation, oldest first (the charts)."""

    at = _series(serializers.CharField())
    gray_weight = _series(serializers.IntegerField())
    status = _series(serializers.CharField())
    canary_success_rate = _series(serializers.FloatField(allow_null=True))
    baseline_success_rate = _series(serializers.FloatField(allow_null=True))
    canary_p95_ms = _series(serializers.FloatField(allow_null=True))
    baseline_p95_ms = _series(serializers.FloatField(allow_null=True))
    canary_error_ratio = _series(serializers.FloatField(allow_null=True))
    baseline_error_ratio = _series(serializers.FloatField(allow_null=True))
    canary_callback_fail_rate = _series(serializers.FloatField(allow_null=True))
    baseline_callback_fail_rate = _series(serializers.FloatField(allow_null=True))
    canary_eval_score = _series(serializers.FloatField(allow_null=True))
    baseline_eval_score = _series(serializers.FloatField(allow_null=True))
    canary_requests = _series(serializers.FloatField(allow_null=True))
    baseline_requests = _series(serializers.FloatField(allow_null=True))


class ReleaseSlaOutput(serializers.Serializer):
    release_id = serializers.IntegerField()
    summary = serializers.CharField(allow_null=True, help_text="the last verdict in one plain sentence")
    manual_review = ManualReviewOutput(allow_null=True, help_text="waiting for a person; null when none")
    gate = SlaGateOutput(allow_null=True, help_text="null until the gate evaluated the release")
    verdict = SlaVerdictOutput(allow_null=True)
    latest_report_id = serializers.IntegerField(allow_null=True)
    series = SlaSeriesOutput()


class ReleaseSlaApi(APIView):
    """GET /api/releases/<id>/sla/ — the latest verdict (its sentence first), the pending manual review, the
    rules with their reasons and the canary-vs-baseline series."""

    permission_classes = [requires(access.SLA_VIEW)]

    @extend_schema(responses=ReleaseSlaOutput)
    def get(self, request, release_id: int):
        release = release_selectors.release_get(user=request.user, release_id=release_id)
        if release is None:
            return Response({"detail": f"no release with id {release_id}", "code": "not_found"}, status=404)
        return Response(ReleaseSlaOutput(selectors.release_sla(user=request.user, release=release)).data)


class _CanSettleManualReview(BasePermission):
    """Deny by default: only people who may resume or roll back a release settle the gate's manual review (the
    service then checks the permission of the decision taken)."""

    message = "not allowed"

    def has_permission(self, request, view):
        decisions = [access.can(request.user, a) for a in (access.RELEASE_RESUME, access.RELEASE_ROLLBACK)]
        if any(decisions):
            return True
        roles = access.roles_of(request.user)
        if not roles:
            self.message = decisions[0].reason
            return False
        settlers = sorted({*access.roles_with(access.RELEASE_RESUME), *access.roles_with(access.RELEASE_ROLLBACK)})
        self.message = (f"only {', '.join(settlers)} may settle a manual review of the SLA gate (resume or roll "
                        f"back); you are {', '.join(sorted(roles))}")
        return False


class ReleaseSlaAcknowledgeApi(APIView):
    """POST /api/releases/<id>/sla/acknowledge/ {"decision": "resume"|"rollback", "comment": "..."} — settle
    the gate's manual review: resume (the gate judges again; a paused release resumes) or roll the canary back.
    The comment is required and audited (sla.manual_review.acknowledge).  409 when no review is waiting."""

    permission_classes = [_CanSettleManualReview]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "SlaAcknowledgeInput"

        decision = serializers.ChoiceField(choices=services.ACKNOWLEDGE_DECISIONS, error_messages={
            "invalid_choice": f"must be one of {', '.join(services.ACKNOWLEDGE_DECISIONS)}, got \"{{input}}\"",
            "required": f"say what to do: one of {', '.join(services.ACKNOWLEDGE_DECISIONS)}"})
        comment = serializers.CharField(max_length=settings.ROLLGATE_MAX_COMMENT_LENGTH, error_messages={
            "required": "a comment is required: say why the manual review is settled",
            "blank": "a comment is required: say why the manual review is settled"})

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SlaAcknowledgeOutput"

        release_id = serializers.IntegerField()
        decision = serializers.CharField()
        release_status = serializers.CharField(help_text="the release's status after the decision")
        gate_status = serializers.CharField()
        gate_action = serializers.CharField()
        action_taken = serializers.CharField()
        sequence = serializers.IntegerField()
        manual_review = ManualReviewOutput(allow_null=True, help_text="null: nothing waits any more")

    @extend_schema(request=InputSerializer, responses=OutputSerializer, operation_id="release_sla_acknowledge")
    def post(self, request, release_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if release_selectors.release_get(user=request.user, release_id=release_id) is None:
            return Response({"detail": f"no release with id {release_id}", "code": "not_found"}, status=404)
        record = services.gate_acknowledge(actor=Actor.of(request.user), release_id=release_id,
                                           **data.validated_data)
        release = release_selectors.release_get(user=request.user, release_id=release_id)
        return Response(self.OutputSerializer({
            "release_id": release_id, "decision": data.validated_data["decision"],
            "release_status": release.status, "gate_status": record.status, "gate_action": record.action,
            "action_taken": record.action_taken, "sequence": record.sequence,
            "manual_review": selectors.gate_manual_review(record),
        }).data)


class ReportRowOutput(DesignReportOutput):
    """One stored snapshot: the design shape, where it came from, the verdict sentence and every reason."""

    # A plain string here: the same choice set in a second component would rename the schema's status enum.
    status = serializers.CharField(help_text=f"one of {', '.join(REPORT_STATUSES)}")
    id = serializers.IntegerField()
    service = serializers.CharField()
    environment = serializers.CharField()
    release_id = serializers.IntegerField()
    gray_weight = serializers.IntegerField()
    eval_score = serializers.FloatField(allow_null=True, help_text="the canary's mean eval score (LLM quality); "
                                                                   "null when its traces carry none")
    outcome = serializers.CharField()
    evaluated_at = serializers.CharField()
    created_at = serializers.CharField()
    summary = serializers.CharField(allow_blank=True, help_text="the verdict in one plain sentence")
    reasons = serializers.ListField(child=serializers.CharField())


class ReportFindingOutput(FindingOutput):
    window_s = serializers.IntegerField(allow_null=True, required=False, help_text="the window of its numbers")


class ReportDetailOutput(ReportRowOutput):
    """One snapshot in full: the design shape, every rule, the raw readings with their queries, the verdict."""

    report = DesignReportOutput()
    window_s = serializers.IntegerField(allow_null=True)
    findings = ReportFindingOutput(many=True)
    readings = serializers.DictField(help_text="canary and baseline: every metric's value, query, window and time")
    verdict = serializers.DictField(help_text="sla.verdict.Verdict.to_dict(): summary, reasons, findings, state")


class PolicyVersionOutput(serializers.Serializer):
    number = serializers.IntegerField()
    policy = serializers.DictField(help_text="full policy (environment) or the overridden fields (service)")
    author = serializers.CharField()
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.CharField()


class PrecedenceRowOutput(serializers.Serializer):
    status = serializers.CharField()
    action = serializers.CharField()
    fired_by = serializers.CharField()


class PolicyViewOutput(serializers.Serializer):
    """The effective policy of an environment (or a service in it), its versions, the defaults, and how the
    verdict decides (precedence table and the power formula)."""

    environment = serializers.CharField()
    service = serializers.CharField(allow_null=True)
    number = serializers.IntegerField(help_text="latest saved version of this scope: the environment's policy, or "
                                                "the service's override (0: never saved)")
    environment_number = serializers.IntegerField(help_text="latest saved version of the environment's policy, the "
                                                            "base of a service's overrides (0: the defaults)")
    policy = serializers.DictField(help_text="every field of sla.policy.SlaPolicy with its effective value")
    overrides = serializers.DictField(allow_null=True, help_text="a service's overridden fields (null for an env)")
    defaults = serializers.DictField()
    versions = PolicyVersionOutput(many=True)
    precedence = PrecedenceRowOutput(many=True)
    power_formula = serializers.CharField()


class SlaReportListApi(APIView):
    """GET /api/sla/reports/ (JSON array, paginated) or /api/sla/reports.csv (?format=csv): stored snapshots."""

    permission_classes = [requires(access.SLA_VIEW)]
    renderer_classes = [JSONRenderer, SlaReportCsvRenderer]

    @extend_schema(parameters=[ReportFilters, *KEYSET_PARAMETERS],
                   responses={(200, "application/json"): ReportRowOutput(many=True),
                              (200, "text/csv"): OpenApiTypes.STR},
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
        rows = [selectors.report_row(r) for r in page]
        return paginator.get_paginated_response(ReportRowOutput(rows, many=True).data)


class SlaReportCsvApi(SlaReportListApi):
    """GET /api/sla/reports.csv — the same list as CSV: every matching row, streamed; one export per user at a time."""

    # The URL's .csv fixes the format; a ?format= is ignored, so it is not a parameter of this operation.
    @extend_schema(parameters=[ReportFilters, OpenApiParameter("format", exclude=True)],
                   responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="sla_reports_csv")
    def get(self, request, format=None):
        return super().get(request, format=format)


class SlaReportDetailApi(APIView):
    """GET /api/sla/reports/<id>/ — one snapshot with every number, threshold, query, window and the verdict."""

    permission_classes = [requires(access.SLA_VIEW)]

    @extend_schema(responses=ReportDetailOutput)
    def get(self, request, report_id: int):
        report = selectors.report_get(user=request.user, report_id=report_id)
        if report is None:
            return Response({"detail": f"no SLA report with id {report_id}", "code": "not_found"}, status=404)
        return Response(ReportDetailOutput({
            **selectors.report_row(report), "report": report.design_shape(),
            "window_s": selectors.report_window_s(report), "findings": selectors.report_findings(report),
            "readings": report.readings, "verdict": report.verdict}).data)


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
        """The environment and (optional) service named in the URL and query: unknown names are 404s naming the
        known ones (releases.selectors' one lookup helper)."""
        params = self.Params(data=request.query_params)
        params.is_valid(raise_exception=True)
        env = release_selectors.environment_by_name(environment)
        name = params.validated_data["service"]
        return env, (release_selectors.service_by_name(name) if name else None)

    @extend_schema(parameters=[Params], responses=PolicyViewOutput)
    def get(self, request, environment: str):
        env, service = self._scope(request, environment)
        return Response(PolicyViewOutput(selectors.policy_view(user=request.user, environment=env,
                                                               service=service)).data)

    @extend_schema(request=InputSerializer, parameters=[Params],
                   responses=PolicyViewOutput)
    def put(self, request, environment: str):
        env, service = self._scope(request, environment)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.policy_version_save(actor=Actor.of(request.user), environment=env.name,
                                         service=service.name if service else "",
                                         policy=data.validated_data["policy"], comment=data.validated_data["comment"])
        except PolicyInvalid as exc:
            raise serializers.ValidationError({"policy": {name: [rule] for name, rule in exc.errors.items()}})
        return Response(PolicyViewOutput(selectors.policy_view(user=request.user, environment=env,
                                                               service=service)).data)



# --- DORA and time to safety ------------------------------------------------------------------------------------

DORA_MAX_WEEKS = 104  # two years of weeks: bounds the work of one request


class DoraFilters(serializers.Serializer):
    service = _name_field()
    environment = _name_field()
    since = serializers.DateTimeField(
        required=False, default=None, allow_null=True, input_formats=["iso-8601", "%Y-%m-%d"],
        help_text=f"first week to report (a date or ISO 8601 time; its Monday is used); default: "
                  f"{dora.DEFAULT_WEEKS} weeks ago; an earlier date starts {DORA_MAX_WEEKS} weeks back; a future "
                  f"one answers no rows",
        error_messages={"invalid": "must be a date (2026-11-02) or an ISO 8601 time"})

    def validate_since(self, value):
        # Clamped, not refused: an earlier date starts at the oldest reportable week; a future one has no weeks.
        if value is None:
            return value
        return max(value, timezone.now() - timedelta(weeks=DORA_MAX_WEEKS))


class DoraRowOutput(serializers.Serializer):
    """One service, environment and week (Monday, UTC). Medians in seconds; null when there was nothing to
    measure that week."""

    service = serializers.CharField()
    environment = serializers.CharField()
    week = serializers.DateField(help_text="the Monday the week starts on (UTC)")
    deployments = serializers.IntegerField(help_text="releases that went live (deployment frequency)")
    lead_time_median_s = serializers.FloatField(allow_null=True, help_text="commit -> live, median")
    lead_time_count = serializers.IntegerField(help_text="deployments whose commit time is known")
    changes = serializers.IntegerField(help_text="releases that reached traffic (gray or live)")
    failures = serializers.IntegerField(help_text="of those, rolled back or blocked later")
    change_failure_rate = serializers.FloatField(allow_null=True, help_text="failures / changes")
    time_to_restore_median_s = serializers.FloatField(allow_null=True,
                                                      help_text="breach onset -> traffic back on stable, median")
    restores = serializers.IntegerField(help_text="failures whose breach onset is known")
    restore_unknown = serializers.IntegerField(help_text="failures without a gate sample showing the breach")


class DoraCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        writer = csv.writer(out)
        if isinstance(data, dict):  # an error answer: keep it readable as CSV
            writer.writerow(["detail"])
            writer.writerow([data.get("detail", "") or json.dumps(data)])
        return out.getvalue().encode()


def _dora_csv_lines(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(dora.DORA_COLUMNS)
    yield out.getvalue()
    for start in range(0, len(rows), CSV_CHUNK):
        out = io.StringIO()
        writer = csv.writer(out)
        for row in rows[start:start + CSV_CHUNK]:
            writer.writerow(["" if row[c] is None else row[c] for c in dora.DORA_COLUMNS])
        yield out.getvalue()


class DoraApi(APIView):
    """GET /api/dora/ (JSON) or /api/dora.csv (?format=csv): weekly DORA figures and time to restore per service
    and environment (see sla/dora.py for every definition)."""

    permission_classes = [requires(access.SLA_VIEW)]
    renderer_classes = [JSONRenderer, DoraCsvRenderer]

    @extend_schema(parameters=[DoraFilters],
                   responses={(200, "application/json"): DoraRowOutput(many=True),
                              (200, "text/csv"): OpenApiTypes.STR},
                   operation_id="dora_list")
    def get(self, request, format=None):
        filters = DoraFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.dora_report(user=request.user, **filters.validated_data)
        if request.accepted_renderer.format == "csv":
            response = StreamingHttpResponse(_dora_csv_lines(rows), content_type="text/csv")
            response["Content-Disposition"] = 'attachment; filename="dora.csv"'
            return response
        return Response(DoraRowOutput(rows, many=True).data)


class DoraCsvApi(DoraApi):
    """GET /api/dora.csv — the same rows as CSV, streamed."""

    @extend_schema(parameters=[DoraFilters, OpenApiParameter("format", exclude=True)],
                   responses={(200, "text/csv"): OpenApiTypes.STR},
                   operation_id="dora_csv")
    def get(self, request, format=None):
        return super().get(request, format=format)


# --- policy backtest --------------------------------------------------------------------------------------------


class BacktestRowOutput(serializers.Serializer):
    release_id = serializers.IntegerField()
    service = serializers.CharField()
    version = serializers.CharField()
    outcome = serializers.CharField(help_text="regression (rolled back or blocked after traffic), healthy (went live "
                                              "and stayed), open")
    actual_action = serializers.CharField(help_text="the gate's first stop on record, or none")
    actual_at = serializers.DateTimeField(allow_null=True)
    candidate_action = serializers.CharField(help_text="the candidate policy's first stop on the same evidence")
    candidate_at = serializers.DateTimeField(allow_null=True)
    candidate_summary = serializers.CharField()
    false_stop = serializers.BooleanField()
    missed_regression = serializers.BooleanField()
    decision_change_s = serializers.FloatField(allow_null=True, help_text="candidate - actual; negative: earlier")
    actual_by_sequential_test = serializers.BooleanField(
        help_text="the gate's stop came from a sequential test alone, which the replay cannot run")


class BacktestOutput(serializers.Serializer):
    releases = serializers.IntegerField()
    false_stops = serializers.IntegerField()
    missed_regressions = serializers.IntegerField()
    decision_change_median_s = serializers.FloatField(allow_null=True)
    actual_stops_by_sequential_tests = serializers.IntegerField(
        help_text="releases whose actual stop came from a sequential test alone")
    not_replayed = serializers.CharField(help_text="what the replay cannot judge, and why")
    rows = BacktestRowOutput(many=True)


class SlaPolicyBacktestApi(APIView):
    """POST /api/sla/policies/<environment>/backtest/ {"policy": {...}, "service": "", "limit": 200} — what the
    candidate policy (an environment's full policy; missing fields take the defaults) would have decided on the
    stored evidence of past releases, against what happened (sla/backtest.py). Nothing is saved."""

    permission_classes = [requires(access.SLA_VIEW)]

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "SlaPolicyBacktestInput"

        policy = serializers.DictField(help_text="fields of sla.policy.SlaPolicy; missing ones take the defaults")
        service = _name_field()
        limit = serializers.IntegerField(min_value=1, max_value=2000, default=200,
                                         help_text="newest past releases replayed (at most 2000)")

    @extend_schema(request=InputSerializer, responses=BacktestOutput)
    def post(self, request, environment: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release_selectors.environment_by_name(environment)  # 404 in the lookups' words
        try:
            candidate = SlaPolicy.from_dict(data.validated_data["policy"])
        except PolicyInvalid as exc:
            raise serializers.ValidationError({"policy": {name: [rule] for name, rule in exc.errors.items()}})
        result = selectors.policy_backtest(user=request.user, environment=environment, policy=candidate,
                                           service=data.validated_data["service"], limit=data.validated_data["limit"])
        return Response(BacktestOutput(result).data)
