"""List filters of the release domain as django-filter FilterSets, applied by releases.selectors.

The API and the pages validate their query parameters first (strict serializers and forms that name the field and
the rule); these FilterSets only say which parameter filters which column, in one place per list.
"""
import django_filters

from releases.models import AuditEvent, Release


class CommaListFilter(django_filters.CharFilter):
    """`status=gray,paused`: any of the comma-separated values."""

    def filter(self, qs, value):
        if not value:
            return qs
        return qs.filter(**{f"{self.field_name}__in": [v for v in value.split(",") if v]})


class ReleaseFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__name")
    environment = django_filters.CharFilter(field_name="environment__name")
    status = CommaListFilter(field_name="status")
    tag = django_filters.CharFilter(field_name="version__tag")

    class Meta:
        model = Release
        fields = ["service", "environment", "status", "tag"]


class AuditEventFilter(django_filters.FilterSet):
    release_id = django_filters.NumberFilter(field_name="release_id")
    actor = django_filters.CharFilter(field_name="actor_name")
    action = django_filters.CharFilter(field_name="action")
    service = django_filters.CharFilter(field_name="service__name")
    environment = django_filters.CharFilter(field_name="environment__name")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["release_id", "actor", "action", "service", "environment", "since", "until"]


def apply(filterset_class, queryset, values: dict):
    """Filter `queryset` by the already-validated `values` (empty values do not filter)."""
    data = {name: value for name, value in values.items() if value not in (None, "")}
    filterset = filterset_class(data, queryset=queryset)
    if not filterset.is_valid():  # the callers validated first; reaching this is a programming error
        raise ValueError(f"invalid filters: {dict(filterset.errors)}")
    return filterset.qs
