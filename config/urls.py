from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("api/", include("releases.api.urls")),
    path("", include("routing.urls")),  # gray routing: /api/agents/, /api/routing/, /api/traces/, /metrics/traces
    path("api/", include("pipelines.deploy_urls")),  # deploy targets: values, revisions, credentials
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("admin/", admin.site.urls),
    path("", include("frontend.urls")),
]
