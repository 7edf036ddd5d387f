"""Numbers for people, the same on every page:

    {% load numbers %}
    {{ 1234567|number }}        -> "1,234,567"
    {{ 2.345|number:1 }}        -> "2.3"       (decimals; trailing zeros kept so columns line up)
    {{ 0.98765|percent }}       -> "98.77 %"   (a ratio; percent:1 for one decimal)
    {{ None|number }}           -> "n/a"
Units with their own rules (SLA measurements) go through sla_format.in_unit, which uses the same separators.
"""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

register = template.Library()
MISSING = "n/a"


def _value(value):
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@register.filter
def number(value, decimals=0):
    amount = _value(value)
    if amount is None:
        return MISSING if value is None or value == "" else value
    if not amount.is_finite():
        return str(value)
    decimals = max(0, min(int(decimals), 6))
    amount = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)  # 2.345 -> 2.35, as people round
    return f"{amount:,.{decimals}f}"


@register.filter
def percent(value, decimals=2):
    amount = _value(value)
    if amount is None:
        return MISSING
    return f"{number(amount * 100, decimals)} %"
