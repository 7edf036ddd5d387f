from django.urls import path

from deploy import api as views

_ENV = "services/<slug:name>/environments/<slug:env>"

urlpatterns = [
    path("services/<slug:name>/values/", views.ServiceValuesApi.as_view(), name="api-service-values"),
    path("services/<slug:name>/values/history/", views.ServiceValuesHistoryApi.as_view(),
         name="api-service-values-history"),
    path(f"{_ENV}/values/", views.EnvironmentValuesApi.as_view(), name="api-environment-values"),
    path(f"{_ENV}/values/history/", views.EnvironmentValuesHistoryApi.as_view(),
         name="api-environment-values-history"),
    path(f"{_ENV}/revisions/", views.RevisionListApi.as_view(), name="api-revisions"),
    path(f"{_ENV}/revisions/<int:number>/", views.RevisionDetailApi.as_view(), name="api-revision"),
    path(f"{_ENV}/revisions/<int:number>/rollback/", views.RevisionRollbackApi.as_view(),
         name="api-revision-rollback"),
    path("environments/<slug:env>/credentials/", views.CredentialApi.as_view(), name="api-environment-credentials"),
]
