"""Trace results a scheduler or agent reports back, and the batch rule both sides apply.

A batch is a JSON list of objects (at most ``MAX_BATCH_SIZE``)::

    {"trace_id": "t-1", "agent_id": "agent-338", "version": "v3.3.1", "ok": true,
     "latency_ms": 812.5, "callback_ok": true, "tokens": 1534}

``callback_ok`` may be null or left out when the trace had no callback.  LLM agents may add, per trace (each
optional, null when not measured): ``eval_score`` (0-1, from whatever evaluator the team runs), ``tool_calls`` and
``tool_errors`` (whole numbers, errors <= calls), ``steps`` (agent loop iterations), ``ttft_ms`` (time to first
token), ``tokens_in`` / ``tokens_out``, ``cost`` (in the team's currency) and ``model`` (the model's name, a string
of at most 200 characters; Rollgate prices ``tokens_in``/``tokens_out`` of a trace without ``cost`` from its
per-model price table).  Unknown fields are refused, so a typo such as ``latency`` is reported instead of silently losing the latency.

Partial-batch rule: one malformed item does not sink the batch.  ``validate_batch`` keeps the
valid items and reports each invalid one by index; only a batch that is not a list or is larger
than the limit is refused whole (``BatchRejectedError``).  ``batch_response`` is the JSON body
the server answers with, so the client and the server agree on it.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import math
import urllib.parse
from typing import Any, Iterable, Mapping

MAX_BATCH_SIZE = 1000
MAX_ID_LENGTH = 200
MAX_LATENCY_MS = 24 * 3600 * 1000  # one day; anything longer is a unit mistake
MAX_TOKENS = 10**9
MAX_STEPS = 10**6
MAX_COST = 10**6  # per trace; more is a unit mistake (cents as dollars, a whole bill)

_REQUIRED_FIELDS = ("trace_id", "agent_id", "version", "ok", "latency_ms", "tokens")
# Optional quality fields of LLM agents: name -> (kind, upper bound); "fraction" 0-1, "count" whole, "number" real.
QUALITY_FIELDS = {"eval_score": ("fraction", 1), "tool_calls": ("count", MAX_STEPS), "tool_errors": ("count", MAX_STEPS),
                  "steps": ("count", MAX_STEPS), "ttft_ms": ("number", MAX_LATENCY_MS),
                  "tokens_in": ("count", MAX_TOKENS), "tokens_out": ("count", MAX_TOKENS), "cost": ("number", MAX_COST)}
MAX_MODEL_LENGTH = 200
_ALL_FIELDS = frozenset(_REQUIRED_FIELDS + ("callback_ok", "model") + tuple(QUALITY_FIELDS))


class BatchRejectedError(ValueError):
    """The whole batch is unusable (not a list, or too large); no item was kept."""


class ResultsPostError(RuntimeError):
    """The results endpoint refused the batch or could not be reached."""


@dataclasses.dataclass(frozen=True, slots=True)
class TraceResult:
    trace_id: str
    agent_id: str
    version: str
    ok: bool
    latency_ms: float
    tokens: int
    callback_ok: bool | None = None
    eval_score: float | None = None
    tool_calls: int | None = None
    tool_errors: int | None = None
    steps: int | None = None
    ttft_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    model: str | None = None  # the model that served the trace: prices its tokens when cost is not sent

    def to_dict(self) -> dict[str, Any]:
        data = {
            "trace_id": self.trace_id,
            "agent_id": self.agent_id,
            "version": self.version,
            "ok": self.ok,
            "latency_ms": self.latency_ms,
            "callback_ok": self.callback_ok,
            "tokens": self.tokens,
        }
        for name in QUALITY_FIELDS:  # only the measured ones: older servers refuse unknown fields
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.model is not None:
            data["model"] = self.model
        return data


def _item_errors(item: Any, index: int) -> list[str]:
    where = f"items[{index}]"
    if not isinstance(item, Mapping):
        return [f"{where}: must be an object, got {type(item).__name__}"]
    errors = []
    unknown = sorted(str(name) for name in item.keys() - _ALL_FIELDS)
    if unknown:
        errors.append(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALL_FIELDS))}")
    for field in _REQUIRED_FIELDS:
        if field not in item:
            errors.append(f"{where}.{field}: is required")
    for field in ("trace_id", "agent_id", "version"):
        value = item.get(field)
        if field in item and (not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH):
            errors.append(f"{where}.{field}: must be a non-empty string of at most {MAX_ID_LENGTH} characters, got {value!r:.60}")
    if "ok" in item and not isinstance(item["ok"], bool):
        errors.append(f"{where}.ok: must be true or false, got {item['ok']!r:.60}")
    if item.get("callback_ok") is not None and not isinstance(item["callback_ok"], bool):
        errors.append(f"{where}.callback_ok: must be true, false or null, got {item['callback_ok']!r:.60}")
    if "latency_ms" in item:
        latency = item["latency_ms"]
        if (
            isinstance(latency, bool)
            or not isinstance(latency, (int, float))
            or not math.isfinite(latency)
            or not 0 <= latency <= MAX_LATENCY_MS
        ):
            errors.append(f"{where}.latency_ms: must be a number from 0 to {MAX_LATENCY_MS}, got {latency!r:.60}")
    if "tokens" in item:
        tokens = item["tokens"]
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= MAX_TOKENS:
            errors.append(f"{where}.tokens: must be a whole number from 0 to {MAX_TOKENS}, got {tokens!r:.60}")
    for name, (kind, upper) in QUALITY_FIELDS.items():
        value = item.get(name)
        if value is None:
            continue
        if kind == "count":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
                errors.append(f"{where}.{name}: must be a whole number from 0 to {upper}, got {value!r:.60}")
        elif (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
              or not 0 <= value <= upper):
            errors.append(f"{where}.{name}: must be a number from 0 to {upper}, got {value!r:.60}")
    model = item.get("model")
    if model is not None and (not isinstance(model, str) or not model or len(model) > MAX_MODEL_LENGTH
                              or "\x00" in model):
        errors.append(f"{where}.model: must be a non-empty string of at most {MAX_MODEL_LENGTH} characters without "
                      f"NUL, got {model!r:.60}")
    calls, tool_errors = item.get("tool_calls"), item.get("tool_errors")
    if (isinstance(calls, int) and isinstance(tool_errors, int) and not isinstance(calls, bool)
            and not isinstance(tool_errors, bool) and tool_errors > calls):
        errors.append(f"{where}.tool_errors: must not exceed tool_calls ({calls}), got {tool_errors}")
    if tool_errors is not None and calls is None:
        errors.append(f"{where}.tool_errors: needs tool_calls (the error rate is errors / calls)")
    return errors


def validate_batch(
    items: Any, *, max_batch_size: int = MAX_BATCH_SIZE
) -> tuple[list[TraceResult], dict[int, list[str]]]:
    """Split a batch into valid results and, per invalid item's index, every rule it breaks."""
    if not isinstance(items, list):
        raise BatchRejectedError(f"items: must be a list of trace results, got {type(items).__name__}")
    if len(items) > max_batch_size:
        raise BatchRejectedError(
            f"items: at most {max_batch_size} results per batch, got {len(items)}; split the batch"
        )
    valid: list[TraceResult] = []
    errors_by_index: dict[int, list[str]] = {}
    for index, item in enumerate(items):
        problems = _item_errors(item, index)
        if problems:
            errors_by_index[index] = problems
            continue
        valid.append(
            TraceResult(
                trace_id=item["trace_id"],
                agent_id=item["agent_id"],
                version=item["version"],
                ok=item["ok"],
                latency_ms=float(item["latency_ms"]),
                tokens=item["tokens"],
                callback_ok=item.get("callback_ok"),
                model=item.get("model"),
                **{name: (float(item[name]) if QUALITY_FIELDS[name][0] != "count" else item[name])
                   for name in QUALITY_FIELDS if item.get(name) is not None},
            )
        )
    return valid, errors_by_index


