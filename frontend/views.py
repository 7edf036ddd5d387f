"""Pages. Each reads through releases.selectors and writes through releases.services, like the API."""
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from releases import policy, selectors, services
from releases.errors import DomainError
from releases.services import Actor


class LoginView(auth_views.LoginView):
    template_name = "frontend/login.html"
    redirect_authenticated_user = True


@login_required
def fleet(request):
    environments, rows = selectors.fleet_overview(
        user=request.user, service=request.GET.get("service", "")[:63],
        environment=request.GET.get("environment", "")[:30], status=request.GET.get("status", "")[:20],
    )
    context = {"environments": environments, "rows": rows, "can_view": bool(policy.can(request.user,
                                                                                       policy.RELEASE_VIEW))}
    template = "frontend/_fleet_table.html" if request.headers.get("HX-Request") else "frontend/fleet.html"
    return render(request, template, context)


@login_required
def release_detail(request, release_id: int):
    release = selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    context = {
        "release": release,
        "record": selectors.release_record(release),
        "ladder": selectors.gray_ladder(release.environment),
        "approvals": selectors.approval_summary(release),
        "decisions": release.approvals.select_related("user"),
        "actions": selectors.release_actions(user=request.user, release=release),
        "timeline": release.audit_events.order_by("created_at", "id"),
    }
    template = "frontend/_release_body.html" if request.headers.get("HX-Request") else "frontend/release.html"
    return render(request, template, context)


def _promote(actor, release_id, comment, expected_weight=None, full=False):
    return services.release_promote(actor=actor, release_id=release_id, comment=comment, full=full,
                                    expected_weight=expected_weight)


ACTIONS = {
    "promote": lambda actor, rid, c, w: _promote(actor, rid, c, w),
    "promote_full": lambda actor, rid, c, w: _promote(actor, rid, c, w, full=True),
    "pause": lambda actor, rid, c, w: services.release_pause(actor=actor, release_id=rid, comment=c),
    "resume": lambda actor, rid, c, w: services.release_resume(actor=actor, release_id=rid, comment=c),
    "rollback": lambda actor, rid, c, w: services.release_rollback(actor=actor, release_id=rid, comment=c),
    "approve": lambda actor, rid, c, w: services.release_approve(actor=actor, release_id=rid, comment=c),
    "reject": lambda actor, rid, c, w: services.release_reject(actor=actor, release_id=rid, comment=c),
}


@login_required
@require_POST
def release_action(request, release_id: int, action: str):
    if action not in ACTIONS:
        raise Http404("no such action")
    comment = request.POST.get("comment", "")[:4000]
    seen = request.POST.get("expected_weight", "")
    expected_weight = int(seen) if seen.isdigit() and int(seen) <= 100 else None
    try:
        ACTIONS[action](Actor.of(request.user), release_id, comment, expected_weight)
        messages.success(request, f"{action.replace('_', ' ')}: done")
    except DomainError as error:
        messages.error(request, f"{action.replace('_', ' ')} refused: {error.message}")
    return redirect("release-detail", release_id=release_id)
