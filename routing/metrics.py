"""Trace results as Prometheus metrics, aggregated in Redis so every web process adds to the same counters.

Names follow the SLA metric catalog contract (sla/catalog.py: MetricNames / LabelNames):

    agent_requests_total{service,env,version,outcome="ok|error"}              counter
    agent_request_latency_seconds_bucket{service,env,version,le} / _sum / _count  histogram (fixed bounds)
    agent_callback_total{service,env,version,outcome="ok|error"}              counter (traces with a callback)
    agent_tokens_total{service,env,version}                                   counter

LLM quality (only for versions whose results carry the optional fields; rollgate_client.results.QUALITY_FIELDS):

    agent_eval_score_sum / _count{service,env,version}                         summary (mean eval score)
    agent_eval_score_squared_total{service,env,version}                        counter (sum of squares: variance)
    agent_tool_calls_total / agent_tool_errors_total{service,env,version}      counters
    agent_steps_bucket{service,env,version,le} / _sum / _count                 histogram (agent loop iterations)
    agent_ttft_seconds_bucket{service,env,version,le} / _sum / _count          histogram (time to first token)
    agent_tokens_in_total / agent_tokens_out_total{service,env,version}        counters
    agent_cost_total{service,env,version}                                      counter (cost of the traces)
    agent_cost_squared_total{service,env,version}                              counter (sum of squared trace costs:
                                                                               the spread, for the cost test)
    agent_cost_successes_total{service,env,version}                            counter (successful traces among the
                                                                               same results: cost per successful
                                                                               task divides by it, never by another
                                                                               source's request count)
    agent_cost_unknown_total{service,env,version}                              counter (traces naming a model
                                                                               whose cost is unknown: not priced)

A result without ``cost`` is priced from the per-model table first (routing/prices.py, by the view).

One batch is aggregated in Python first and written with one pipelined round trip (HINCRBY / HINCRBYFLOAT on one
hash); a scrape reads the hash once (HGETALL) and renders the text exposition format.

Each batch also stamps its label sets (service, env, version) with the time in a second hash. A label set that has
had no result for ROLLGATE_TRACE_SERIES_RETENTION_SECONDS belongs to a version that no longer serves traffic: the
scrape drops its series (and their fields), so the exposition follows the versions in service, not history.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Iterable

from rollgate_client.results import TraceResult

HASH_KEY = "rollgate:traces:v1"
SEEN_KEY = "rollgate:traces:seen:v1"  # label set -> unix time of its last result
SEP = "\x1f"  # never in a service slug, environment slug or version tag

REQUESTS = "agent_requests_total"
LATENCY = "agent_request_latency_seconds"
CALLBACKS = "agent_callback_total"
TOKENS = "agent_tokens_total"

EVAL_SCORE = "agent_eval_score"
EVAL_SQUARED = "agent_eval_score_squared_total"
TOOL_CALLS = "agent_tool_calls_total"
TOOL_ERRORS = "agent_tool_errors_total"
STEPS = "agent_steps"
TTFT = "agent_ttft_seconds"
TOKENS_IN = "agent_tokens_in_total"
TOKENS_OUT = "agent_tokens_out_total"
COST = "agent_cost_total"
COST_SQUARED = "agent_cost_squared_total"
COST_SUCCESSES = "agent_cost_successes_total"
COST_UNKNOWN = "agent_cost_unknown_total"
STEP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 30, 40, 50, 75, 100)
TTFT_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
_TTFT_BOUNDS_MS = tuple(bound * 1000 for bound in TTFT_BUCKETS_S)
_BUCKETED = {"stp": STEP_BUCKETS, "ttf": TTFT_BUCKETS_S}
_SUMMED_INTS = {"tok", "evn", "tc", "te", "tin", "tout", "stpsum", "cu", "cs"}
_SUMMED_FLOATS = {"latsum", "evs", "evq", "cost", "cost2", "ttfsum"}

# Seconds. Fixed for every version, so the gate compares like with like (changing them splits the series).
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
_BOUNDS_MS = tuple(bound * 1000 for bound in LATENCY_BUCKETS_S)


def _field(*parts: object) -> str:
    return SEP.join(str(part) for part in parts)


def aggregate(service: str, environment: str, results: Iterable[TraceResult]) -> tuple[dict[str, int], dict[str, float]]:
    """Increments for one batch: integer counters and float sums, keyed by hash field."""
    ints: dict[str, int] = defaultdict(int)
    sums: dict[str, float] = defaultdict(float)
    bounds = _BOUNDS_MS
    bucket_of = bisect.bisect_left  # le is inclusive: a latency equal to a bound falls into that bucket
    for r in results:
        label = _field(service, environment, r.version)
        ints[_field("req", label, "ok" if r.ok else "error")] += 1
        if r.callback_ok is not None:
            ints[_field("cb", label, "ok" if r.callback_ok else "error")] += 1
        if r.tokens:
            ints[_field("tok", label)] += r.tokens
        ints[_field("lat", label, bucket_of(bounds, r.latency_ms))] += 1
        sums[_field("latsum", label)] += r.latency_ms / 1000.0
        if r.eval_score is not None:
            ints[_field("evn", label)] += 1
            sums[_field("evs", label)] += r.eval_score
            sums[_field("evq", label)] += r.eval_score * r.eval_score
        if r.tool_calls is not None:
            ints[_field("tc", label)] += r.tool_calls
            ints[_field("te", label)] += r.tool_errors or 0
        if r.steps is not None:
            ints[_field("stp", label, bucket_of(STEP_BUCKETS, r.steps))] += 1
            ints[_field("stpsum", label)] += r.steps
        if r.ttft_ms is not None:
            ints[_field("ttf", label, bucket_of(_TTFT_BOUNDS_MS, r.ttft_ms))] += 1
            sums[_field("ttfsum", label)] += r.ttft_ms / 1000.0
        if r.tokens_in is not None:
            ints[_field("tin", label)] += r.tokens_in
        if r.tokens_out is not None:
            ints[_field("tout", label)] += r.tokens_out
        if r.ok:
            ints[_field("cs", label)] += 1  # exported with the cost family only (render)
        if r.cost is not None:
            sums[_field("cost", label)] += r.cost
            sums[_field("cost2", label)] += r.cost * r.cost
        elif r.model is not None:  # a model the price table does not know, and no cost sent: not free, unknown
            ints[_field("cu", label)] += 1
    return ints, sums


def record(redis_pipeline, ints: dict[str, int], sums: dict[str, float], now: float) -> None:
    for field, amount in ints.items():
        redis_pipeline.hincrby(HASH_KEY, field, amount)
    for field, amount in sums.items():
        redis_pipeline.hincrbyfloat(HASH_KEY, field, amount)
    labels = {field.split(SEP, 1)[1] for field in sums}  # every result adds to its label set's latency sum
    if labels:
        redis_pipeline.hset(SEEN_KEY, mapping={label: int(now) for label in labels})


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _label_of(field: str) -> str | None:
    kind, *rest = field.split(SEP)
    if kind in ("req", "cb", "lat", "stp", "ttf") and len(rest) == 4:
        return SEP.join(rest[:3])
    if (kind in _SUMMED_INTS or kind in _SUMMED_FLOATS) and len(rest) == 3:
        return SEP.join(rest)
    return None


def expire(raw: dict, seen: dict, now: float, retention_s: float) -> tuple[dict, list[str], list[str], list[str]]:
    """Split the counters into the ones still in service and the fields to delete.

    Returns (kept counters, counter fields to delete, label sets to forget, label sets to stamp now). A label set
    without a stamp (written before stamps existed) is stamped now, so it gets the full retention."""
    last_seen = {_text(label): float(_text(at)) for label, at in seen.items()}
    cutoff = now - retention_s
    kept: dict = {}
    stale_fields: list[str] = []
    stale_labels: set[str] = set()
    unstamped: set[str] = set()
    for raw_field, value in raw.items():
        field = _text(raw_field)
        label = _label_of(field)
        at = last_seen.get(label) if label is not None else None
        if label is not None and at is None:
            unstamped.add(label)
        if at is not None and at < cutoff:
            stale_fields.append(field)
            stale_labels.add(label)
        else:
            kept[field] = value
    gone = {label for label in last_seen if last_seen[label] < cutoff} | stale_labels
    return kept, stale_fields, sorted(gone), sorted(unstamped)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(service: str, environment: str, version: str, **extra: str) -> str:
    parts = [f'service="{_escape(service)}"', f'env="{_escape(environment)}"', f'version="{_escape(version)}"']
    parts += [f'{name}="{_escape(value)}"' for name, value in extra.items()]
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(raw: dict) -> str:
    """Prometheus text exposition (version 0.0.4) of the hash as read by HGETALL."""
    requests: dict[tuple, dict[str, int]] = defaultdict(dict)
    callbacks: dict[tuple, dict[str, int]] = defaultdict(dict)
    tokens: dict[tuple, int] = {}
    buckets: dict[tuple, list[int]] = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    latency_sums: dict[tuple, float] = {}
    quality_buckets: dict[str, dict[tuple, list[int]]] = {kind: defaultdict(lambda: [0] * 64) for kind in ("stp", "ttf")}
    quality: dict[str, dict[tuple, float]] = defaultdict(dict)
    for raw_field, raw_value in raw.items():
        field = raw_field.decode() if isinstance(raw_field, bytes) else raw_field
        value = raw_value.decode() if isinstance(raw_value, bytes) else raw_value
        kind, *rest = field.split(SEP)
        if kind in ("req", "cb", "lat") and len(rest) == 4:
            key, extra = tuple(rest[:3]), rest[3]
            if kind == "req":
                requests[key][extra] = int(value)
            elif kind == "cb":
                callbacks[key][extra] = int(value)
            elif extra.isdigit() and int(extra) <= len(LATENCY_BUCKETS_S):
                buckets[key][int(extra)] = int(value)
        elif kind == "tok" and len(rest) == 3:
            tokens[tuple(rest)] = int(value)
        elif kind == "latsum" and len(rest) == 3:
            latency_sums[tuple(rest)] = float(value)
        elif kind in quality_buckets and len(rest) == 4:
            if rest[3].isdigit() and int(rest[3]) <= len(_BUCKETED[kind]):
                quality_buckets[kind][tuple(rest[:3])][int(rest[3])] = int(value)
        elif (kind in _SUMMED_INTS or kind in _SUMMED_FLOATS) and len(rest) == 3:
            quality[kind][tuple(rest)] = float(value)

    out: list[str] = []
    out += [f"# HELP {REQUESTS} Traces reported to Rollgate, by outcome (ok or error).", f"# TYPE {REQUESTS} counter"]
    for key in sorted(requests):
        for outcome in ("ok", "error"):  # both series exist once a version has traces: rate() sees zeros
            out.append(f"{REQUESTS}{_labels(*key, outcome=outcome)} {requests[key].get(outcome, 0)}")
    out += [f"# HELP {LATENCY} Trace latency reported to Rollgate.", f"# TYPE {LATENCY} histogram"]
    for key in sorted(buckets):
        cumulative = 0
        counts = buckets[key]
        for bound, count in zip(LATENCY_BUCKETS_S, counts):
            cumulative += count
            out.append(f"{LATENCY}_bucket{_labels(*key, le=_number(bound))} {cumulative}")
        cumulative += counts[-1]
        out.append(f'{LATENCY}_bucket{_labels(*key, le="+Inf")} {cumulative}')
        out.append(f"{LATENCY}_sum{_labels(*key)} {_number(round(latency_sums.get(key, 0.0), 6))}")
        out.append(f"{LATENCY}_count{_labels(*key)} {cumulative}")
    out += [f"# HELP {CALLBACKS} Result callbacks of reported traces, by outcome.", f"# TYPE {CALLBACKS} counter"]
    for key in sorted(callbacks):
        for outcome in ("ok", "error"):
            out.append(f"{CALLBACKS}{_labels(*key, outcome=outcome)} {callbacks[key].get(outcome, 0)}")
    out += [f"# HELP {TOKENS} Model tokens of reported traces.", f"# TYPE {TOKENS} counter"]
    for key in sorted(set(tokens) | set(requests)):
        out.append(f"{TOKENS}{_labels(*key)} {tokens.get(key, 0)}")
    out += _render_quality(quality, quality_buckets)
    return "\n".join(out) + "\n"


def _histogram(name: str, bounds, per_key: dict[tuple, list[int]], sums: dict[tuple, float], scale: float) -> list[str]:
    out = []
    for key in sorted(per_key):
        counts, cumulative = per_key[key], 0
        for index, bound in enumerate(bounds):
            cumulative += counts[index]
            out.append(f"{name}_bucket{_labels(*key, le=_number(bound))} {cumulative}")
        cumulative += counts[len(bounds)]
        out.append(f'{name}_bucket{_labels(*key, le="+Inf")} {cumulative}')
        out.append(f"{name}_sum{_labels(*key)} {_number(round(sums.get(key, 0.0) * scale, 6))}")
        out.append(f"{name}_count{_labels(*key)} {cumulative}")
    return out


def _render_quality(quality: dict[str, dict[tuple, float]], buckets: dict[str, dict[tuple, list[int]]]) -> list[str]:
    """The LLM quality series; a version appears only in the families its results carried."""
    out = [f"# HELP {EVAL_SCORE} Evaluator scores (0-1) of reported traces.", f"# TYPE {EVAL_SCORE} summary"]
    for key in sorted(quality["evn"]):
        out.append(f"{EVAL_SCORE}_sum{_labels(*key)} {_number(round(quality['evs'].get(key, 0.0), 6))}")
        out.append(f"{EVAL_SCORE}_count{_labels(*key)} {_number(quality['evn'][key])}")
    out += [f"# HELP {EVAL_SQUARED} Sum of squared evaluator scores (for the variance).",
            f"# TYPE {EVAL_SQUARED} counter"]
    out += [f"{EVAL_SQUARED}{_labels(*key)} {_number(round(quality['evq'].get(key, 0.0), 6))}"
            for key in sorted(quality["evn"])]
    for name, kind, help_text in ((TOOL_CALLS, "tc", "Tool calls of reported traces."),
                                  (TOOL_ERRORS, "te", "Failed tool calls of reported traces."),
                                  (TOKENS_IN, "tin", "Prompt (input) tokens of reported traces."),
                                  (TOKENS_OUT, "tout", "Completion (output) tokens of reported traces."),
                                  (COST, "cost", "Cost of reported traces."),
                                  (COST_SQUARED, "cost2", "Sum of squared trace costs (for the variance).")):
        keys = sorted(quality["tc"] if kind == "te" else quality[kind])  # errors: 0 wherever calls exist
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        # Six decimals for sums; the squared costs are tiny (0.0025 ** 2): twelve significant digits instead.
        out += [f"{name}{_labels(*key)} "
                f"{_number(float(f'{value:.12g}') if kind == 'cost2' else round(value, 6))}"
                for key in keys for value in (quality[kind].get(key, 0),)]
    # 0 wherever a cost exists, so the gate's window sees the first unknown one
    out += [f"# HELP {COST_UNKNOWN} Reported traces whose model has no price and that sent no cost.",
            f"# TYPE {COST_UNKNOWN} counter"]
    out += [f"{COST_UNKNOWN}{_labels(*key)} {_number(quality['cu'].get(key, 0))}"
            for key in sorted(set(quality["cost"]) | set(quality["cu"]))]
    # The denominator of cost per successful task, counted from the same results as the cost: an agent's own
    # request counter is scraped at other moments than these results arrive, and a ratio across the two sources
    # drifts by the posting lag (a young canary read 1.34x its identical stable).
    out += [f"# HELP {COST_SUCCESSES} Successful reported traces of the versions that report a cost or a model.",
            f"# TYPE {COST_SUCCESSES} counter"]
    out += [f"{COST_SUCCESSES}{_labels(*key)} {_number(quality['cs'].get(key, 0))}"
            for key in sorted(set(quality["cost"]) | set(quality["cu"]))]
    out += [f"# HELP {STEPS} Agent loop iterations per trace.", f"# TYPE {STEPS} histogram"]
    out += _histogram(STEPS, STEP_BUCKETS, buckets["stp"], quality["stpsum"], 1.0)
    out += [f"# HELP {TTFT} Time to first token of reported traces.", f"# TYPE {TTFT} histogram"]
    out += _histogram(TTFT, TTFT_BUCKETS_S, buckets["ttf"], quality["ttfsum"], 1.0)
    return out
