"""Start a release from the browser (developer, release manager): service, environment, tag, commit, branch.

The conventions are checked as you type (htmx GET of the check partial: releases.selectors.release_create_problems,
the same words release_create uses); the submit calls releases.services.release_create and opens the new
release's page, or shows the refusal next to the field it names."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from frontend.access import page_requires
from releases import policy, selectors, services
from releases.conventions import BRANCH_CONVENTIONS, TAG_CONVENTIONS
from releases.errors import DomainError
from releases.models import AgentService, Environment
from releases.services import Actor

FIELDS = ("service", "environment", "tag", "commit", "branch")


def _values(data) -> dict:
    return {name: str(data.get(name, ""))[:200].strip() for name in FIELDS}


def _context(values: dict, problems: dict, error: str = "") -> dict:
    return {"values": values, "problems": problems, "error": error,
            "services": AgentService.objects.order_by("name").values_list("name", flat=True)[:500],
            "environments": Environment.objects.order_by("position", "name"),
            "tag_conventions": TAG_CONVENTIONS, "branch_conventions": BRANCH_CONVENTIONS}


@page_requires(policy.RELEASE_CREATE)
def release_new(request):
    if request.method != "POST":
        values = _values(request.GET)
        return render(request, "frontend/release_new.html", _context(values, {}))
    values = _values(request.POST)
    problems = selectors.release_create_problems(**values)
    for name in ("service", "environment", "tag", "commit"):
        if not values[name]:
            problems.setdefault(name, "required")
    if problems:
        return render(request, "frontend/release_new.html", _context(values, problems), status=400)
    try:
        release = services.release_create(actor=Actor.of(request.user), **values)
    except DomainError as error:
        problems = {error.field: error.message} if error.field in FIELDS else {}
        return render(request, "frontend/release_new.html",
                      _context(values, problems, "" if problems else error.message), status=error.status_code)
    messages.success(request, gettext("release #%(release_id)s started: %(service)s %(tag)s -> "
                                      "%(environment)s; its pipeline is queued") % {
                                  "release_id": release.pk, "service": release.service.name,
                                  "tag": release.version.tag, "environment": release.environment.name})
    return redirect("release-detail", release_id=release.pk)


@page_requires(policy.RELEASE_CREATE)
def release_new_check(request):
    """The check-as-you-type partial: every field's problem in the rule's words."""
    values = _values(request.GET)
    return render(request, "frontend/_release_new_checks.html",
                  {"problems": selectors.release_create_problems(**values), "values": values})
