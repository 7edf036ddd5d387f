"""POST /api/alerts/alertmanager: Alertmanager's webhook receiver (webhook_config with a bearer token)."""
import hmac

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts import services
from alerts.models import AlertStatus
from releases.errors import Forbidden

MAX_ALERTS = 1000


def check_bearer(header: str | None) -> None:
    """Refuse the call unless it carries `Authorization: Bearer <ROLLGATE_ALERTMANAGER_TOKEN>`."""
    expected = settings.ROLLGATE_ALERTMANAGER_TOKEN
    if not expected:
        raise Forbidden("the Alertmanager receiver is disabled: ROLLGATE_ALERTMANAGER_TOKEN is not set")
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
        raise exceptions.AuthenticationFailed("Authorization: Bearer <token> is missing or wrong")


class StringMap(serializers.DictField):
    child = serializers.CharField(allow_blank=True, max_length=10000)


class AlertInput(serializers.Serializer):
    """One alert as Alertmanager sends it (webhook format version 4); other fields are ignored."""

    status = serializers.ChoiceField(choices=AlertStatus.choices)
    labels = StringMap()
    annotations = StringMap(required=False, default=dict)
    startsAt = serializers.CharField(required=False, allow_blank=True, max_length=40)
    endsAt = serializers.CharField(required=False, allow_blank=True, max_length=40)
    generatorURL = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    fingerprint = serializers.CharField(required=False, allow_blank=True, max_length=64)


class WebhookInput(serializers.Serializer):
    """Alertmanager's webhook body: the group's alerts and its common labels (only `alerts` is read)."""

    version = serializers.CharField(required=False, max_length=10)
    status = serializers.ChoiceField(choices=AlertStatus.choices, required=False)
    receiver = serializers.CharField(required=False, allow_blank=True, max_length=200)
    alerts = AlertInput(many=True, max_length=MAX_ALERTS)


class AlertResultOutput(serializers.Serializer):
    fingerprint = serializers.CharField()
    alertname = serializers.CharField()
    status = serializers.CharField()
    outcome = serializers.CharField(help_text="paused, rolled_back, already_stopped, refused, no_canary, unmatched "
                                              "or recorded")
    detail = serializers.CharField()
    release_id = serializers.IntegerField(allow_null=True)


class WebhookOutput(serializers.Serializer):
    results = AlertResultOutput(many=True)


class AlertmanagerWebhookApi(APIView):
    """Alertmanager is not a user: no session, CSRF or API token; its bearer token is checked before the body."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        return 'Bearer realm="rollgate-alertmanager"'  # a wrong token is 401 with this header, not a bare 403

    @extend_schema(request=WebhookInput, responses={200: WebhookOutput}, auth=[])
    def post(self, request):
        check_bearer(request.headers.get("Authorization"))
        serializer = WebhookInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = services.alerts_receive(alerts=serializer.validated_data["alerts"])
        return Response(WebhookOutput({"results": results}).data)
