"""Pure routing decision: which version serves a trace, given one routing table.

The hash: ``h = BLAKE2b-64(key=utf8(hash_seed), data=utf8(trace_id))`` read as a big-endian
unsigned integer; the trace's point is ``h / 2**64`` in [0, 1).  A trace goes to the canary
when its point is below ``canary_weight / 100``.  Because the point does not depend on the
weight, raising the weight only adds ids to the canary set and never removes one, and an id
keeps its version as long as weight, versions and seed stay.  Other languages reproduce it with
any BLAKE2b implementation (keyed, 8-byte digest).

Precedence, in order:
1. blocked versions are never chosen: if the canary is blocked, everything goes to stable; if
   the stable is blocked, everything goes to the canary; if both are blocked (or the stable is
   blocked and there is no canary) ``choose`` raises ``NoRoutableVersionError`` and the
   scheduler must hold the trace rather than send it to a version that was taken out;
2. a trace matching any gray rule goes to the canary, whatever its hash;
3. otherwise the hash decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from hashlib import blake2b
from typing import Any, Iterable

from rollgate_client.table import GRAY_TAG_HEADER, RoutingTable

_HASH_SPACE = 2**64

# What a Router does for every trace, decided once per table so choose() stays short.
_SPLIT = "split"  # rules, then hash
_ALWAYS = "always"  # one version for every trace
_NOTHING = "nothing"  # every version is blocked


class NoRoutableVersionError(LookupError):
    """Every version the table could send traffic to is blocked."""


def trace_point(trace_id: str | bytes, hash_seed: str) -> float:
    """The trace's position in [0, 1); the canary gets the points below weight/100."""
    data = trace_id.encode() if isinstance(trace_id, str) else trace_id
    digest = blake2b(data, digest_size=8, key=hash_seed.encode()).digest()
    return int.from_bytes(digest, "big") / _HASH_SPACE


def _gray_tag_from(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    value = headers.get(GRAY_TAG_HEADER)
    if value is not None:
        return value
    for name, value in headers.items():  # HTTP header names are case-insensitive
        if name.lower() == GRAY_TAG_HEADER:
            return value
    return None


def _flags_on(feature_flags: Iterable[str] | Mapping[str, Any] | None) -> frozenset[str]:
    if not feature_flags:
        return frozenset()
    if isinstance(feature_flags, Mapping):
        return frozenset(name for name, enabled in feature_flags.items() if enabled)
    if isinstance(feature_flags, str):
        return frozenset((feature_flags,))
    return frozenset(feature_flags)


class Router:
    """Answers ``choose`` for one table; immutable, safe to share between threads."""

    __slots__ = (
        "table",
        "_mode",
        "_always",
        "_stable",
        "_canary",
        "_threshold",
        "_hasher",
        "_rules",
        "_rules_use_tags",
        "_rules_use_flags",
        "_blocked_reason",
    )

    def __init__(self, table: RoutingTable) -> None:
        self.table = table
        blocked = set(table.blocked_versions)
        stable_open = table.stable_version not in blocked
        canary_open = table.canary_version is not None and table.canary_version not in blocked
        self._stable = table.stable_version
        self._canary = table.canary_version
        self._always: str | None = None
        self._blocked_reason = ""
        # Any 64-bit hash is below 2**64, so weight 100 sends every id to the canary.
        self._threshold = int(table.canary_weight / 100 * _HASH_SPACE)
        self._hasher = blake2b(digest_size=8, key=table.hash_seed.encode())
        self._rules = tuple(
            (
                frozenset(rule.tenants),
                frozenset(rule.trace_types),
                frozenset(rule.regions),
                frozenset(rule.feature_flags),
                frozenset(rule.gray_tags),
            )
            for rule in table.gray_rules
        )
        self._rules_use_tags = any(rule.gray_tags for rule in table.gray_rules)
        self._rules_use_flags = any(rule.feature_flags for rule in table.gray_rules)

        if stable_open and canary_open:
            if self._threshold == 0 and not self._rules:
                self._mode, self._always = _ALWAYS, self._stable
            elif self._threshold >= _HASH_SPACE:
                self._mode, self._always = _ALWAYS, self._canary
            else:
                self._mode = _SPLIT
        elif stable_open:
            self._mode, self._always = _ALWAYS, self._stable
        elif canary_open:
            self._mode, self._always = _ALWAYS, self._canary
        else:
            self._mode = _NOTHING
            versions = [table.stable_version] + ([table.canary_version] if table.canary_version else [])
            self._blocked_reason = (
                f"{table.service}/{table.environment} revision {table.revision}: "
                f"every routable version is blocked ({', '.join(versions)})"
            )

    def choose(
        self,
        trace_id: str | bytes,
        tenant: str | None = None,
        region: str | None = None,
        headers: Mapping[str, str] | None = None,
        trace_type: str | None = None,
        feature_flags: Iterable[str] | Mapping[str, Any] | None = None,
    ) -> str:
        # Checked on every path, so a bad id fails the same way at weight 0, 30 or 100.
        if type(trace_id) is str:
            data = trace_id.encode()
        elif isinstance(trace_id, (bytes, bytearray)):
            data = trace_id
        else:
            raise TypeError(f"trace_id: must be str or bytes, got {type(trace_id).__name__}")
        always = self._always
        if always is not None:
            return always
        if self._mode is _NOTHING:
            raise NoRoutableVersionError(self._blocked_reason)
        if self._rules and self._matches_gray_rule(tenant, region, headers, trace_type, feature_flags):
            return self._canary  # type: ignore[return-value]
        hasher = self._hasher.copy()
        hasher.update(data)
        if int.from_bytes(hasher.digest(), "big") < self._threshold:
            return self._canary  # type: ignore[return-value]
        return self._stable

    def _matches_gray_rule(self, tenant, region, headers, trace_type, feature_flags) -> bool:
        gray_tag = _gray_tag_from(headers) if self._rules_use_tags else None
        flags_on = _flags_on(feature_flags) if self._rules_use_flags else frozenset()
        for tenants, trace_types, regions, flags, tags in self._rules:
            if tenants and tenant not in tenants:
                continue
            if trace_types and trace_type not in trace_types:
                continue
            if regions and region not in regions:
                continue
            if flags and flags.isdisjoint(flags_on):
                continue
            if tags and gray_tag not in tags:
                continue
            return True
        return False
