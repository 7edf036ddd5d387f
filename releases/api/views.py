"""REST API of the release domain. Views parse input, ask the policy, call one service or selector, serialise.

One view per action (HackSoft style); the logic is in releases/services.py and releases/selectors.py.
"""
from django.conf import settings
from django.db import connection
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from releases import audit_chain, policy, protection, selectors, services
from releases.api.base import (KEYSET_PARAMETERS, CommentInput, StrictInputSerializer, comma_choices_field,
                               paginate_keyset, requires)
from releases.choices import ReleaseStatus
from releases.errors import DomainError
from releases.freeze import validate_freeze_windows
from releases.models import AgentService, Environment
from releases.services import Actor


# --- services ----------------------------------------------------------------------------------------------


class ServiceOutput(serializers.ModelSerializer):
    class Meta:
        model = AgentService
        fields = ["id", "name", "description", "image_repository", "source_repository", "created_at"]


class ServiceListApi(APIView):
    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "ServiceCreateInput"

        name = serializers.RegexField(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", max_length=63, error_messages={
            "invalid": "must be a DNS label: lowercase letters, digits and '-', at most 63 characters"})
        image_repository = serializers.RegexField(r"^[A-Za-z0-9.:_/-]{1,255}$", error_messages={
            "invalid": "must be an image repository such as registry.example.com/agent/agent-core (no tag)"})
        description = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
        source_repository = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")

    def get_permissions(self):
        action = policy.RELEASE_VIEW if self.request.method == "GET" else policy.SERVICE_MANAGE
        return [requires(action)()]

    @extend_schema(responses=ServiceOutput(many=True))
    def get(self, request):
        return Response(ServiceOutput(AgentService.objects.all(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ServiceOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service = services.service_create(actor=Actor.of(request.user), **data.validated_data)
        return Response(ServiceOutput(service).data, status=status.HTTP_201_CREATED)


class ServiceDetailApi(APIView):
    permission_classes = [requires(policy.RELEASE_VIEW)]

    @extend_schema(responses=ServiceOutput)
    def get(self, request, name: str):
        return Response(ServiceOutput(get_object_or_404(AgentService, name=name)).data)


# --- environments --------------------------------------------------------------------------------------------


class EnvironmentOutput(serializers.ModelSerializer):
    gray_phases = serializers.SerializerMethodField()

    class Meta:
        model = Environment
        fields = ["id", "name", "namespace", "position", "protected", "required_approvals", "gray_step_approvals",
                  "freeze_windows",
                  "auto_rollback", "deploy_target", "gray_phases"]

    def get_gray_phases(self, env) -> list[int]:
        return selectors.gray_ladder(env)


class EnvironmentListApi(APIView):
    permission_classes = [requires(policy.RELEASE_VIEW)]

    @extend_schema(responses=EnvironmentOutput(many=True))
    def get(self, request):
        return Response(EnvironmentOutput(Environment.objects.prefetch_related("gray_phases"), many=True).data)


@extend_schema_field({"type": "array", "description": "each window: {start, end, reason} (ISO 8601 times with a "
                     "zone, end after start) or {weekdays: [0-6], from: HH:MM, to: HH:MM, time_zone?, reason} (to after "
                     "from; wall-clock times in time_zone, an IANA name, default UTC)",
                     "items": {"type": "object", "properties": {
                         "start": {"type": "string", "format": "date-time"},
                         "end": {"type": "string", "format": "date-time"},
                         "weekdays": {"type": "array", "minItems": 1,
                                      "items": {"type": "integer", "minimum": 0, "maximum": 6}},
                         "from": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                         "to": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                         "time_zone": {"type": "string", "maxLength": 64, "example": "Asia/Shanghai"},
                         "reason": {"type": "string", "maxLength": 200}}}})
class FreezeWindowsField(serializers.JSONField):
    """releases.freeze.validate_freeze_windows checks it; the schema says the shape."""


class EnvironmentDetailApi(APIView):
    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "EnvironmentUpdateInput"

        protected = serializers.BooleanField(required=False)
        required_approvals = serializers.DictField(child=serializers.IntegerField(min_value=0, max_value=5),
                                                   required=False)
        freeze_windows = FreezeWindowsField(required=False)
        auto_rollback = serializers.BooleanField(required=False)

        gray_step_approvals = serializers.DictField(
            child=serializers.DictField(child=serializers.IntegerField(min_value=0, max_value=5)), required=False,
            help_text='approvals before the ramp moves to a rung: {"50": {"qa": 1}, "100": {"release_manager": 1}}')

        def validate_required_approvals(self, value):
            try:
                return protection.check_required_approvals(value)
            except DomainError as error:
                raise serializers.ValidationError(error.message.removeprefix("required_approvals: "))

        def validate_freeze_windows(self, value):
            try:
                return validate_freeze_windows(value)
            except ValueError as error:
                raise serializers.ValidationError(str(error))

    def get_permissions(self):
        action = policy.RELEASE_VIEW if self.request.method == "GET" else policy.ENVIRONMENT_MANAGE
        return [requires(action)()]

    @extend_schema(responses=EnvironmentOutput)
    def get(self, request, name: str):
        return Response(EnvironmentOutput(get_object_or_404(Environment, name=name)).data)

    @extend_schema(request=InputSerializer, responses=EnvironmentOutput)
    def patch(self, request, name: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        env = services.environment_update(actor=Actor.of(request.user), name=name, changes=data.validated_data)
        return Response(EnvironmentOutput(env).data)


# --- releases ------------------------------------------------------------------------------------------------


class ReleaseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    service = serializers.CharField(source="service.name")
    environment = serializers.CharField(source="environment.name")
    tag = serializers.CharField(source="version.tag")
    version_kind = serializers.CharField(source="version.kind")
    commit = serializers.CharField(source="version.commit_sha")
    committed_at = serializers.DateTimeField(source="version.committed_at", allow_null=True)
    branch = serializers.CharField(source="version.branch")
    image = serializers.CharField(source="version.image_reference")
    image_digest = serializers.CharField(source="version.image_digest")
    status = serializers.CharField()
    status_reason = serializers.CharField()
    gray_weight = serializers.IntegerField()
    gray_strategy = serializers.CharField()
    previous_version = serializers.SerializerMethodField()
    started_by = serializers.CharField(source="started_by.username")
    created_at = serializers.DateTimeField()
    status_changed_at = serializers.DateTimeField()

    def get_previous_version(self, release) -> str | None:
        previous = release.previous_release
        return previous.version.tag if previous else None


class ReleaseDetailOutput(ReleaseOutput):
    record = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()

    def get_record(self, release) -> dict:
        return selectors.release_record(release)

    def get_approvals(self, release) -> dict:
        summary = selectors.approval_summary(release)
        step = selectors.next_step(release)
        step_summary = selectors.approval_summary(release, step=step) if step else None
        return {
            "required": summary.required,
            "missing": summary.missing,
            "gray_steps": release.environment.gray_step_approvals or {},
            "waiting_at_step": ({"weight": step, "required": step_summary.required, "missing": step_summary.missing,
                                 "words": gettext("waiting for %(missing)s to go to %(weight)s %%") % {
                                     "missing": selectors.missing_words(step_summary.missing), "weight": step}
                                 if step_summary.missing else ""} if step else None),
            "decisions": [
                {"user": a.user.username, "role": a.role, "decision": a.decision, "comment": a.comment,
                 "created_at": a.created_at, "step_weight": a.step_weight, "evidence_digest": a.evidence_digest,
                 "stale": a.stale, "stale_reason": a.stale_reason}
                for a in release.approvals.select_related("user")
            ],
        }

    def get_actions(self, release) -> dict:
        user = self.context["request"].user
        return {name: {"allowed": s.allowed, "reason": s.reason}
                for name, s in selectors.release_actions(user=user, release=release).items()}


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, location=OpenApiParameter.HEADER, required=False,
    description="any unique string (1-200 printable ASCII characters, e.g. a UUID): the same request sent again "
                "with the same key answers 200 with the release the first one made (header Idempotent-Replayed: "
                "true) instead of creating another")


def idempotency_key_of(request) -> str:
    key = request.headers.get("Idempotency-Key", "")
    if key and (len(key) > 200 or not all(" " <= char <= "~" for char in key)):
        raise ValidationError({"Idempotency-Key": [gettext("must be 1-200 printable ASCII characters, e.g. a UUID")]})
    return key


def created_response(request, release, replayed: bool) -> Response:
    release = selectors.release_get(user=request.user, release_id=release.pk)
    body = ReleaseDetailOutput(release, context={"request": request}).data
    if replayed:
        return Response(body, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})
    return Response(body, status=status.HTTP_201_CREATED)


class ReleaseListApi(APIView):
    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "ReleaseCreateInput"

        service = serializers.CharField(max_length=63)
        environment = serializers.CharField(max_length=30)
        tag = serializers.CharField(max_length=100)
        commit = serializers.RegexField(r"^[0-9a-f]{40}$", error_messages={
            "invalid": "must be the full 40-character lowercase hex git commit sha"})
        branch = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        committed_at = serializers.DateTimeField(
            required=False, allow_null=True, default=None,
            help_text="when the commit was made (ISO 8601); the start of the DORA lead time for changes")

    class FilterSerializer(serializers.Serializer):
        service = serializers.CharField(required=False, max_length=63, default="")
        environment = serializers.CharField(required=False, max_length=30, default="")
        status = comma_choices_field(ReleaseStatus.values, max_length=200,
                                     help_text=f"comma-separated: {', '.join(ReleaseStatus.values)}")
        tag = serializers.CharField(required=False, max_length=100, default="")

        def validate_status(self, value):
            unknown = [s for s in value.split(",") if s and s not in ReleaseStatus.values]
            if unknown:
                raise serializers.ValidationError(
                    gettext("unknown status %(unknown)s; statuses: %(values)s") % {
                        "unknown": ', '.join(unknown), "values": ', '.join(ReleaseStatus.values)})
            return value

    def get_permissions(self):
        action = policy.RELEASE_VIEW if self.request.method == "GET" else policy.RELEASE_CREATE
        return [requires(action)()]

    @extend_schema(parameters=[FilterSerializer, *KEYSET_PARAMETERS], responses=ReleaseOutput(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return paginate_keyset(self, request, selectors.release_list(user=request.user, **filters.validated_data),
                               ReleaseOutput)

    @extend_schema(request=InputSerializer, responses={201: ReleaseDetailOutput, 200: ReleaseDetailOutput},
                   parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, request):
        key = idempotency_key_of(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release, replayed = services.release_create_idempotent(actor=Actor.of(request.user), idempotency_key=key,
                                                               **data.validated_data)
        return created_response(request, release, replayed)


class ReleaseDetailApi(APIView):
    permission_classes = [requires(policy.RELEASE_VIEW)]

    @extend_schema(responses=ReleaseDetailOutput)
    def get(self, request, release_id: int):
        release = selectors.release_get(user=request.user, release_id=release_id)
        if release is None:
            return Response({"detail": f"no release with id {release_id}", "code": "not_found"}, status=404)
        return Response(ReleaseDetailOutput(release, context={"request": request}).data)


class _ReleaseActionApi(APIView):
    """Base for POST /api/releases/<id>/<action>/ with an optional {"comment": "..."}."""

    permission: str = ""
    input_serializer = CommentInput
    # Subclasses define perform(actor, release_id, data), which calls exactly one service.

    def get_permissions(self):
        return [requires(self.permission)()]

    def post(self, request, release_id: int):
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        self.perform(Actor.of(request.user), release_id, data.validated_data)
        release = selectors.release_get(user=request.user, release_id=release_id)
        return Response(ReleaseDetailOutput(release, context={"request": request}).data)


def _action_schema(cls):
    return extend_schema(request=cls.input_serializer, responses=ReleaseDetailOutput)(cls)


class ApproveInput(CommentInput):
    evidence_digest = serializers.RegexField(
        r"^[0-9a-f]{64}$", required=False, allow_blank=True, default="",
        help_text="the digest from GET /api/releases/<id>/evidence/ you looked at: refused with 409 if the evidence "
                  "changed since", error_messages={"invalid": "must be the 64-character hex digest of the evidence"})


@_action_schema
class ReleaseApproveApi(_ReleaseActionApi):
    permission = policy.RELEASE_APPROVE
    input_serializer = ApproveInput

    def perform(self, actor, release_id, data):
        services.release_approve(actor=actor, release_id=release_id, comment=data["comment"],
                                 evidence_digest=data["evidence_digest"])


class RejectInput(ApproveInput):
    comment = serializers.CharField(max_length=settings.ROLLGATE_MAX_COMMENT_LENGTH, error_messages={
        "required": "a rejection needs a reason in the comment",
        "blank": "a rejection needs a reason in the comment"})


@_action_schema
class ReleaseRejectApi(_ReleaseActionApi):
    permission = policy.RELEASE_REJECT
    input_serializer = RejectInput

    def perform(self, actor, release_id, data):
        services.release_reject(actor=actor, release_id=release_id, comment=data["comment"],
                                evidence_digest=data["evidence_digest"])


class EvidenceOutput(serializers.Serializer):
    digest = serializers.CharField(help_text="send it with approve/reject as evidence_digest")
    step_weight = serializers.IntegerField(help_text="0: approving promotion; N: approving the move to N %")
    evidence = serializers.DictField(help_text="scan (verdict, override, digest), sla (previous environment's "
                                               "verdict and latest snapshot), values (diff against what runs now)")


class ReleaseEvidenceApi(APIView):
    """What an approver is shown, exactly as an approval given now would store it."""

    permission_classes = [requires(policy.RELEASE_VIEW)]

    @extend_schema(responses=EvidenceOutput)
    def get(self, request, release_id: int):
        release = selectors.release_get(user=request.user, release_id=release_id)
        if release is None:
            return Response({"detail": f"no release with id {release_id}", "code": "not_found"}, status=404)
        evidence = selectors.approval_evidence(release)
        return Response(EvidenceOutput({"digest": selectors.evidence_digest(evidence),
                                        "step_weight": selectors.next_step(release), "evidence": evidence}).data)


class PromoteInput(CommentInput):
    full = serializers.BooleanField(required=False, default=False, help_text="go straight to 100 %")
    expected_weight = serializers.IntegerField(
        required=False, min_value=0, max_value=100, default=None, allow_null=True,
        help_text="the gray weight you saw; refused with 409 if the release moved meanwhile",
    )


@_action_schema
class ReleasePromoteApi(_ReleaseActionApi):
    permission = policy.RELEASE_PROMOTE
    input_serializer = PromoteInput

    def perform(self, actor, release_id, data):
        services.release_promote(actor=actor, release_id=release_id, comment=data["comment"], full=data["full"],
                                 expected_weight=data["expected_weight"])


@_action_schema
class ReleasePauseApi(_ReleaseActionApi):
    permission = policy.RELEASE_PAUSE

    def perform(self, actor, release_id, data):
        services.release_pause(actor=actor, release_id=release_id, comment=data["comment"])


@_action_schema
class ReleaseResumeApi(_ReleaseActionApi):
    permission = policy.RELEASE_RESUME

    def perform(self, actor, release_id, data):
        services.release_resume(actor=actor, release_id=release_id, comment=data["comment"])


@_action_schema
class ReleaseRollbackApi(_ReleaseActionApi):
    permission = policy.RELEASE_ROLLBACK

    def perform(self, actor, release_id, data):
        services.release_rollback(actor=actor, release_id=release_id, comment=data["comment"])


class ReleasePromoteNextEnvApi(APIView):
    """The version of a release that is live (verified) in its environment goes on to the next environment of the
    path (dev → test → staging → prod): a new release of the same version, reusing its pushed image."""

    permission_classes = [requires(policy.RELEASE_CREATE)]

    @extend_schema(request=CommentInput, responses={201: ReleaseDetailOutput, 200: ReleaseDetailOutput},
                   parameters=[IDEMPOTENCY_KEY_PARAMETER])
    def post(self, request, release_id: int):
        key = idempotency_key_of(request)
        data = CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        if selectors.release_get(user=request.user, release_id=release_id) is None:
            return Response({"detail": f"no release with id {release_id}", "code": "not_found"}, status=404)
        release, replayed = services.release_promote_next_env(actor=Actor.of(request.user), release_id=release_id,
                                                              comment=data.validated_data["comment"],
                                                              idempotency_key=key)
        return created_response(request, release, replayed)


# --- audit ---------------------------------------------------------------------------------------------------


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_name")
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    release_id = serializers.IntegerField(allow_null=True)
    service = serializers.CharField(source="service.name", allow_null=True, default=None)
    environment = serializers.CharField(source="environment.name", allow_null=True, default=None)
    from_state = serializers.CharField()
    to_state = serializers.CharField()
    reason = serializers.CharField()
    details = serializers.JSONField()
    row_hash = serializers.CharField()
    prev_hash = serializers.CharField()
    integrity = serializers.SerializerMethodField(
        help_text='"ok"; "altered": the row no longer matches its hash; "broken_link": a row before it was deleted '
                  'or inserted (manage.py audit_verify names the first broken link)')

    @extend_schema_field(serializers.ChoiceField(choices=["ok", "altered", "broken_link"]))
    def get_integrity(self, event) -> str:
        return audit_chain.row_integrity(event, getattr(event, "prior_hash", None))


class AuditEventListApi(APIView):
    """Read-only: nothing in Rollgate updates or deletes an audit event."""

    permission_classes = [requires(policy.AUDIT_VIEW)]

    class FilterSerializer(serializers.Serializer):
        release = serializers.IntegerField(required=False, min_value=1)
        actor = serializers.CharField(required=False, max_length=150, default="")
        action = serializers.CharField(required=False, max_length=50, default="")
        service = serializers.CharField(required=False, max_length=63, default="")
        environment = serializers.CharField(required=False, max_length=30, default="")
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    @extend_schema(parameters=[FilterSerializer, *KEYSET_PARAMETERS], responses=AuditEventOutput(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        params["release_id"] = params.pop("release", None)
        return paginate_keyset(self, request, selectors.audit_list(user=request.user, **params), AuditEventOutput)


class AuditEventDetailApi(APIView):
    permission_classes = [requires(policy.AUDIT_VIEW)]

    @extend_schema(responses=AuditEventOutput)
    def get(self, request, event_id: int):
        event = get_object_or_404(selectors.audit_list(user=request.user), pk=event_id)
        return Response(AuditEventOutput(event).data)


# --- tokens --------------------------------------------------------------------------------------------------


class LockedOut(APIException):
    status_code = 429
    default_code = "locked_out"
    default_detail = ("too many failed logins for this username or from this address: locked out for a while; "
                      "an admin can unlock it (Django admin, Axes access attempts)")


class TokenApi(ObtainAuthToken):
    """POST {"username", "password"} -> {"token"}. Throttled per client address (ROLLGATE_LOGIN_RATE) and locked
    out per username and per address by django-axes, like /login/ and /admin/login/."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"
    parser_classes = api_settings.DEFAULT_PARSER_CLASSES  # ObtainAuthToken sets its own: keep input_rules

    def post(self, request, *args, **kwargs):
        try:
            serializer = self.get_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            return Response({"token": services.api_token_issue(user=serializer.validated_data["user"])})
        except ValidationError:
            # django-axes refused the attempt (authenticate() returned None): say so instead of "wrong password".
            if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
                raise LockedOut()
            raise


# --- health --------------------------------------------------------------------------------------------------


class HealthApi(APIView):
    """Liveness of what Rollgate needs: 200 when the database and Redis answer, 503 naming what is down."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses={200: inline_serializer("Health", {"status": serializers.CharField()})})
    def get(self, request):
        import redis
        from django.conf import settings

        checks = {}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # report, don't crash: this endpoint exists to say what is down
            checks["database"] = f"down: {type(error).__name__}"
        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
            client.ping()
            checks["redis"] = "ok"
        except Exception as error:
            checks["redis"] = f"down: {type(error).__name__}"
        down = [name for name, state in checks.items() if state != "ok"]
        body = {"status": "ok" if not down else "unavailable", "checks": checks, "down": down}
        return Response(body, status=503 if down else 200)
