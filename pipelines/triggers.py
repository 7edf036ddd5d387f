"""Releases started from outside: the GitLab webhook (Tag Push Hook -> a release for that tag).

Which environment a tag goes to (documented in docs/pipelines.md):
  vX.Y.Z-rcN -> staging      dev-latest -> dev      vX.Y.Z, vX.Y.Z-gray-NAME, vX.Y.Z-rN -> prod
Prod is protected: the release builds at once but waits for its approvals before any promotion.
Which service: ROLLGATE_GITLAB_PROJECTS maps a project path ("group/agent-infer") to a service name; otherwise the
service whose source_repository is the project's path, web URL, http or ssh clone URL.
Which token: ROLLGATE_GITLAB_PROJECT_TOKENS gives each project its own token (only its SHA-256 is configured) and
the services that project may release; a token only starts releases of its own project's services.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from releases.choices import Role, VersionKind
from releases.conventions import TAG_CONVENTIONS, ConventionError, parse_tag
from releases.errors import Forbidden, InvalidInput, NotFound
from releases.models import AgentService, Release
from releases.services import Actor, release_create

TAG_ENVIRONMENT = {
    VersionKind.CANDIDATE: "staging",
    VersionKind.DEV: "dev",
    VersionKind.RELEASE: "prod",
    VersionKind.GRAY: "prod",
    VersionKind.ROLLBACK: "prod",
}
_SHA = re.compile(r"^[0-9a-f]{40}$")
_ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class GitlabScope:
    """What one X-Gitlab-Token may start: a project's token (ROLLGATE_GITLAB_PROJECT_TOKENS) names the project and
    the services it may release; the legacy shared token (project=None) is accepted only while no per-project
    token is configured."""

    project: str | None
    services: frozenset[str] = frozenset()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def gitlab_token_scope(presented: str | None) -> GitlabScope | None:
    """Constant-time check of X-Gitlab-Token against the stored SHA-256 of each project's token (and, with no
    per-project token configured, the shared ROLLGATE_GITLAB_WEBHOOK_TOKEN). None: refused."""
    if not presented:
        return None
    projects = settings.ROLLGATE_GITLAB_PROJECT_TOKENS or {}
    digest = _sha256(presented)
    found = None
    for project, entry in projects.items():
        if hmac.compare_digest(digest.encode(), str((entry or {}).get("token_sha256", "")).lower().encode()):
            found = GitlabScope(project=project, services=frozenset((entry or {}).get("services", [])))
    if found is not None or projects:
        return found
    expected = settings.ROLLGATE_GITLAB_WEBHOOK_TOKEN or ""
    if expected and hmac.compare_digest(presented.encode(), expected.encode()):
        return GitlabScope(project=None)
    return None


def gitlab_token_valid(presented: str | None) -> bool:
    return gitlab_token_scope(presented) is not None


def gitlab_check_token(presented: str | None) -> GitlabScope:
    scope = gitlab_token_scope(presented)
    if scope is None:
        configured = settings.ROLLGATE_GITLAB_PROJECT_TOKENS or settings.ROLLGATE_GITLAB_WEBHOOK_TOKEN
        raise Forbidden("X-Gitlab-Token is missing or wrong" if configured else
                        "the GitLab webhook is disabled: neither ROLLGATE_GITLAB_PROJECT_TOKENS nor "
                        "ROLLGATE_GITLAB_WEBHOOK_TOKEN is set")
    return scope


def _gitlab_actor() -> Actor:
    user, created = get_user_model().objects.get_or_create(username=settings.ROLLGATE_GITLAB_USER)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get_or_create(name=Role.DEVELOPER)[0])
    return Actor.of(user)


def _normalise(url: str) -> str:
    url = url.strip().rstrip("/")
    return url[:-4] if url.endswith(".git") else url


def service_for_project(project: dict, repository: dict) -> AgentService:
    path = str(project.get("path_with_namespace") or "")
    mapped = settings.ROLLGATE_GITLAB_PROJECTS.get(path)
    if mapped:
        service = AgentService.objects.filter(name=mapped).first()
        if service is None:
            raise NotFound(gettext("ROLLGATE_GITLAB_PROJECTS maps %(path)s to '%(mapped)s', which is not "
                                   "a service") % {"path": path, "mapped": mapped})
        return service
    candidates = {_normalise(str(value)) for value in (
        path, project.get("web_url"), project.get("git_http_url"), project.get("git_ssh_url"),
        repository.get("homepage"), repository.get("git_http_url"), repository.get("git_ssh_url")) if value}
    for service in AgentService.objects.exclude(source_repository=""):
        if _normalise(service.source_repository) in candidates:
            return service
    raise InvalidInput(gettext("project: no service has source_repository %(value)s; set a service's "
                               "source_repository to the project path or URL, or map it in "
                               "ROLLGATE_GITLAB_PROJECTS") % {"value": path or 'of this project'},
                       field="project")


def _commit_time(payload: dict, commit: str):
    """The time of the tagged commit, from the push event's `commits` list (GitLab sends each commit's id and
    ISO 8601 timestamp); None when the event does not carry it. A malformed timestamp is bad input."""
    commits = payload.get("commits")
    if not isinstance(commits, list):
        return None
    for entry in commits:
        if isinstance(entry, dict) and entry.get("id") == commit and entry.get("timestamp"):
            try:
                when = parse_datetime(entry["timestamp"][:40]) if isinstance(entry["timestamp"], str) else None
            except ValueError:  # well formed but not a date (month 13)
                when = None
            if when is None or when.tzinfo is None:
                raise InvalidInput(gettext("commits[].timestamp: must be an ISO 8601 time with its "
                                           "offset, as GitLab sends it (e.g. 2026-11-02T10:15:00+01:00)"),
                                   field="commits")
            return when
    return None


def gitlab_tag_push(*, token: str | None, event: str, payload: dict) -> tuple[Release | None, str]:
    """Handle one GitLab webhook delivery. Returns (release or None, what happened in words).

    A wrong or missing token raises Forbidden before anything is read or recorded. Re-deliveries of the same tag
    return the release created the first time."""
    scope = gitlab_check_token(token)
    if event != "Tag Push Hook" or payload.get("object_kind") not in (None, "tag_push"):
        return None, f"ignored: only Tag Push Hook events start releases (got {event[:40] or 'no event'})"
    ref = str(payload.get("ref") or "")
    if not ref.startswith("refs/tags/"):
        raise InvalidInput(gettext("ref: expected refs/tags/<tag>, got %(ref)s") % {
                               "ref": repr(ref[:80])}, field="ref")
    tag = ref.removeprefix("refs/tags/")
    if len(tag) > 100:
        raise InvalidInput(gettext("ref: a tag is at most 100 characters"), field="ref")
    commit = str(payload.get("checkout_sha") or payload.get("after") or "")
    if commit == _ZERO_SHA or not commit and payload.get("after") == _ZERO_SHA:
        return None, f"ignored: tag {tag[:80]} was deleted"
    if not _SHA.match(commit):
        raise InvalidInput(gettext("checkout_sha: must be the 40-character commit the tag points at"),
                           field="checkout_sha")
    try:
        kind = parse_tag(tag).kind
    except ConventionError as error:
        raise InvalidInput(gettext("tag: %(message)s") % {"message": error.message}, field="tag") from None
    environment = TAG_ENVIRONMENT.get(kind)
    if environment is None:
        raise InvalidInput(gettext("tag: no environment for %(tag)s; conventions: %(tag_conventions)s") % {
                               "tag": tag, "tag_conventions": TAG_CONVENTIONS}, field="tag")
    project, repository = payload.get("project") or {}, payload.get("repository") or {}
    for name, value in (("project", project), ("repository", repository)):
        if not isinstance(value, dict):
            raise InvalidInput(gettext("%(name)s: must be an object as GitLab sends it") % {"name": name}, field=name)
    if scope.project is not None and str(project.get("path_with_namespace") or "") != scope.project:
        raise Forbidden(gettext("this X-Gitlab-Token belongs to project %(project)s, not %(value)s") % {
                            "project": scope.project,
                            "value": str(project.get('path_with_namespace') or 'an unnamed project')[:100]})
    service = service_for_project(project, repository)
    if scope.project is not None and service.name not in scope.services:
        allowed = ", ".join(sorted(scope.services)) or "no service"
        raise Forbidden(gettext("project %(project)s may start releases of %(allowed)s, not %(service)s "
                                "(ROLLGATE_GITLAB_PROJECT_TOKENS)") % {
                            "project": scope.project, "allowed": allowed, "service": service.name})
    with transaction.atomic():
        # Lock the service so two deliveries of one tag at the same moment create one release.
        AgentService.objects.select_for_update(no_key=True).filter(pk=service.pk).get()
        existing = Release.objects.filter(service=service, environment__name=environment, version__tag=tag,
                                          version__commit_sha=commit).first()
        if existing is not None:
            return existing, f"release #{existing.pk} already exists for {service.name} {tag}"
        release = release_create(actor=_gitlab_actor(), service=service.name, environment=environment, tag=tag,
                                 commit=commit, committed_at=_commit_time(payload, commit))
    return release, f"release #{release.pk} created: {service.name} {tag} -> {environment}"
