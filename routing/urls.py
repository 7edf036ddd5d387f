from django.urls import path

from routing import api, async_views

urlpatterns = [
    path("api/agents/", api.AgentListApi.as_view(), name="api-agents"),
    path("api/agents/register", api.AgentRegisterApi.as_view(), name="api-agents-register"),
    path("api/agents/heartbeat", api.AgentHeartbeatApi.as_view(), name="api-agents-heartbeat"),
    path("api/traces/results", async_views.trace_results, name="api-trace-results"),
    path("api/routing/<slug:service>/<slug:environment>/", async_views.routing_table, name="api-routing-table"),
    path("api/routing/<slug:service>/<slug:environment>/cut-over/", api.RoutingCutOverApi.as_view(),
         name="api-routing-cut-over"),
    path("api/routing/<slug:service>/<slug:environment>/switch-back/", api.RoutingSwitchBackApi.as_view(),
         name="api-routing-switch-back"),
    path("api/routing/<slug:service>/<slug:environment>/rules/", api.RoutingRulesApi.as_view(),
         name="api-routing-rules"),
    path("api/routing/<slug:service>/<slug:environment>/blocked-versions/", api.BlockedVersionsApi.as_view(),
         name="api-routing-blocked"),
    path("api/routing/<slug:service>/<slug:environment>/blocked-versions/<str:version>/",
         api.BlockedVersionDetailApi.as_view(), name="api-routing-unblock"),
    path("metrics/traces", async_views.trace_metrics, name="trace-metrics"),
]
