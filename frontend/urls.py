from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.fleet, name="fleet"),
    path("releases/<int:release_id>/", views.release_detail, name="release-detail"),
    path("releases/<int:release_id>/<slug:action>/", views.release_action, name="release-action"),
]
