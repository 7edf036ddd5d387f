"""The routing table a scheduler follows for one agent service in one environment.

This module defines the JSON shape that Rollgate serves and schedulers read, so both sides
share one definition.  Example (all keys required except where a default is named)::

    {
      "schema": 1,
      "service": "agent-infer",
      "environment": "prod",
      "revision": 42,                       # server-assigned, grows with every change
      "stable_version": "v3.3.0",
      "canary_version": "v3.3.1",           # null when no gray release is running
      "canary_weight": 5.0,                 # percent of hashed traffic, 0..100, fractions allowed
      "hash_seed": "agent-infer",           # default: the service name; 1..64 bytes of UTF-8
      "gray_rules": [                       # default []; a trace matching ANY rule goes to canary
        {"tenants": ["acme"], "regions": ["cn-bj"]},
        {"gray_tags": ["gray-phase-A"]}
      ],
      "blocked_versions": ["v3.2.9"]        # default []; never chosen
    }

A gray rule is like one entry of an Istio ``match`` list: its non-empty fields must all match
(AND), each field matches when the trace's value is one of the listed values (for
``feature_flags``: when one of the listed flags is on for the trace).  Rule fields:
``tenants``, ``trace_types``, ``regions``, ``feature_flags``, ``gray_tags`` (the value of the
``x-gray-tag`` request header).  A rule with no field set is refused, because "match
everything" is spelled ``canary_weight: 100``.

Blue-green is not a separate mode: the new colour is the canary, "send all new traffic to the
new colour" is ``canary_weight: 100`` (``RoutingTable.cut_over()``), and "switch back" is
weight 0 with no gray rules (``RoutingTable.switch_back()``).  Both are one table revision, and
the gray ramp 5 -> 10 -> 30 -> 50 -> 100 % ends in exactly the same state as a blue-green cut-over,
so schedulers need only one routing rule.

The ETag is a hash of the canonical JSON (which includes the revision), so two different tables
never share an ETag even if a server restarts and reuses a revision number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Iterable

SCHEMA_VERSION = 1
GRAY_TAG_HEADER = "x-gray-tag"
MAX_HASH_SEED_BYTES = 64  # BLAKE2b key size limit; the seed is used as the key.

_RULE_FIELDS = ("tenants", "trace_types", "regions", "feature_flags", "gray_tags")
_EMPTY_RULE_MESSAGE = (
    "must set at least one of " + ", ".join(_RULE_FIELDS) + " (to send all traffic to canary use canary_weight 100)"
)
_TABLE_FIELDS = frozenset(
    {
        "schema",
        "service",
        "environment",
        "revision",
        "stable_version",
        "canary_version",
        "canary_weight",
        "hash_seed",
        "gray_rules",
        "blocked_versions",
    }
)


class RoutingTableError(ValueError):
    """The table is malformed; the message names the field and the rule it breaks."""


def _string_tuple(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise RoutingTableError(f"{field}: must be a list of strings, got {type(value).__name__}")
    items = tuple(value)
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise RoutingTableError(f"{field}[{index}]: must be a non-empty string, got {item!r}")
    # Sorted and de-duplicated so equal rule sets give equal JSON and therefore equal ETags.
    return tuple(sorted(set(items)))


@dataclasses.dataclass(frozen=True)
class GrayRule:
    """One match rule; all non-empty fields must match (AND)."""

    tenants: tuple[str, ...] = ()
    trace_types: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    feature_flags: tuple[str, ...] = ()
    gray_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in _RULE_FIELDS:
            object.__setattr__(self, field, _string_tuple(getattr(self, field), field))
        if not any(getattr(self, field) for field in _RULE_FIELDS):
            raise RoutingTableError(f"gray rule: {_EMPTY_RULE_MESSAGE}")

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "gray rule") -> GrayRule:
        if not isinstance(data, dict):
            raise RoutingTableError(f"{where}: must be an object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_RULE_FIELDS))
        if unknown:
            raise RoutingTableError(
                f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_RULE_FIELDS)}"
            )
        if not any(data.get(field) for field in _RULE_FIELDS):
            raise RoutingTableError(f"{where}: {_EMPTY_RULE_MESSAGE}")
        try:
            return cls(**{field: data.get(field) for field in _RULE_FIELDS})
        except RoutingTableError as error:
            raise RoutingTableError(f"{where}.{error}") from None

    def to_dict(self) -> dict[str, list[str]]:
        # Only set fields are written, so the JSON reads like the rule an operator typed.
        return {field: list(getattr(self, field)) for field in _RULE_FIELDS if getattr(self, field)}


@dataclasses.dataclass(frozen=True)
class RoutingTable:
    """Immutable routing table; build changes with ``dataclasses.replace`` or the helpers below."""

    service: str
    environment: str
    stable_version: str
    canary_version: str | None = None
    canary_weight: float = 0.0
    gray_rules: tuple[GrayRule, ...] = ()
    blocked_versions: tuple[str, ...] = ()
    revision: int = 0
    hash_seed: str = ""  # empty means "the service name"

    def __post_init__(self) -> None:
        for field in ("service", "environment", "stable_version"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise RoutingTableError(f"{field}: must be a non-empty string, got {value!r}")
        if self.canary_version is not None:
            if not isinstance(self.canary_version, str) or not self.canary_version:
                raise RoutingTableError(
                    f"canary_version: must be null or a non-empty string, got {self.canary_version!r}"
                )
            if self.canary_version == self.stable_version:
                raise RoutingTableError(
                    f"canary_version: must differ from stable_version ({self.stable_version!r})"
                )
        weight = self.canary_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise RoutingTableError(f"canary_weight: must be a number from 0 to 100, got {weight!r}")
        if not 0 <= weight <= 100:
            raise RoutingTableError(f"canary_weight: must be from 0 to 100, got {weight!r}")
        object.__setattr__(self, "canary_weight", float(weight))

        rules = self.gray_rules
        if isinstance(rules, (str, bytes, dict)) or not isinstance(rules, Iterable):
            raise RoutingTableError(f"gray_rules: must be a list of rules, got {type(rules).__name__}")
        rules = tuple(rules)
        for index, rule in enumerate(rules):
            if not isinstance(rule, GrayRule):
                raise RoutingTableError(f"gray_rules[{index}]: must be a GrayRule, got {type(rule).__name__}")
        object.__setattr__(self, "gray_rules", rules)

        if self.canary_version is None and (weight > 0 or rules):
            raise RoutingTableError(
                "canary_version: is null, so canary_weight must be 0 and gray_rules empty"
            )
        object.__setattr__(
            self, "blocked_versions", _string_tuple(self.blocked_versions, "blocked_versions")
        )
        if isinstance(self.revision, bool) or not isinstance(self.revision, int) or self.revision < 0:
            raise RoutingTableError(f"revision: must be an integer >= 0, got {self.revision!r}")
        if not isinstance(self.hash_seed, str):
            raise RoutingTableError(f"hash_seed: must be a string, got {self.hash_seed!r}")
        if not self.hash_seed:
            object.__setattr__(self, "hash_seed", self.service)
        if len(self.hash_seed.encode()) > MAX_HASH_SEED_BYTES:
            raise RoutingTableError(
                f"hash_seed: must be at most {MAX_HASH_SEED_BYTES} bytes of UTF-8, got {self.hash_seed!r}"
            )

    # --- JSON -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> RoutingTable:
        if not isinstance(data, dict):
            raise RoutingTableError(f"table: must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - _TABLE_FIELDS)
        if unknown:
            raise RoutingTableError(f"table: unknown field(s) {', '.join(unknown)}")
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise RoutingTableError(
                f"schema: this client understands schema {SCHEMA_VERSION}, got {schema!r}"
            )
        for required in ("service", "environment", "revision", "stable_version", "canary_version", "canary_weight"):
            if required not in data:
                raise RoutingTableError(f"{required}: is required")
        raw_rules = data.get("gray_rules") or []
        if not isinstance(raw_rules, list):
            raise RoutingTableError(f"gray_rules: must be a list, got {type(raw_rules).__name__}")
        rules = tuple(
            GrayRule.from_dict(rule, where=f"gray_rules[{index}]") for index, rule in enumerate(raw_rules)
        )
        return cls(
            service=data["service"],
            environment=data["environment"],
            revision=data["revision"],
            stable_version=data["stable_version"],
            canary_version=data["canary_version"],
            canary_weight=data["canary_weight"],
            hash_seed=data.get("hash_seed") or "",
            gray_rules=rules,
            blocked_versions=data.get("blocked_versions") or (),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> RoutingTable:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise RoutingTableError(f"table: not valid JSON ({error})") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "service": self.service,
            "environment": self.environment,
            "revision": self.revision,
            "stable_version": self.stable_version,
            "canary_version": self.canary_version,
            "canary_weight": self.canary_weight,
            "hash_seed": self.hash_seed,
            "gray_rules": [rule.to_dict() for rule in self.gray_rules],
            "blocked_versions": list(self.blocked_versions),
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, so equal tables give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def etag(self) -> str:
        """A strong HTTP ETag (quoted) for this exact table."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:24]
        return f'"{self.revision}-{digest}"'

    # --- blue-green helpers ----------------------------------------------------------------
    # They only compute the next table; the server assigns the revision and audits the change.

    def cut_over(self) -> RoutingTable:
        """All new traffic to the canary (the new colour); the stable stays as the way back."""
        if self.canary_version is None:
            raise RoutingTableError("canary_version: cannot cut over, no canary version is set")
        return dataclasses.replace(self, canary_weight=100.0)

    def switch_back(self) -> RoutingTable:
        """All new traffic to the stable (the old colour); the canary stays deployed for a retry."""
        return dataclasses.replace(self, canary_weight=0.0, gray_rules=())

    def stable_only(self) -> RoutingTable:
        """The table a client falls back to when it lost its server: no weight, no rules.

        The same table as ``switch_back()``; named for what the client means by it.
        """
        return self.switch_back()
