"""Environment pages: everyone with environment.settings.view reads them; ops (environment.manage) edit
protection, required approvals, freeze windows and auto-rollback through releases.services.environment_update."""
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext

from frontend.access import is_htmx, page_requires, refuse
from frontend.forms import EnvironmentForm
from releases import policy, selectors, services
from releases.choices import CANARY_STATUSES, ReleaseStatus
from releases.errors import DomainError
from releases.freeze import active_freeze, describe
from releases.models import Environment, Release
from releases.services import Actor


@page_requires(policy.ENVIRONMENT_SETTINGS_VIEW)
def environment_list(request):
    environments = list(Environment.objects.prefetch_related("gray_phases"))
    now = timezone.now()
    for env in environments:
        window = active_freeze(env.freeze_windows, now)
        env.frozen_now = describe(window) if window else ""
    return render(request, "frontend/environments.html", {"environments": environments})


def _context(request, environment, form):
    window = active_freeze(environment.freeze_windows, timezone.now())
    releases = (Release.objects.filter(environment=environment, status__in=[ReleaseStatus.LIVE, *CANARY_STATUSES])
                .select_related("service", "version").order_by("service__name")[:200])
    return {
        "environment": environment, "form": form, "ladder": selectors.gray_ladder(environment),
        "frozen_now": describe(window) if window else "",
        "windows": [describe(w) for w in environment.freeze_windows or []],
        "can_manage": policy.can(request.user, policy.ENVIRONMENT_MANAGE),
        "releases": releases,
    }


@page_requires(policy.ENVIRONMENT_SETTINGS_VIEW)
def environment_detail(request, name: str):
    environment = Environment.objects.filter(name=name[:30]).first()
    if environment is None:
        raise Http404("no such environment")
    form = EnvironmentForm.for_environment(environment)
    if request.method == "POST":
        decision = policy.can(request.user, policy.ENVIRONMENT_MANAGE)
        if not decision:
            return refuse(request, decision.reason)
        form = EnvironmentForm(request.POST)
        if form.is_valid():
            changes = form.changes(environment)
            if not changes:
                messages.info(request, gettext("nothing changed"))
                return redirect("environment-detail", name=environment.name)
            try:
                services.environment_update(actor=Actor.of(request.user), name=environment.name, changes=changes)
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, gettext("%(environment)s: saved %(changes)s") % {
                                              "environment": environment.name, "changes": ', '.join(sorted(changes))})
                return redirect("environment-detail", name=environment.name)
        status = 400
    else:
        status = 200
    template = "frontend/_environment_summary.html" if is_htmx(request) else "frontend/environment.html"
    return render(request, template, _context(request, environment, form), status=status)
