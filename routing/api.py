"""REST API of gray routing (DRF, synchronous): the agent registry and the routing changes people make.

The hot endpoints (the long-polled routing table, trace results, the metrics scrape) are async views in
routing/async_views.py.
"""
import dataclasses

from django.utils.translation import gettext
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from releases import policy
from releases.api.base import CommentInput, StrictInputSerializer, requires
from releases.api.token_auth import HashedTokenAuthentication
from releases.errors import Forbidden, NotFound
from releases.models import AgentService, Environment
from releases.services import Actor
from rollgate_client.table import GrayRule
from routing import auth, selectors, services
from routing.models import AgentStatus

ID_MAX = 200


class AgentUser:
    """request.user for an agent token: authenticated, but holds no human role."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    pk = None

    def __init__(self, principal: auth.AgentPrincipal):
        self.principal = principal

    def get_username(self) -> str:
        return f"agent-token:{self.principal.name}"


class AgentTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("bearer "):
            return None
        key = auth.bearer_key(header)
        principal = auth.agent_for_key(key) if key else None
        if principal is None:
            raise exceptions.AuthenticationFailed("invalid or revoked agent token")
        return AgentUser(principal), principal

    def authenticate_header(self, request):
        return 'Bearer realm="rollgate-agents"'


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = AgentTokenAuthentication
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "agent token rgat_... (manage.py routing_agent_token)"}


class IsAgent(BasePermission):
    message = "this endpoint takes an agent token (Authorization: Bearer rgat_...); see README, Gray routing"

    def has_permission(self, request, view):
        return isinstance(request.auth, auth.AgentPrincipal)


AGENT_AUTH = [AgentTokenAuthentication, HashedTokenAuthentication, SessionAuthentication]


class AgentReport(StrictInputSerializer):
    service = serializers.SlugField(max_length=63)
    environment = serializers.SlugField(max_length=30)
    agent_id = serializers.RegexField(r"^[A-Za-z0-9._:@/-]{1,200}$", error_messages={
        "invalid": "must be 1-200 characters of letters, digits and . _ : @ / -"})
    model = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    version = serializers.RegexField(r"^[A-Za-z0-9._+-]{1,100}$", error_messages={
        "invalid": "must be a version tag such as v3.3.1 or v3.3.1-gray-A"})
    gray_tag = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=AgentStatus.choices, required=False, default=AgentStatus.HEALTHY)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class InstanceOutput(serializers.Serializer):
    agent_id = serializers.CharField()
    model = serializers.CharField()
    version = serializers.CharField()
    gray_tag = serializers.CharField()
    status = serializers.CharField()
    region = serializers.CharField()
    registered_at = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    stale = serializers.SerializerMethodField()

    def get_stale(self, instance) -> bool:
        return selectors.is_stale(instance)


class AgentRegisterApi(APIView):
    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]

    @extend_schema(request=AgentReport, responses={200: InstanceOutput, 201: InstanceOutput})
    def post(self, request):
        data = AgentReport(data=request.data)
        data.is_valid(raise_exception=True)
        instance, created = services.agent_register(principal=request.auth, **data.validated_data)
        return Response(InstanceOutput(instance).data, status=status.HTTP_201_CREATED if created else 200)


class AgentHeartbeatApi(APIView):
    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]

    @extend_schema(request=AgentReport, responses=InstanceOutput)
    def post(self, request):
        data = AgentReport(data=request.data)
        data.is_valid(raise_exception=True)
        instance = services.agent_heartbeat(principal=request.auth, **data.validated_data)
        return Response(InstanceOutput(instance).data)


class AgentListApi(APIView):
    """GET /api/agents/?service=&environment=&version=&stale=false — agents of their scope, or people."""

    authentication_classes = AGENT_AUTH

    @extend_schema(parameters=[OpenApiParameter("service", {"type": "string", "minLength": 1, "maxLength": 63},
                                                required=True),
                               OpenApiParameter("environment", {"type": "string", "minLength": 1, "maxLength": 30},
                                                required=True),
                               OpenApiParameter("version", {"type": "string", "maxLength": 100}),
                               OpenApiParameter("stale", bool, description="false: leave out stale agents")],
                   responses=InstanceOutput(many=True))
    def get(self, request):
        service = request.query_params.get("service", "")[:63]
        environment = request.query_params.get("environment", "")[:30]
        version = request.query_params.get("version", "")[:100]
        errors = {name: ["is required"] for name, value in (("service", service), ("environment", environment))
                  if not value}
        if errors:
            raise exceptions.ValidationError(errors)
        if isinstance(request.auth, auth.AgentPrincipal):
            if not request.auth.may_access(service, environment):
                raise Forbidden(request.auth.scope_error(service, environment))
        else:
            decision = policy.can(request.user, policy.RELEASE_VIEW)
            if not decision:
                raise Forbidden(decision.reason)
        service_obj = AgentService.objects.filter(name=service).first()
        env_obj = Environment.objects.filter(name=environment).first()
        if service_obj is None or env_obj is None:
            raise NotFound(gettext("no service '%(service)s' in environment '%(environment)s'") % {
                               "service": service, "environment": environment})
        include_stale = request.query_params.get("stale", "true").lower() not in ("false", "0", "no")
        qs = selectors.instances(service=service_obj, environment=env_obj, version=version,
                                 include_stale=include_stale)
        return Response(InstanceOutput(qs[:5000], many=True).data)


# --- routing changes (people) ---------------------------------------------------------------------------------


class RoutingStateOutput(serializers.Serializer):
    revision = serializers.IntegerField()
    override = serializers.CharField()
    gray_rules = serializers.JSONField()
    blocked_versions = serializers.JSONField()


class _RoutingChangeApi(APIView):
    permission_classes = [requires(policy.ROUTING_MANAGE)]
    change = None

    @extend_schema(request=CommentInput, responses=RoutingStateOutput)
    def post(self, request, service: str, environment: str):
        data = CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        state = type(self).change(actor=Actor.of(request.user), service=service, environment=environment,
                                  **data.validated_data)
        return Response(RoutingStateOutput(state).data)


class RoutingCutOverApi(_RoutingChangeApi):
    change = staticmethod(services.routing_cut_over)


class RoutingSwitchBackApi(_RoutingChangeApi):
    change = staticmethod(services.routing_switch_back)


@extend_schema_field({"type": "array", "description": "gray rules (rollgate_client GrayRule): each sets at least one of "
                     "its lists",
                     "items": {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
                         name: {"type": "array", "items": {"type": "string"}}
                         for name in (field.name for field in dataclasses.fields(GrayRule))}}})
class GrayRulesField(serializers.JSONField):
    """routing.services checks each rule with rollgate_client.GrayRule.from_dict; the schema says the shape."""


class RoutingRulesApi(APIView):
    permission_classes = [requires(policy.ROUTING_MANAGE)]

    class InputSerializer(StrictInputSerializer):
        rules = GrayRulesField()
        comment = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")

        class Meta:
            ref_name = "RoutingRulesInput"

    @extend_schema(request=InputSerializer, responses=RoutingStateOutput)
    def put(self, request, service: str, environment: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = services.routing_rules_update(actor=Actor.of(request.user), service=service,
                                              environment=environment, **data.validated_data)
        return Response(RoutingStateOutput(state).data)


class BlockedVersionsApi(APIView):
    permission_classes = [requires(policy.ROUTING_MANAGE)]

    class InputSerializer(StrictInputSerializer):
        version = serializers.CharField(max_length=100)
        reason = serializers.CharField(max_length=500)

        class Meta:
            ref_name = "VersionBlockInput"

    @extend_schema(request=InputSerializer, responses={201: RoutingStateOutput})
    def post(self, request, service: str, environment: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = services.version_block(actor=Actor.of(request.user), service=service, environment=environment,
                                       **data.validated_data)
        return Response(RoutingStateOutput(state).data, status=status.HTTP_201_CREATED)


class BlockedVersionDetailApi(APIView):
    permission_classes = [requires(policy.ROUTING_MANAGE)]

    @extend_schema(parameters=[OpenApiParameter("reason", str)], responses=RoutingStateOutput)
    def delete(self, request, service: str, environment: str, version: str):
        state = services.version_unblock(actor=Actor.of(request.user), service=service, environment=environment,
                                         version=version, reason=request.query_params.get("reason", "")[:500])
        return Response(RoutingStateOutput(state).data)
