"""The SLA snapshot list's filters as a django-filter FilterSet, applied by sla.selectors.report_list."""
import django_filters

from releases.filters import CommaListFilter
from sla.models import SlaReport


class SlaReportFilter(django_filters.FilterSet):
    version = django_filters.CharFilter(field_name="version")
    environment = django_filters.CharFilter(field_name="environment__name")
    service = django_filters.CharFilter(field_name="service__name")
    status = CommaListFilter(field_name="status")
    action = CommaListFilter(field_name="action")
    release_id = django_filters.NumberFilter(field_name="release_id")

    class Meta:
        model = SlaReport
        fields = ["version", "environment", "service", "status", "action", "release_id"]
