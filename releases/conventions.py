"""Version and branch conventions (design document, chapter 2).

Tags:     v3.2.1 release · v3.3.0-rc1 staging candidate · v3.3.0-gray-A gray · v3.2.1-r1 rollback rebuild · dev-latest
Branches: main -> prod · develop -> dev/test · release/vX.Y.Z -> staging · hotfix/* -> patch path (any env)
          · feature/* -> CI only (never deployed)
"""
import re
from dataclasses import dataclass

from releases.choices import VersionKind

# [0-9], not \d: \d also matches other scripts' digits ("v１.٢.3" must not pass as a release tag).
_SEMVER = r"v(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
TAG_PATTERNS: list[tuple[str, re.Pattern]] = [
    (VersionKind.RELEASE, re.compile(rf"^{_SEMVER}$")),
    (VersionKind.CANDIDATE, re.compile(rf"^{_SEMVER}-rc(?P<n>[1-9][0-9]*)$")),
    (VersionKind.GRAY, re.compile(rf"^{_SEMVER}-gray-(?P<name>[A-Za-z0-9]{{1,20}})$")),
    (VersionKind.ROLLBACK, re.compile(rf"^{_SEMVER}-r(?P<n>[1-9][0-9]*)$")),
    (VersionKind.DEV, re.compile(r"^dev-latest$")),
]
TAG_CONVENTIONS = (
    "v3.2.1 (release), v3.3.0-rc1 (staging candidate), v3.3.0-gray-A (gray), "
    "v3.2.1-r1 (rollback rebuild), dev-latest (dev)"
)
BRANCH_CONVENTIONS = (
    "main (prod), develop (dev/test), release/vX.Y.Z (staging), hotfix/<name> (patch, any environment), "
    "feature/<name> (CI only)"
)

# Which environments each kind of tag may be released to. A release candidate never reaches prod and the moving
# dev-latest tag never leaves dev/test.
TAG_ENVIRONMENTS: dict[str, frozenset[str] | None] = {
    VersionKind.RELEASE: None,  # anywhere
    VersionKind.CANDIDATE: frozenset({"dev", "test", "staging"}),
    VersionKind.GRAY: None,
    VersionKind.ROLLBACK: None,
    VersionKind.DEV: frozenset({"dev", "test"}),
}

_BRANCH_RULES: list[tuple[re.Pattern, frozenset[str] | None, str]] = [
    (re.compile(r"^main$"), frozenset({"prod"}), "main releases to prod"),
    (re.compile(r"^develop$"), frozenset({"dev", "test"}), "develop releases to dev and test"),
    (re.compile(rf"^release/{_SEMVER}$"), frozenset({"staging"}), "release/vX.Y.Z releases to staging"),
    (re.compile(r"^hotfix/[A-Za-z0-9._-]{1,80}$"), None, "hotfix/* may patch any environment"),
    (re.compile(r"^feature/[A-Za-z0-9._/-]{1,80}$"), frozenset(), "feature/* branches run CI only"),
]
# The moving tag may be bound to a new commit each build; every other tag binds exactly one commit.
MOVING_TAGS = frozenset({"dev-latest"})


class ConventionError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ParsedTag:
    tag: str
    kind: str
    semver: tuple[int, int, int] | None


def parse_tag(tag: str) -> ParsedTag:
    for kind, pattern in TAG_PATTERNS:
        match = pattern.fullmatch(tag)
        if match:
            semver = None
            if "major" in pattern.groupindex:
                semver = (int(match["major"]), int(match["minor"]), int(match["patch"]))
            return ParsedTag(tag=tag, kind=kind, semver=semver)
    raise ConventionError("tag", f"'{tag[:80]}' fits no tag convention. Tags must look like: {TAG_CONVENTIONS}.")


def check_tag_environment(parsed: ParsedTag, environment: str) -> None:
    allowed = TAG_ENVIRONMENTS[parsed.kind]
    if allowed is not None and environment not in allowed:
        label = VersionKind(parsed.kind).label
        raise ConventionError(
            "tag",
            f"{parsed.tag} is a {label} tag; it may be released to {', '.join(sorted(allowed))}, not {environment}.",
        )


def check_branch(branch: str, environment: str) -> None:
    for pattern, allowed, rule in _BRANCH_RULES:
        if pattern.fullmatch(branch):
            if allowed is not None and environment not in allowed:
                raise ConventionError("branch", f"branch '{branch}' cannot release to {environment}: {rule}.")
            return
    raise ConventionError(
        "branch", f"'{branch[:80]}' fits no branch convention. Branches must be one of: {BRANCH_CONVENTIONS}."
    )
