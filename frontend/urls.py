from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import approval_views, audit_views, environment_views, views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.fleet, name="fleet"),
    path("releases/<int:release_id>/", views.release_detail, name="release-detail"),
    path("releases/<int:release_id>/<slug:action>/", views.release_action, name="release-action"),
    # dashboard pages (issue 7)
    path("approvals/", approval_views.approvals_inbox, name="approvals-inbox"),
    path("audit/", audit_views.audit_log, name="audit-log"),
    path("audit/export.csv", audit_views.audit_export, name="audit-export"),
    path("environments/", environment_views.environment_list, name="environment-list"),
    path("environments/<slug:name>/", environment_views.environment_detail, name="environment-detail"),
]
