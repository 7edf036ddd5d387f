"""Fleet and release pages, and the release actions. Reads go through releases.selectors, writes through
releases.services, permissions through releases.policy: the same path as the API."""
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext, pgettext_lazy
from django.views.decorators.http import require_POST

from frontend import fleet_cells
from frontend.access import is_htmx, page_requires
from releases import policy, selectors, services
from releases.choices import CANARY_STATUSES, OPEN_FOR_APPROVAL, ReleaseStatus
from releases.errors import DomainError
from releases.models import Environment
from releases.services import Actor
from sla import selectors as sla_selectors

S = ReleaseStatus


class LoginView(auth_views.LoginView):
    template_name = "frontend/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Single sign-on (issue 17): a link to the identity provider next to the local login form.
        context["sso_name"] = settings.ROLLGATE_OIDC_PROVIDER_NAME if settings.ROLLGATE_OIDC_ENABLED else ""
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        return context


@page_requires(policy.RELEASE_VIEW)
def fleet(request):
    service = request.GET.get("service", "").strip()[:63]
    environment = request.GET.get("environment", "").strip()[:30]
    status = request.GET.get("status", "").strip()[:20]
    if status not in S.values:
        status = ""
    raw_page = request.GET.get("page", "")
    page_number = int(raw_page) if raw_page.isdigit() and len(raw_page) < 7 else 1
    page = selectors.fleet_overview(user=request.user, service=service, environment=environment, status=status,
                                    page=page_number)
    rows = page.rows
    cells = [cell for row in rows for cell in row.cells]
    missing = selectors.approvals_missing([cell.latest for cell in cells])
    verdicts = sla_selectors.latest_verdicts(release_ids=[(c.canary or c.live).pk for c in cells if c.canary or c.live])
    summary = {"services": page.total, **selectors.fleet_summary(user=request.user, environment=environment)}
    for cell in cells:
        latest = cell.latest
        # the newest release, when it is neither the stable nor the canary one (ready, building, failed, ...)
        cell.other = latest if latest and latest is not cell.live and latest is not cell.canary else None
        cell.waiting = missing.get(latest.pk) if latest else None
        cell.verdict = verdicts.get((cell.canary or cell.live).pk) if (cell.canary or cell.live) else None
        cell.stable_weight = 100 - cell.canary.gray_weight if cell.canary else 100
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "environments": page.environments, "rows": rows, "summary": summary, "page": page,
        "query": query.urlencode(),
        "body": fleet_cells.render_rows(rows, show_sla=True),
        "all_environments": list(Environment.objects.values_list("name", flat=True)),
        "statuses": S.choices, "filters": {"service": service, "environment": environment, "status": status},
    }
    return render(request, "frontend/_fleet_table.html" if is_htmx(request) else "frontend/fleet.html", context)


ACTION_ORDER = ["approve", "reject", "promote", "promote_full", "pause", "resume", "rollback", "promote_next_env"]


