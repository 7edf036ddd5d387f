"""Result types shared by every scan check and by the scan policy."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path


class CheckStatus(StrEnum):
    PASSED = "passed"
    FINDINGS = "findings"
    UNVERIFIED = "unverified"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    UNKNOWN = "unknown"


@dataclass
class Finding:
    severity: Severity
    identifier: str
    message: str
    package: str = ""
    installed_version: str = ""
    fixed_version: str = ""
    location: str = ""


@dataclass
class CheckResult:
    name: str
    status: CheckStatus
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""  # why the check is unverified, or a one-line summary
    details: dict = field(default_factory=dict)
    duration_s: float = 0.0

    def severity_counts(self) -> dict[str, int]:
        counts = Counter(f.severity.value for f in self.findings)
        return {s.value: counts.get(s.value, 0) for s in Severity}

    def as_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        for finding in data["findings"]:
            finding["severity"] = Severity(finding["severity"]).value
        data["severity_counts"] = self.severity_counts()
        return data


def tool_path(name: str, explicit: str | None = None) -> str | None:
    """Find a tool on PATH or beside this interpreter (a venv's bin/ need not be on PATH)."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which(name)


def unverified(name: str, reason: str, started: float, **details) -> CheckResult:
    return CheckResult(name=name, status=CheckStatus.UNVERIFIED, reason=reason,
                       details=details, duration_s=round(time.monotonic() - started, 3))


def with_findings(name: str, findings: list[Finding], started: float, summary: str,
                   **details) -> CheckResult:
    status = CheckStatus.FINDINGS if findings else CheckStatus.PASSED
    return CheckResult(name=name, status=status, findings=findings, reason=summary,
                       details=details, duration_s=round(time.monotonic() - started, 3))
