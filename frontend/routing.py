from django.urls import path

from frontend.consumers import LiveEventsConsumer

websocket_urlpatterns = [path("ws/live/", LiveEventsConsumer.as_asgi())]