def _action_buttons(release, states, ladder, stable, following=None) -> list[dict]:
    """Buttons in a fixed order, with the label and confirmation text a person needs to decide."""
    next_weights = [w for w in ladder if w > release.gray_weight]
    step = f"{next_weights[0]} %" if next_weights else "100 %"
    first_go = stable is None and release.status == S.READY
    where = f"#{release.pk} {release.service.name} {release.version.tag} in {release.environment.name}"
    words = {"where": where, "environment": release.environment.name, "weight": release.gray_weight, "step": step,
             "service": release.service.name, "tag": release.version.tag,
             "following": following.name if following else gettext("the next environment")}
    texts = {
        "approve": (gettext("Approve"), gettext("Approve %(where)s?") % words, "approval"),
        "reject": (gettext("Reject"), gettext("Reject %(where)s? This stops the release for good.") % words,
                   "approval"),
        "promote": (gettext("Promote → live"), gettext("Nothing is live in %(environment)s yet: %(where)s goes "
                                                       "straight to 100 %%. Promote?") % words, "traffic")
        if first_go else (gettext("Promote → %(step)s") % words,
                          gettext("Promote %(where)s from %(weight)s %% to %(step)s?") % words, "traffic"),
        "promote_full": (gettext("Promote fully (100 %)"),
                         gettext("Skip the remaining phases and send 100 %% of the traffic to %(where)s?") % words,
                         "traffic"),
        "pause": (gettext("Pause"), gettext("Hold %(where)s at %(weight)s %%?") % words, "traffic"),
        # Not the blue primary: a ramp is paused because something looked wrong (often the SLA gate), so resuming
        # should not look like the obvious next step beside Roll back.
        "resume": (gettext("Resume"), gettext("Resume the gray ramp of %(where)s?") % words, "neutral"),
        "rollback": (gettext("Roll back"),
                     gettext("Roll back %(where)s? Its traffic goes back to the stable version.") % words, "danger"),
        "promote_next_env": (gettext("Promote to %(following)s") % words,
                             gettext("Start a release of %(service)s %(tag)s in %(following)s, reusing this "
                                     "image?") % words, "approval"),
    }
    # Buttons that cannot apply in this state are left out rather than shown greyed (a final release offers
    # nothing; a live one only its rollback); role, approval and freeze reasons still show on the ones that stay.
    shown = set(ACTION_ORDER)
    if release.status not in (S.READY, S.GRAY):
        shown -= {"promote", "promote_full"}  # a paused ramp is resumed first (release_promote refuses it)
    if release.status != S.GRAY:
        shown.discard("pause")
    if release.status != S.PAUSED:
        shown.discard("resume")
    at_step = selectors.next_step(release)
    if not at_step and (release.status not in OPEN_FOR_APPROVAL or not release.environment.required_approvals):
        shown -= {"approve", "reject"}
    if at_step:
        words["at_step"] = at_step
        texts["approve"] = (gettext("Approve going to %(at_step)s %%") % words,
                            gettext("Approve that %(where)s goes to %(at_step)s %%?") % words, "approval")
        texts["reject"] = (gettext("Reject going to %(at_step)s %%") % words,
                           gettext("Reject that %(where)s goes to %(at_step)s %%? The ramp pauses.") % words,
                           "approval")
    if not next_weights or next_weights[0] >= 100 or first_go:
        shown.discard("promote_full")  # the next step is 100 % already
    if release.status not in (*CANARY_STATUSES, S.LIVE):
        shown.discard("rollback")  # only a canary or the live release can be rolled back
    if following is None or release.status not in selectors.PROMOTABLE_TO_NEXT_ENV:
        shown.discard("promote_next_env")  # only a verified release goes on; the reason shows when it cannot
    buttons = []
    for name in ACTION_ORDER:
        state = states.get(name)
        if state is None or name not in shown:
            continue
        label, confirm, kind = texts[name]
        buttons.append({"name": name, "label": label, "confirm": confirm, "kind": kind, "allowed": state.allowed,
                        "reason": state.reason, "comment_required": name == "reject"})
    return buttons


def _release_context(request, release) -> dict:
    ladder = selectors.gray_ladder(release.environment)
    states = selectors.release_actions(user=request.user, release=release)
    summary = selectors.approval_summary(release)
    stable = selectors.live_release(release.service, release.environment)
    following, _why = selectors.next_environment(release)
    step = selectors.next_step(release)
    step_summary = selectors.approval_summary(release, step=step) if step else None
    approving = step or (release.status in OPEN_FOR_APPROVAL and release.environment.required_approvals)
    evidence = selectors.approval_evidence(release) if approving else None
    return {
        "step_wait": (gettext("waiting for %(missing)s to go to %(weight)s %%") % {
            "missing": selectors.missing_words(step_summary.missing), "weight": step}
            if step_summary and step_summary.missing else ""),
        "evidence": evidence,
        "evidence_digest": selectors.evidence_digest(evidence) if evidence is not None else "",
        "release": release,
        "record": selectors.release_record(release),
        "ladder": ladder,
        "approvals": summary,
        "approval_rows": [(role, needed, summary.missing.get(role, 0), summary.approved.get(role, []))
                          for role, needed in summary.required.items()],
        "decisions": release.approvals.select_related("user"),
        "actions": states,
        "buttons": _action_buttons(release, states, ladder, stable, following),
        "stable": stable,
        "is_canary": release.status in CANARY_STATUSES,
        "timeline": release.audit_events.order_by("-created_at", "-id")[:500],
    }


@page_requires(policy.RELEASE_VIEW)
def release_detail(request, release_id: int):
    release = selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    template = "frontend/_release_body.html" if is_htmx(request) else "frontend/release.html"
    return render(request, template, _release_context(request, release))


def _promote(actor, release_id, comment, expected_weight=None, full=False):
    return services.release_promote(actor=actor, release_id=release_id, comment=comment, full=full,
                                    expected_weight=expected_weight)


