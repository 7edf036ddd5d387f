from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("api/", include("releases.api.urls")),
    path("api/", include("pipelines.urls")),  # pipelines (issue 3)
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("admin/", admin.site.urls),
    path("", include("frontend.urls")),
]
