"""The routing section of the release page: live instances per version, the routing table, blue-green buttons.

Reads through routing.selectors, writes through routing.services (audited), like the API.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext, pgettext_lazy
from django.views.decorators.http import require_POST

from frontend.access import page_requires
from releases import policy, selectors
from releases.errors import DomainError
from releases.services import Actor
from routing import selectors as routing_selectors
from routing import services as routing_services

ROUTING_ACTIONS = {
    "cut_over": routing_services.routing_cut_over,
    "switch_back": routing_services.routing_switch_back,
}
ROUTING_LABELS = {"cut_over": pgettext_lazy("page action", "cut over"),
                  "switch_back": pgettext_lazy("page action", "switch back")}


def _context(request, release):
    try:
        view = routing_selectors.routing_view_for(release.service, release.environment)
        missing = ""
    except routing_selectors.NoTable as error:
        view, missing = None, str(error)
    may = policy.can(request.user, policy.ROUTING_MANAGE)
    is_canary = view is not None and view.canary is not None and view.canary.pk == release.pk
    # Cut-over moves all new traffic: it needs release.promote too and the same freeze/approval/blocked rule.
    promote = policy.can(request.user, policy.RELEASE_PROMOTE)
    may_cut_over, why_not_cut_over = bool(may and promote), may.reason or promote.reason
    if may_cut_over and is_canary:
        refusal = selectors.traffic_refusal(move=policy.MOVE_CUT_OVER, service=release.service,
                                            environment=release.environment, tag=release.version.tag,
                                            release=release)
        if refusal:
            may_cut_over, why_not_cut_over = False, refusal
    return {
        "release": release,
        "view": view,
        "missing": missing,
        "groups": routing_selectors.instances_by_version(service=release.service, environment=release.environment),
        "stale_after_s": int(routing_selectors.stale_after().total_seconds()),
        "is_canary": is_canary,
        "may_manage": bool(may),
        "why_not": may.reason,
        "may_cut_over": may_cut_over,
        "why_not_cut_over": why_not_cut_over,
        "table_url": f"/api/routing/{release.service.name}/{release.environment.name}/",
    }


@page_requires(policy.RELEASE_VIEW)
def release_routing(request, release_id: int):
    release = selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    return render(request, "frontend/routing/_section.html", _context(request, release))


@login_required
@require_POST
def release_routing_action(request, release_id: int, action: str):
    release = selectors.release_get(user=request.user, release_id=release_id)
    if release is None or action not in ROUTING_ACTIONS:
        raise Http404("no such release or action")
    label = str(ROUTING_LABELS[action])
    try:
        ROUTING_ACTIONS[action](actor=Actor.of(request.user), service=release.service.name,
                                environment=release.environment.name, comment=request.POST.get("comment", "")[:4000])
        messages.success(request, gettext("%(label)s: done") % {"label": label})
    except DomainError as error:
        messages.error(request, gettext("%(label)s refused: %(message)s") % {
                                    "label": label, "message": error.message})
    return redirect("release-detail", release_id=release_id)
