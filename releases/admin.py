"""Django admin: role changes made here are audited with the admin who made them (releases.receivers)."""
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin


class AuditedUserAdmin(UserAdmin):
    def save_related(self, request, form, formsets, change):
        form.instance._rollgate_actor = request.user
        super().save_related(request, form, formsets, change)


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
