"""How one version of the demo agent behaves: a profile from versions.yaml, validated strictly.

Only the standard library and PyYAML, so the agent image stays small.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = Path(__file__).with_name("versions.yaml")


class BehaviourError(ValueError):
    """The behaviour config is unusable; the message names the field and the rule."""


@dataclasses.dataclass(frozen=True)
class Behaviour:
    profile: str = "healthy"
    latency_ms: float = 80.0
    latency_spread: float = 0.25
    error_rate: float = 0.0
    callback_error_rate: float = 0.0
    tokens: int = 1200
    log_error_rate: float = 0.0
    crash_after_requests: int | None = None
    leak_kb_per_request: int = 0
    leak_max_mb: int = 256
    healthy: bool = True
    # LLM quality, sent with each trace result (Rollgate's quality gates; cost comes from its per-model price table)
    model: str = "demo-large"
    eval_score: float = 0.82
    eval_spread: float = 0.08
    tool_calls: float = 3.0
    tool_error_rate: float = 0.02
    ttft_ms: float = 30.0
    input_share: float = 0.8

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, rule: str) -> None:
            if not ok:
                raise BehaviourError(f"profile {self.profile!r}: {field}: {rule}, got {getattr(self, field)!r}")

        def number(value: Any) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        check(number(self.latency_ms) and 0 <= self.latency_ms <= 60_000, "latency_ms", "must be 0..60000")
        check(number(self.latency_spread) and 0 <= self.latency_spread <= 3, "latency_spread", "must be 0..3")
        for field in ("error_rate", "callback_error_rate", "log_error_rate"):
            check(number(getattr(self, field)) and 0 <= getattr(self, field) <= 1, field, "must be a fraction 0..1")
        check(whole(self.tokens) and self.tokens >= 0, "tokens", "must be a whole number >= 0")
        check(self.crash_after_requests is None or (whole(self.crash_after_requests) and self.crash_after_requests >= 1),
              "crash_after_requests", "must be null or a whole number >= 1")
        check(whole(self.leak_kb_per_request) and self.leak_kb_per_request >= 0, "leak_kb_per_request",
              "must be a whole number >= 0")
        check(whole(self.leak_max_mb) and 0 <= self.leak_max_mb <= 4096, "leak_max_mb", "must be 0..4096")
        check(isinstance(self.healthy, bool), "healthy", "must be true or false")
        check(isinstance(self.model, str) and 0 < len(self.model) <= 200 and "\x00" not in self.model, "model",
              "must be a non-empty string of at most 200 characters")
        for field in ("eval_score", "eval_spread", "tool_error_rate", "input_share"):
            check(number(getattr(self, field)) and 0 <= getattr(self, field) <= 1, field, "must be a fraction 0..1")
        check(number(self.tool_calls) and 0 <= self.tool_calls <= 100, "tool_calls", "must be 0..100")
        check(number(self.ttft_ms) and 0 <= self.ttft_ms <= 60_000, "ttft_ms", "must be 0..60000")


_FIELDS = {f.name for f in dataclasses.fields(Behaviour)} - {"profile"}


def load_config(path: Path | str | None = None) -> dict[str, Any]:
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise BehaviourError(f"config {path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise BehaviourError(f"config {path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise BehaviourError(f"config {path}: must be a mapping with defaults, profiles and versions")
    for key in ("defaults", "profiles", "versions"):
        if not isinstance(data.get(key) or {}, dict):
            raise BehaviourError(f"config {path}: {key}: must be a mapping")
    return data


def behaviour_for(version: str, *, config: dict[str, Any] | None = None, profile: str | None = None) -> Behaviour:
    """The behaviour of `version`: the explicit `profile`, else the one versions.yaml names, else the default."""
    config = config if config is not None else load_config()
    profiles = config.get("profiles") or {}
    name = profile or (config.get("versions") or {}).get(version) or config.get("default_profile") or "healthy"
    if name not in profiles:
        raise BehaviourError(f"profile: {name!r} is not defined; known: {', '.join(sorted(profiles)) or 'none'}")
    values: dict[str, Any] = {}
    for source, where in ((config.get("defaults") or {}, "defaults"), (profiles[name] or {}, f"profiles.{name}")):
        if not isinstance(source, dict):
            raise BehaviourError(f"{where}: must be a mapping")
        unknown = sorted(set(source) - _FIELDS)
        if unknown:
            raise BehaviourError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}")
        values.update(source)
    return Behaviour(profile=name, **values)