def batch_response(valid: list[TraceResult], errors_by_index: Mapping[int, list[str]]) -> dict[str, Any]:
    """The server's answer to a batch: how many were kept, and what was wrong with the rest."""
    return {
        "accepted": len(valid),
        "rejected": len(errors_by_index),
        "errors": [
            {"index": index, "messages": list(messages)} for index, messages in sorted(errors_by_index.items())
        ],
    }


def post_results(
    url: str,
    items: Iterable[TraceResult | Mapping[str, Any]],
    *,
    timeout_s: float = 10.0,
    max_batch_size: int = MAX_BATCH_SIZE,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST one batch as JSON and return the server's JSON answer (see ``batch_response``).

    The batch is sent as given, so the indexes in the answer are the caller's indexes; only its
    size is checked here.  Raises ``BatchRejectedError`` before sending an oversized batch and
    ``ResultsPostError`` when the server refuses the request or cannot be reached.
    """
    payload = [item.to_dict() if isinstance(item, TraceResult) else dict(item) for item in items]
    if len(payload) > max_batch_size:
        raise BatchRejectedError(
            f"items: at most {max_batch_size} results per batch, got {len(payload)}; split the batch"
        )
    body = json.dumps(payload, separators=(",", ":")).encode()
    parts = urllib.parse.urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=timeout_s)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request(
            "POST",
            path,
            body=body,
            headers={"Content-Type": "application/json", "Accept": "application/json", **(headers or {})},
        )
        response = connection.getresponse()
        answer = response.read()
    except OSError as error:
        raise ResultsPostError(f"POST {parts.netloc}{parts.path}: {error}") from error
    finally:
        connection.close()
    if response.status >= 300:
        raise ResultsPostError(
            f"POST {parts.netloc}{parts.path}: HTTP {response.status}: {answer[:300].decode(errors='replace')}"
        )
    try:
        return json.loads(answer)
    except ValueError as error:
        raise ResultsPostError(f"POST {parts.netloc}{parts.path}: answer is not JSON ({error})") from error
