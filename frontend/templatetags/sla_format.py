"""SLA figures on the pages, in their unit, worded by sla.explain (the same figures as the API and the CSV).

    {% load sla_format %}
    {{ finding.measured|in_unit:finding.unit }}   -> "4.60 %", "1,234 ms", "12,345", "30 s", "2.37"
    {{ reading.value|reading_value:name }}        -> a raw Prometheus reading by metric name
"""
from django import template

from sla import explain

register = template.Library()

# Raw readings (report.readings) carry no unit: the metric name says which.  Latency readings are seconds.
READING_UNITS = {
    "trace_success_rate": explain.RATIO,
    "callback_failure_rate": explain.RATIO,
    "trace_latency_p95": "seconds_as_ms",
    "agent_crash_count": explain.COUNT,
    "log_error_count": explain.COUNT,
    "request_count": explain.COUNT,
    "failed_request_count": explain.COUNT,
    "callback_count": explain.COUNT,
    "scrape_gap": explain.SECONDS,
}


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


@register.filter
def in_unit(value, unit):
    """A stored measured value or threshold in its unit: percent with 2 decimals, ms and counts as integers
    with thousands separators, seconds as integers; "" for a missing value."""
    value = _number(value)
    if value is None:
        return ""
    return explain.show(value, unit or explain.STAT)


@register.filter
def reading_value(value, metric: str):
    value = _number(value)
    if value is None:
        return "n/a"
    unit = READING_UNITS.get(metric)
    if unit == "seconds_as_ms":
        return explain.ms(value * 1000)
    if metric == "memory_peak_bytes" or metric == "memory_mean_bytes":
        return f"{value / 1e6:,.0f} MB"
    return explain.show(value, unit or explain.STAT)
