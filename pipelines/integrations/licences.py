"""Licence policy for a service's Python dependencies.

Licences are read from installed package metadata (PEP 639 `License-Expression`, the
`License` field, or trove classifiers) for the packages named in requirements.txt.
Default policy: deny GPL and AGPL (LGPL is not GPL here) and deny unknown licences;
an allow-list, when configured, denies everything not on it. A package whose metadata
cannot be found at all makes the check UNVERIFIED, not a denial: nothing was read.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pipelines.integrations.scan_results import (
    CheckResult,
    CheckStatus,
    Finding,
    Severity,
    with_findings,
)

UNKNOWN = "UNKNOWN"

_CLASSIFIER_TO_SPDX = {
    "MIT License": "MIT",
    "Apache Software License": "Apache-2.0",
    "BSD License": "BSD",
    "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU General Public License (GPL)": "GPL",
    "GNU Affero General Public License v3": "AGPL-3.0",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
}
# Free-text `License:` values seen in the wild, normalised (compared case-insensitively).
_FREE_TEXT_TO_SPDX = {
    "mit": "MIT", "mit license": "MIT",
    "apache 2.0": "Apache-2.0", "apache-2": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "apache software license": "Apache-2.0",
    "bsd": "BSD", "bsd license": "BSD", "new bsd license": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause", "isc": "ISC", "isc license": "ISC",
    "gplv2": "GPL-2.0", "gplv3": "GPL-3.0", "agplv3": "AGPL-3.0", "lgplv3": "LGPL-3.0",
    "psf": "PSF-2.0", "mpl-2.0": "MPL-2.0", "mpl 2.0": "MPL-2.0",
}


@dataclass(frozen=True)
class LicencePolicy:
    denied_families: tuple[str, ...] = ("GPL", "AGPL")
    deny_unknown: bool = True
    # None: everything not denied is allowed. A set: only these SPDX ids are allowed.
    allowed: frozenset[str] | None = None
    # Per-package exceptions (canonical package name -> reason), e.g. a reviewed dual licence.
    package_exceptions: dict[str, str] = field(default_factory=dict)


def licence_of(metadata) -> str:
    """Best SPDX-like licence string from a distribution's metadata, or UNKNOWN."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression
    free_text = (metadata.get("License") or "").strip()
    # Some packages paste the whole licence text into `License`; only short values name one.
    if free_text and "\n" not in free_text and len(free_text) <= 80 and free_text != UNKNOWN:
        return _FREE_TEXT_TO_SPDX.get(free_text.lower(), free_text)
    classifiers = [c.split(" :: ")[-1] for c in metadata.get_all("Classifier") or []
                   if c.startswith("License :: ")]
    named = [_CLASSIFIER_TO_SPDX.get(c, c) for c in classifiers if c != "OSI Approved"]
    if named:
        return " OR ".join(dict.fromkeys(named))
    return UNKNOWN


def _in_family(spdx_id: str, family: str) -> bool:
    # "GPL-3.0-only" and "GPL" are GPL; "LGPL-3.0" and "GPLv3-compatible-ish" text are not.
    return re.match(rf"^{re.escape(family)}(?:$|-|v?\d)", spdx_id, re.IGNORECASE) is not None


def licence_denial_reason(licence: str, policy: LicencePolicy) -> str | None:
    """None when `licence` (an SPDX expression) is acceptable, else why not."""
    if licence == UNKNOWN or not licence.strip():
        return "licence unknown" if policy.deny_unknown else None
    cleaned = licence.replace("(", " ").replace(")", " ")
    alternatives = [a.strip() for a in re.split(r"\s+OR\s+", cleaned) if a.strip()]
    reasons = []
    for alternative in alternatives:
        terms = [re.split(r"\s+WITH\s+", t.strip())[0]
                 for t in re.split(r"\s+AND\s+", alternative) if t.strip()]
        term_reasons = []
        for term in terms:
            family = next((f for f in policy.denied_families if _in_family(term, f)), None)
            if family:
                term_reasons.append(f"{term} is in the denied {family} family")
            elif policy.allowed is not None and term not in policy.allowed:
                term_reasons.append(f"{term} is not on the allow-list")
        if not term_reasons:
            return None  # one acceptable alternative is enough for an OR
        reasons.extend(term_reasons)
    return "; ".join(reasons)


def requirement_names(requirements: str | os.PathLike) -> list[tuple[str, str]]:
    """(name, pinned version or '') for each requirement line; options and comments skipped."""
    pinned = []
    for raw in Path(requirements).read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        versions = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
        pinned.append((requirement.name, versions[0] if versions else ""))
    return pinned


def _installed_distributions(site_paths: Sequence[str] | None) -> dict:
    found = {}
    for dist in importlib.metadata.distributions(path=list(site_paths or sys.path)):
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


def licence_check(*, requirements: str | os.PathLike | None = None,
                  packages: Iterable[tuple[str, str]] | None = None,
                  policy: LicencePolicy = LicencePolicy(),
                  site_paths: Sequence[str] | None = None) -> CheckResult:
    """Check the licences of `packages` (or of the packages in `requirements`).

    `site_paths` are the directories whose installed metadata is read (default: this
    interpreter's sys.path, i.e. the environment the service's requirements were
    installed into).
    """
    started = time.monotonic()
    wanted = list(packages) if packages is not None else requirement_names(requirements)
    installed = _installed_distributions(site_paths)
    findings, missing, licences = [], [], {}
    for name, pinned_version in wanted:
        key = canonicalize_name(name)
        dist = installed.get(key)
        if dist is None:
            missing.append(name)
            continue
        licence = licence_of(dist.metadata)
        licences[key] = {"licence": licence, "version": dist.version,
                         "pinned": pinned_version,
                         "version_matches": not pinned_version or pinned_version == dist.version}
        reason = licence_denial_reason(licence, policy)
        if reason and key in policy.package_exceptions:
            licences[key]["exception"] = policy.package_exceptions[key]
            continue
        if reason:
            findings.append(Finding(severity=Severity.HIGH, identifier="licence-denied",
                                    message=reason, package=name,
                                    installed_version=dist.version))
    result = with_findings("licences", findings, started,
                           f"{len(findings)} denied licences in {len(licences)} packages",
                           packages=licences, missing=missing)
    if missing:
        result.status = CheckStatus.UNVERIFIED
        result.reason = (f"no installed metadata for {len(missing)} packages "
                         f"({', '.join(missing[:5])}): their licences were not read")
    return result
