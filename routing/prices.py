"""The per-model price table (settings.ROLLGATE_MODEL_PRICES): the cost of a trace that reports tokens but no cost.

    ROLLGATE_MODEL_PRICES='{"gpt-4o": {"input_per_1k": 0.0025, "output_per_1k": 0.01}}'

A trace result that names its ``model`` and carries ``tokens_in``/``tokens_out`` but no ``cost`` is priced here:
``tokens_in / 1000 * input_per_1k + tokens_out / 1000 * output_per_1k``.  An explicit ``cost`` always wins.  A
trace whose model is not in the table (or that has no token counts to price) keeps ``cost`` null and is counted as
*cost unknown* (routing.metrics: ``agent_cost_unknown_total``), never as free: an unverifiable cost must not make a
canary look cheap (sla/quality.py: ``cost_per_success``).

The table is checked when Django starts (routing.apps), so a typo stops the process with a message naming the
model and the field instead of pricing traces wrongly.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

from django.conf import settings

from rollgate_client.results import MAX_MODEL_LENGTH, TraceResult

SETTING = "ROLLGATE_MODEL_PRICES"
PRICE_FIELDS = ("input_per_1k", "output_per_1k")
MAX_PRICE_PER_1K = 1000.0  # in the team's currency per 1000 tokens; more is a unit mistake (per token vs per 1k)


class PriceTableError(ValueError):
    """The price table is unusable; the message names the model and the field."""


@dataclasses.dataclass(frozen=True)
class ModelPrice:
    input_per_1k: float
    output_per_1k: float

    def cost(self, tokens_in: int | None, tokens_out: int | None) -> float:
        return ((tokens_in or 0) * self.input_per_1k + (tokens_out or 0) * self.output_per_1k) / 1000.0


def parse_prices(raw: Any) -> dict[str, ModelPrice]:
    """The table from the setting's JSON value; PriceTableError naming the model and the field when it is wrong."""
    if not isinstance(raw, dict):
        raise PriceTableError(f"{SETTING}: must be a JSON object of model name -> "
                              f'{{"input_per_1k": ..., "output_per_1k": ...}}, got {type(raw).__name__}')
    table = {}
    for model, price in raw.items():
        if not isinstance(model, str) or not model or len(model) > MAX_MODEL_LENGTH or "\x00" in model:
            raise PriceTableError(f"{SETTING}: model names must be non-empty strings of at most {MAX_MODEL_LENGTH} "
                                  f"characters without NUL, got {model!r:.60}")
        if not isinstance(price, dict):
            raise PriceTableError(f"{SETTING}[{model!r}]: must be an object with {' and '.join(PRICE_FIELDS)}, "
                                  f"got {price!r:.60}")
        unknown = sorted(set(price) - set(PRICE_FIELDS))
        if unknown:
            raise PriceTableError(f"{SETTING}[{model!r}]: unknown field(s) {', '.join(map(str, unknown))}; "
                                  f"allowed: {', '.join(PRICE_FIELDS)}")
        values = {}
        for field in PRICE_FIELDS:
            value = price.get(field)
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or not 0 <= value <= MAX_PRICE_PER_1K):
                raise PriceTableError(f"{SETTING}[{model!r}].{field}: must be a number from 0 to "
                                      f"{MAX_PRICE_PER_1K:g} (price per 1000 tokens), got {value!r:.60}")
            values[field] = float(value)
        table[model] = ModelPrice(**values)
    return table


def price_results(results: Iterable[TraceResult], table: dict[str, ModelPrice]) -> list[TraceResult]:
    """The results with ``cost`` filled in from the table where it can be; the others unchanged."""
    priced = []
    for result in results:
        price = table.get(result.model) if result.cost is None and result.model is not None else None
        if price is not None and (result.tokens_in is not None or result.tokens_out is not None):
            result = dataclasses.replace(result, cost=price.cost(result.tokens_in, result.tokens_out))
        priced.append(result)
    return priced


_parsed: tuple[Any, dict[str, ModelPrice]] | None = None


def configured_table() -> dict[str, ModelPrice]:
    """settings.ROLLGATE_MODEL_PRICES parsed (once per value of the setting)."""
    global _parsed
    raw = getattr(settings, SETTING, {})
    if _parsed is None or _parsed[0] is not raw:
        _parsed = (raw, parse_prices(raw))
    return _parsed[1]
