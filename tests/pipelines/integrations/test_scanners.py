"""Scan checks with the real tools (hadolint, pip-audit, cyclonedx-py) and the scan gate."""

import json
import shutil
from pathlib import Path

import pytest

from pipelines.integrations.scan_policy import ScanPolicy, ScanVerdict, scan_decide
from pipelines.integrations.scan_report import scan_report_html, scan_report_json
from pipelines.integrations.scanners import (
    CheckResult,
    CheckStatus,
    LicencePolicy,
    Severity,
    dockerfile_lint,
    image_vulnerability_scan,
    licence_check,
    pip_audit_parse,
    python_dependency_audit,
    sbom_generate,
    service_scan,
    trivy_report_parse,
)

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "agent_service"


def trivy_report(*severities):
    return {
        "SchemaVersion": 2,
        "ArtifactName": "127.0.0.1:5000/team/agent:v1",
        "Results": [{
            "Target": "app/requirements.txt", "Class": "lang-pkgs", "Type": "pip",
            "Vulnerabilities": [
                {"VulnerabilityID": f"CVE-2026-{1000 + i}", "PkgName": "requests",
                 "InstalledVersion": "2.0.0", "FixedVersion": "2.31.0",
                 "Severity": severity, "Title": f"issue {i}"}
                for i, severity in enumerate(severities)
            ],
        }, {"Target": "busybox", "Class": "os-pkgs"}],
    }


def test_critical_finding_in_supplied_trivy_report_blocks_push(tmp_path):
    report_file = tmp_path / "trivy.json"
    report_file.write_text(json.dumps(trivy_report("CRITICAL", "HIGH", "LOW")))
    result = image_vulnerability_scan(image="unused", report_file=report_file)
    assert result.status == CheckStatus.FINDINGS
    assert result.severity_counts()["critical"] == 1
    decision = scan_decide(results=[result], environment="dev")
    assert decision.verdict == ScanVerdict.BLOCKED
    assert not decision.may_push
    assert decision.reasons[0] == "1 critical findings"


def test_high_finding_needs_release_manager_override():
    decision = scan_decide(results=[trivy_report_parse(trivy_report("HIGH", "MEDIUM"))],
                           environment="prod")
    assert decision.verdict == ScanVerdict.NEEDS_OVERRIDE
    assert decision.override_role == "release_manager"
    assert not decision.may_push


def test_report_without_findings_is_clear():
    decision = scan_decide(results=[trivy_report_parse(trivy_report())], environment="prod")
    assert decision.verdict == ScanVerdict.CLEAR and decision.may_push


def test_missing_trivy_without_report_is_unverified():
    result = image_vulnerability_scan(image="x", trivy="/nonexistent/trivy")
    assert result.status == CheckStatus.UNVERIFIED
    assert "trivy is not installed" in result.reason


def test_pip_audit_that_skipped_packages_is_unverified_not_clean():
    # The real pip-audit: its vulnerability source is unreachable here, so it skips
    # every package and still prints "No known vulnerabilities found".
    result = python_dependency_audit(requirements=FIXTURE / "requirements.txt")
    assert result.status == CheckStatus.UNVERIFIED, result.reason
    assert len(result.details["skipped"]) == 3
    assert result.details["audited"] == 0
    assert "skipped 3 of 3 packages" in result.reason
    # Never "clear", never the end of the release: it waits for a release manager, in every environment.
    for environment in ("prod", "staging", "dev"):
        decision = scan_decide(results=[result], environment=environment)
        assert decision.verdict == ScanVerdict.NEEDS_OVERRIDE and not decision.may_push
        assert decision.override_role == "release_manager"
        assert f"waits for a release_manager override in {environment}" in decision.reasons[0]


