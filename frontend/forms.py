"""Page forms. They validate input the way the API serializers do, naming the field and the rule."""
import json

from django import forms
from django.utils.translation import gettext, gettext_lazy

from releases.choices import Role
from releases.freeze import validate_freeze_windows
from releases.models import Environment
from releases.protection import approver_roles


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=50)
    service = forms.CharField(required=False, max_length=63)
    environment = forms.CharField(required=False, max_length=30)
    since = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                                                                "%Y-%m-%d %H:%M", "%Y-%m-%d"],
                                help_text="UTC", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                                                                "%Y-%m-%d %H:%M", "%Y-%m-%d"],
                                help_text="UTC", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "until: must be after since")
        return data

    def filters(self) -> dict:
        """Selector arguments; empty when the form is invalid (the page then shows the errors, not all rows)."""
        return {key: value for key, value in self.cleaned_data.items() if value not in ("", None)}


# Only the roles that can approve may be required (releases.protection); the form offers no other.
ROLE_FIELDS = [(f"approvals_{role}", role, label) for role, label in Role.choices if role in approver_roles()]


class EnvironmentForm(forms.Form):
    protected = forms.BooleanField(required=False, help_text=gettext_lazy("promotion needs the required approvals"))
    auto_rollback = forms.BooleanField(required=False,
                                       help_text=gettext_lazy("roll back automatically when a rollout fails"))
    freeze_windows = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        help_text=gettext_lazy('JSON list, UTC. Once: {"start": "2026-12-24T00:00Z", "end": "2026-12-27T00:00Z", '
                               '"reason": "..."}; weekly: {"weekdays": [4], "from": "18:00", "to": "23:59", '
                               '"reason": "..."} (0 = Monday)'),
    )

    gray_step_approvals = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=gettext_lazy('JSON: approvals before the ramp moves to a rung, e.g. {"50": {"qa": 1}, "100": '
                               '{"release_manager": 1}}; the ramp waits at the rung below until they are given'),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field_name, _role, label in ROLE_FIELDS:
            self.fields[field_name] = forms.IntegerField(min_value=0, max_value=5, required=False, label=label)

    @classmethod
    def for_environment(cls, environment: Environment) -> "EnvironmentForm":
        initial = {"protected": environment.protected, "auto_rollback": environment.auto_rollback,
                   "freeze_windows": json.dumps(environment.freeze_windows or [], indent=2, sort_keys=True),
                   "gray_step_approvals": json.dumps(environment.gray_step_approvals or {})}
        for field_name, role, _label in ROLE_FIELDS:
            initial[field_name] = (environment.required_approvals or {}).get(role, 0)
        return cls(initial=initial)

    def clean_gray_step_approvals(self):
        text = self.cleaned_data["gray_step_approvals"].strip() or "{}"
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(gettext("gray_step_approvals: not valid JSON (%(msg)s at line "
                                                "%(lineno)s)") % {"msg": error.msg, "lineno": error.lineno})

    def clean_freeze_windows(self):
        text = self.cleaned_data["freeze_windows"].strip() or "[]"
        try:
            windows = json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(gettext("freeze_windows: not valid JSON (%(msg)s at line "
                                                "%(lineno)s)") % {"msg": error.msg, "lineno": error.lineno})
        try:
            return validate_freeze_windows(windows)
        except ValueError as error:
            raise forms.ValidationError(str(error))

    def role_fields(self):
        return [self[field_name] for field_name, _role, _label in ROLE_FIELDS]

    def changes(self, environment: Environment) -> dict:
        """Only what differs from the stored environment, so the audit row shows exactly what changed."""
        data = self.cleaned_data
        wanted = {
            "protected": data["protected"],
            "auto_rollback": data["auto_rollback"],
            "freeze_windows": data["freeze_windows"],
            "gray_step_approvals": data["gray_step_approvals"],
            "required_approvals": {role: data[name] for name, role, _ in ROLE_FIELDS if data.get(name)},
        }
        return {key: value for key, value in wanted.items() if getattr(environment, key) != value}
