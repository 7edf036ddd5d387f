from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("api/", include("releases.api.urls")),
    path("", include("routing.urls")),  # gray routing: /api/agents/, /api/routing/, /api/traces/, /metrics/traces
    path("api/", include("deploy.urls")),  # deploy targets: values, revisions, credentials
    # --- SLA gate (sla app): /api/releases/<id>/sla/, /api/sla/..., and the design's /monitor/agent-sla-report
    path("api/", include("sla.api.urls")),
    path("monitor/", include("sla.api.monitor_urls")),
    path("api/", include("pipelines.urls")),  # pipelines (issue 3)
    path("api/", include("notifications.urls")),  # notifications (issue 18)
    path("api/", include("alerts.urls")),  # Alertmanager receiver (issue 17)
    path("", include("observability.urls")),  # /metrics, /api/health/live, /api/health/ready (issue 17)
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI for signed-in users (a browser page: the login page first, not a 401)
    path("api/docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the language switcher posts here
    path("", include("frontend.urls")),
]

# Single sign-on (OpenID Connect), when configured: /oidc/authenticate/ and /oidc/callback/ (issue 17).
if settings.ROLLGATE_OIDC_ENABLED:
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))

# API paths that match no route answer JSON in the error shape (documented for every operation), not HTML.
handler404 = "releases.api.errors.not_found_handler"
handler500 = "releases.api.errors.server_error_handler"