def test_unverified_scan_waits_in_every_environment_unless_configured_to_warn():
    result = CheckResult(name="python_dependencies", status=CheckStatus.UNVERIFIED,
                         reason="skipped")
    policy = ScanPolicy(unverified_warns_in=frozenset({"dev", "test"}))
    assert scan_decide(results=[result], environment="staging",
                       policy=policy).verdict == ScanVerdict.NEEDS_OVERRIDE
    assert scan_decide(results=[result], environment="prod",
                       policy=policy).verdict == ScanVerdict.NEEDS_OVERRIDE
    assert scan_decide(results=[result], environment="test",
                       policy=policy).verdict == ScanVerdict.WARN


def test_critical_finding_still_blocks_when_another_check_is_unverified():
    unverified = CheckResult(name="image_vulnerabilities", status=CheckStatus.UNVERIFIED, reason="no trivy")
    critical = trivy_report_parse(trivy_report("CRITICAL"))
    decision = scan_decide(results=[unverified, critical], environment="prod")
    assert decision.verdict == ScanVerdict.BLOCKED
    assert decision.reasons[0] == "1 critical findings"
    assert decision.unverified_checks == ["image_vulnerabilities"]


def test_pip_audit_vulnerabilities_are_findings_and_skips_are_counted():
    report = {"dependencies": [
        {"name": "jinja2", "version": "2.10", "vulns": [
            {"id": "PYSEC-2019-217", "fix_versions": ["2.10.1"], "aliases": ["CVE-2019-10906"],
             "description": "sandbox escape"}]},
        {"name": "idna", "version": "3.20", "vulns": []},
        {"name": "private-lib", "skip_reason": "Dependency not found on PyPI"},
    ], "fixes": []}
    findings, skipped = pip_audit_parse(report)
    assert [(f.package, f.identifier, f.severity, f.fixed_version) for f in findings] == [
        ("jinja2", "PYSEC-2019-217", Severity.HIGH, "2.10.1")]
    assert skipped == [{"name": "private-lib", "reason": "Dependency not found on PyPI"}]


def make_distribution(site: Path, name: str, version: str, *headers: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.4\n" f"Name: {name}\n" f"Version: {version}\n"
        + "".join(h + "\n" for h in headers))


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site-packages"
    make_distribution(site, "gpl-thing", "1.0", "License-Expression: GPL-3.0-only")
    make_distribution(site, "agpl-classified", "2.0",
                      "Classifier: License :: OSI Approved :: GNU Affero General Public License v3")
    make_distribution(site, "lgpl-thing", "1.0", "License-Expression: LGPL-3.0-or-later")
    make_distribution(site, "no-licence", "1.0")
    make_distribution(site, "dual", "1.0", "License-Expression: MIT OR GPL-2.0-only")
    make_distribution(site, "both", "1.0", "License-Expression: MIT AND GPL-2.0-only")
    make_distribution(site, "mit-thing", "1.0", "License: MIT License")
    return site


def test_licence_policy_denies_gpl_agpl_and_unknown_by_default(site):
    names = ["gpl-thing", "agpl-classified", "lgpl-thing", "no-licence", "dual", "both",
             "mit-thing"]
    result = licence_check(packages=[(n, "") for n in names], site_paths=[str(site)])
    denied = {f.package: f.message for f in result.findings}
    assert denied == {
        "gpl-thing": "GPL-3.0-only is in the denied GPL family",
        "agpl-classified": "AGPL-3.0 is in the denied AGPL family",
        "no-licence": "licence unknown",
        "both": "GPL-2.0-only is in the denied GPL family",
    }
    assert result.details["packages"]["mit-thing"]["licence"] == "MIT"
    decision = scan_decide(results=[result], environment="dev")
    assert decision.verdict == ScanVerdict.BLOCKED
    assert decision.reasons[0].startswith("denied licences: gpl-thing")


def test_licence_allow_list_denies_everything_not_on_it(site):
    policy = LicencePolicy(allowed=frozenset({"MIT"}), deny_unknown=False)
    result = licence_check(packages=[("lgpl-thing", ""), ("mit-thing", ""), ("no-licence", "")],
                           site_paths=[str(site)], policy=policy)
    assert {f.package: f.message for f in result.findings} == {
        "lgpl-thing": "LGPL-3.0-or-later is not on the allow-list"}


