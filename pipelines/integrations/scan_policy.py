"""The scan gate: turns check results into one verdict for a release going to an environment.

Order of strength: BLOCKED > NEEDS_OVERRIDE > WARN > CLEAR.
- any Critical finding -> BLOCKED (never pushed);
- a denied licence -> BLOCKED by default (configurable to NEEDS_OVERRIDE);
- any High finding -> NEEDS_OVERRIDE (a release_manager override with a written reason);
- an UNVERIFIED check (scanner missing, no vulnerability data) -> NEEDS_OVERRIDE in every environment: the
  release waits for a release_manager who accepts, in writing, that the image could not be verified. It never
  ends the release (an offline machine cannot verify anything) and it is never CLEAR. Environments listed in
  `unverified_warns_in` (none by default) only WARN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from pipelines.integrations.scan_results import CheckResult, CheckStatus, Severity

LICENCE_CHECK = "licences"


class ScanVerdict(StrEnum):
    CLEAR = "clear"
    WARN = "warn"
    NEEDS_OVERRIDE = "needs_override"
    BLOCKED = "blocked"


_STRENGTH = [ScanVerdict.CLEAR, ScanVerdict.WARN, ScanVerdict.NEEDS_OVERRIDE, ScanVerdict.BLOCKED]


@dataclass(frozen=True)
class ScanPolicy:
    unverified_warns_in: frozenset[str] = frozenset()
    denied_licence_verdict: ScanVerdict = ScanVerdict.BLOCKED
    override_role: str = "release_manager"


@dataclass
class ScanDecision:
    verdict: ScanVerdict
    environment: str
    reasons: list[str] = field(default_factory=list)
    severity_counts: dict[str, int] = field(default_factory=dict)
    unverified_checks: list[str] = field(default_factory=list)
    override_role: str = ""

    @property
    def may_push(self) -> bool:
        """BLOCKED never pushes; NEEDS_OVERRIDE pushes only after the override is recorded."""
        return self.verdict in (ScanVerdict.CLEAR, ScanVerdict.WARN)

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict.value,
            "environment": self.environment,
            "reasons": self.reasons,
            "severity_counts": self.severity_counts,
            "unverified_checks": self.unverified_checks,
            "override_role": self.override_role,
            "may_push": self.may_push,
        }


def scan_decide(*, results: Iterable[CheckResult], environment: str,
                policy: ScanPolicy = ScanPolicy()) -> ScanDecision:
    """One verdict for all checks, with every reason that contributed (strongest first)."""
    results = list(results)
    counts = {s.value: 0 for s in Severity}
    for result in results:
        for severity, n in result.severity_counts().items():
            counts[severity] += n
    found: list[tuple[ScanVerdict, str]] = []
    if counts[Severity.CRITICAL]:
        found.append((ScanVerdict.BLOCKED, f"{counts[Severity.CRITICAL]} critical findings"))
    for result in results:
        if result.name == LICENCE_CHECK and result.findings:
            packages = ", ".join(f"{f.package} ({f.message})" for f in result.findings[:5])
            found.append((policy.denied_licence_verdict, f"denied licences: {packages}"))
    high_outside_licences = sum(
        1 for r in results if r.name != LICENCE_CHECK
        for f in r.findings if f.severity == Severity.HIGH)
    if high_outside_licences:
        found.append((ScanVerdict.NEEDS_OVERRIDE,
                      f"{high_outside_licences} high findings need a {policy.override_role} "
                      "override with a written reason"))
    unverified = [r for r in results if r.status == CheckStatus.UNVERIFIED]
    for result in unverified:
        waits = environment not in policy.unverified_warns_in
        found.append((ScanVerdict.NEEDS_OVERRIDE if waits else ScanVerdict.WARN,
                      f"{result.name} unverified: {result.reason}"
                      + (f" (an unverified scan waits for a {policy.override_role} override in {environment})"
                         if waits else "")))
    found.sort(key=lambda item: _STRENGTH.index(item[0]), reverse=True)
    verdict = found[0][0] if found else ScanVerdict.CLEAR
    return ScanDecision(
        verdict=verdict,
        environment=environment,
        reasons=[reason for _, reason in found],
        severity_counts=counts,
        unverified_checks=[r.name for r in unverified],
        override_role=policy.override_role if verdict == ScanVerdict.NEEDS_OVERRIDE else "",
    )
