"""REST API of notifications: subscriptions (ops manage, release managers and auditors read) and deliveries."""
from django.conf import settings
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.choices import DeliveryStatus, EventType
from notifications.models import CHANNEL_CHOICES, Delivery, Subscription
from releases import policy
from releases.api.base import KEYSET_PARAMETERS, StrictInputSerializer, paginate_keyset, requires
from releases.choices import Role
from releases.errors import NotFound
from releases.services import Actor


class SubscriptionOutput(serializers.ModelSerializer):
    url = serializers.CharField(source="masked_url", help_text="scheme and host only: the URL may hold a token")
    signing_secret_set = serializers.SerializerMethodField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices))
    environments = serializers.ListField(child=serializers.CharField())
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))

    class Meta:
        model = Subscription
        fields = ["id", "name", "channel", "url", "events", "environments", "roles", "language", "enabled",
                  "signing_secret_set", "created_by", "created_at"]

    def get_signing_secret_set(self, subscription) -> bool:
        return bool(subscription.signing_secret)


class SubscriptionInput(StrictInputSerializer):
    """What a subscription is made of; the API and the /notifications/ page form validate with it."""

    name = serializers.RegexField(r"^[A-Za-z0-9 ._-]{1,100}$", error_messages={
        "invalid": gettext_lazy("1-100 letters, digits, spaces, '.', '_' or '-'")})
    channel = serializers.ChoiceField(choices=CHANNEL_CHOICES)
    url = serializers.URLField(max_length=1000)
    signing_secret = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                           write_only=True)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), min_length=1,
                                   max_length=len(EventType.choices))
    environments = serializers.ListField(child=serializers.SlugField(max_length=30), required=False, default=list,
                                         max_length=50, help_text="empty: every environment")
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), required=False, default=list,
                                  help_text="approval_needed goes only to subscriptions of a role whose approval is "
                                            "missing; empty: any")
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False, default="en",
                                       help_text="the language of its messages")
    enabled = serializers.BooleanField(required=False, default=True)

    def validate_url(self, value):
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError(gettext("must be an http:// or https:// URL"))
        return value


class SubscriptionListApi(APIView):
    class InputSerializer(SubscriptionInput):
        class Meta:
            ref_name = "SubscriptionCreateInput"

    def get_permissions(self):
        return [requires(policy.AUDIT_VIEW if self.request.method == "GET" else policy.WEBHOOK_MANAGE)()]

    @extend_schema(responses=SubscriptionOutput(many=True))
    def get(self, request):
        return Response(SubscriptionOutput(selectors.subscription_list(user=request.user), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: SubscriptionOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = services.subscription_create(actor=Actor.of(request.user), **data.validated_data)
        return Response(SubscriptionOutput(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailApi(APIView):
    class InputSerializer(SubscriptionInput):
        class Meta:
            ref_name = "SubscriptionUpdateInput"

        def __init__(self, *args, **kwargs):
            super().__init__(*args, partial=True, **kwargs)

    def get_permissions(self):
        return [requires(policy.AUDIT_VIEW if self.request.method == "GET" else policy.WEBHOOK_MANAGE)()]

    def _get(self, request, subscription_id: int) -> Subscription:
        subscription = selectors.subscription_list(user=request.user).filter(pk=subscription_id).first()
        if subscription is None:
            raise NotFound(gettext("no subscription with id %(subscription_id)s") % {
                               "subscription_id": subscription_id})
        return subscription

    @extend_schema(responses=SubscriptionOutput)
    def get(self, request, subscription_id: int):
        return Response(SubscriptionOutput(self._get(request, subscription_id)).data)

    @extend_schema(request=InputSerializer, responses=SubscriptionOutput)
    def patch(self, request, subscription_id: int):
        self._get(request, subscription_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {key: value for key, value in data.validated_data.items() if key in request.data}
        subscription = services.subscription_update(actor=Actor.of(request.user), subscription_id=subscription_id,
                                                    **changes)
        return Response(SubscriptionOutput(subscription).data)

    @extend_schema(responses={204: None})
    def delete(self, request, subscription_id: int):
        self._get(request, subscription_id)
        services.subscription_delete(actor=Actor.of(request.user), subscription_id=subscription_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DeliveryOutput(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription_name")
    title = serializers.CharField()

    class Meta:
        model = Delivery
        fields = ["id", "key", "subscription", "channel", "event", "environment", "release_id", "title", "status",
                  "attempts", "next_attempt_at", "last_status_code", "last_error", "created_at", "delivered_at"]


class DeliveryListApi(APIView):
    permission_classes = [requires(policy.AUDIT_VIEW)]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False, default="")
        event = serializers.ChoiceField(choices=EventType.choices, required=False, default="")
        subscription = serializers.CharField(required=False, max_length=100, default="")
        release = serializers.IntegerField(required=False, min_value=1, default=None)

    @extend_schema(parameters=[FilterSerializer, *KEYSET_PARAMETERS], responses=DeliveryOutput(many=True))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        params["release_id"] = params.pop("release", None)
        return paginate_keyset(self, request, selectors.delivery_list(user=request.user, **params), DeliveryOutput)


class DeliveryRetryApi(APIView):
    permission_classes = [requires(policy.WEBHOOK_MANAGE)]

    @extend_schema(request=None, responses=DeliveryOutput)
    def post(self, request, delivery_id: int):
        delivery = services.delivery_retry(actor=Actor.of(request.user), delivery_id=delivery_id)
        return Response(DeliveryOutput(delivery).data)