def test_licence_package_exception_is_recorded_not_denied(site):
    policy = LicencePolicy(package_exceptions={"gpl-thing": "internal tool, not shipped"})
    result = licence_check(packages=[("gpl-thing", "")], site_paths=[str(site)], policy=policy)
    assert result.status == CheckStatus.PASSED
    assert result.details["packages"]["gpl-thing"]["exception"] == "internal tool, not shipped"


def test_licence_of_package_without_installed_metadata_is_unverified(site):
    result = licence_check(packages=[("mit-thing", "1.0"), ("not-installed", "1.0")],
                           site_paths=[str(site)])
    assert result.status == CheckStatus.UNVERIFIED
    assert result.details["missing"] == ["not-installed"]


def test_licences_read_from_this_environment_for_the_fixture_requirements():
    result = licence_check(requirements=FIXTURE / "requirements.txt")
    assert result.status == CheckStatus.PASSED, result.as_dict()
    assert result.details["packages"]["requests"]["licence"] == "Apache-2.0"


def test_hadolint_reports_findings_with_lines(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nWORKDIR app\nCMD run\n")
    result = dockerfile_lint(dockerfile=dockerfile)
    assert result.status == CheckStatus.FINDINGS, result.reason
    codes = {(f.identifier, f.location) for f in result.findings}
    assert ("DL3000", "Dockerfile:2") in codes  # relative WORKDIR
    assert ("DL3025", "Dockerfile:3") in codes  # CMD not in JSON form
    assert not any(f.severity in (Severity.CRITICAL, Severity.HIGH) for f in result.findings)


def test_hadolint_missing_is_unverified_never_clean(tmp_path):
    result = dockerfile_lint(dockerfile=FIXTURE / "Dockerfile", hadolint=str(tmp_path / "none"))
    assert result.status == CheckStatus.UNVERIFIED
    assert "hadolint is not installed" in result.reason


def test_sbom_lists_the_requirements_as_cyclonedx_components(tmp_path):
    result, sbom = sbom_generate(requirements=FIXTURE / "requirements.txt",
                                 output=tmp_path / "sbom.json")
    assert result.status == CheckStatus.PASSED, result.reason
    assert sbom["bomFormat"] == "CycloneDX"
    assert sorted(c["purl"] for c in sbom["components"]) == [
        "pkg:pypi/idna@3.20", "pkg:pypi/pyyaml@6.0.4", "pkg:pypi/requests@2.34.2"]


def test_service_scan_runs_every_check_and_renders_escaped_reports(tmp_path):
    context = tmp_path / "svc"
    shutil.copytree(FIXTURE, context)
    report_file = tmp_path / "trivy.json"
    evil = trivy_report("HIGH")
    evil["Results"][0]["Vulnerabilities"][0]["Title"] = "<script>alert(1)</script>"
    report_file.write_text(json.dumps(evil))
    results, sbom = service_scan(context_dir=context, image="127.0.0.1:5000/t/agent:v1",
                                 sbom_output=tmp_path / "sbom.json", trivy_report=report_file)
    assert [r.name for r in results] == [
        "dockerfile_lint", "python_dependencies", "licences", "sbom", "image_vulnerabilities"]
    decision = scan_decide(results=results, environment="staging")
    # The High finding and the unverified pip-audit both wait for the same override.
    assert decision.verdict == ScanVerdict.NEEDS_OVERRIDE
    assert decision.unverified_checks == ["python_dependencies"]
    report = scan_report_json(subject="agent v1", results=results, decision=decision)
    assert json.loads(json.dumps(report))["decision"]["verdict"] == "needs_override"
    html = scan_report_html(report)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "needs_override" in html and "python_dependencies unverified" in html
