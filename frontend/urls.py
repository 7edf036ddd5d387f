from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import pipeline_views, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.fleet, name="fleet"),
    path("releases/<int:release_id>/", views.release_detail, name="release-detail"),
    # pipelines (issue 3): the release page's pipeline section (before release-action, which would match pipeline/)
    path("releases/<int:release_id>/pipeline/", pipeline_views.release_pipeline, name="release-pipeline"),
    path("releases/<int:release_id>/pipeline/<slug:action>/", pipeline_views.release_pipeline_action,
         name="release-pipeline-action"),
    path("releases/<int:release_id>/<slug:action>/", views.release_action, name="release-action"),
]