ACTIONS = {
    "promote": lambda actor, rid, c, w: _promote(actor, rid, c, w),
    "promote_full": lambda actor, rid, c, w: _promote(actor, rid, c, w, full=True),
    "pause": lambda actor, rid, c, w: services.release_pause(actor=actor, release_id=rid, comment=c),
    "resume": lambda actor, rid, c, w: services.release_resume(actor=actor, release_id=rid, comment=c),
    "rollback": lambda actor, rid, c, w: services.release_rollback(actor=actor, release_id=rid, comment=c),
    "approve": lambda actor, rid, c, w, digest="": services.release_approve(actor=actor, release_id=rid, comment=c,
                                                                            evidence_digest=digest),
    "reject": lambda actor, rid, c, w, digest="": services.release_reject(actor=actor, release_id=rid, comment=c,
                                                                          evidence_digest=digest),
    "promote_next_env": lambda actor, rid, c, w: services.release_promote_next_env(actor=actor, release_id=rid,
                                                                                   comment=c),
}


# How the outcome message names each action ("pause refused: ..."), in the reader's language.
ACTION_LABELS = {
    "promote": pgettext_lazy("page action", "promote"), "promote_full": pgettext_lazy("page action", "promote fully"),
    "pause": pgettext_lazy("page action", "pause"), "resume": pgettext_lazy("page action", "resume"),
    "rollback": pgettext_lazy("page action", "roll back"), "approve": pgettext_lazy("page action", "approve"),
    "reject": pgettext_lazy("page action", "reject"),
    "promote_next_env": pgettext_lazy("page action", "promote to the next environment"),
}


@login_required
@require_POST
def release_action(request, release_id: int, action: str):
    """One action, one service call; the service asks the policy. The outcome is shown to the actor here and
    reaches everyone else watching through the live event the service sends on commit."""
    if action not in ACTIONS:
        raise Http404("no such action")
    comment = request.POST.get("comment", "")
    label = str(ACTION_LABELS.get(action, action.replace("_", " ")))
    if len(comment) > settings.ROLLGATE_MAX_COMMENT_LENGTH:
        messages.error(request, gettext("%(label)s refused: comment: at most "
                                        "%(most)s characters (it had %(length)s); "
                                        "nothing was changed") % {
                                    "label": label,
                                    "most": settings.ROLLGATE_MAX_COMMENT_LENGTH,
                                    "length": len(comment)})
        return _after_action(request, release_id)
    seen = request.POST.get("expected_weight", "")
    expected_weight = int(seen) if re.fullmatch(r"[0-9]{1,3}", seen) and int(seen) <= 100 else None
    try:
        extra = {}
        if action in ("approve", "reject"):  # bound to the evidence the page showed (a 64-hex digest, or none)
            digest = request.POST.get("evidence_digest", "")
            extra["digest"] = digest if re.fullmatch(r"[0-9a-f]{64}", digest) else ""
        result = ACTIONS[action](Actor.of(request.user), release_id, comment, expected_weight, **extra)
        if action == "promote_next_env":
            created = result[0]
            messages.success(request, gettext("release #%(created_id)s of %(tag)s started in "
                                              "%(environment)s, reusing the image of release "
                                              "#%(release_id)s") % {
                                          "created_id": created.pk, "tag": created.version.tag,
                                          "environment": created.environment.name, "release_id": release_id})
            if is_htmx(request):
                return HttpResponse("", headers={"HX-Redirect": reverse("release-detail", args=[created.pk])})
            return redirect("release-detail", release_id=created.pk)
        messages.success(request, gettext("%(label)s: done") % {"label": label})
    except DomainError as error:
        messages.error(request, gettext("%(label)s refused: %(message)s") % {
                                    "label": label, "message": error.message})
    return _after_action(request, release_id)


def _after_action(request, release_id: int):
    """The release body for htmx (the message shows inside it), or a redirect for a plain form post."""
    if is_htmx(request):
        release = selectors.release_get(user=request.user, release_id=release_id)
        if release is None:
            raise Http404("no such release")
        return render(request, "frontend/_release_body.html", _release_context(request, release))
    return redirect("release-detail", release_id=release_id)


def favicon(request):
    """/favicon.ico: the icon's hashed static URL (resolved per request: the manifest exists only in production)."""
    return redirect(static("frontend/favicon.svg"), permanent=False)
