from django.urls import path

from observability import views

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
    path("api/health/live", views.live, name="health-live"),
    path("api/health/ready", views.ready, name="health-ready"),
]
