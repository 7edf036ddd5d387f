from django.urls import path

from notifications import api

urlpatterns = [
    path("notifications/subscriptions/", api.SubscriptionListApi.as_view(), name="api-notification-subscriptions"),
    path("notifications/subscriptions/<int:subscription_id>/", api.SubscriptionDetailApi.as_view(),
         name="api-notification-subscription"),
    path("notifications/deliveries/", api.DeliveryListApi.as_view(), name="api-notification-deliveries"),
    path("notifications/deliveries/<int:delivery_id>/retry/", api.DeliveryRetryApi.as_view(),
         name="api-notification-delivery-retry"),
]
