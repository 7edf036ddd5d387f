"""Deploy pages: the revision history section of the release page (with rollback to a revision) and the
per-environment values page for ops. Reads through deploy.selectors, writes through
deploy.services, permissions through releases.policy — the same path as the API."""
import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from deploy import selectors as deploy_selectors
from deploy import services as deploy_services
from deploy.api import PREVIEW_TAG
from deploy.targets.values import ValuesError
from releases import policy, selectors
from releases.errors import DomainError
from releases.models import AgentService, Environment
from releases.services import Actor

HISTORY_ROWS = 20


def _history_rows(user, service, environment):
    rows = []
    current = deploy_selectors.last_deployed(service, environment)
    for revision in deploy_selectors.revision_history(service, environment)[:HISTORY_ROWS]:
        allowed, why = deploy_selectors.revision_rollback_state(user=user, revision=revision, current=current)
        rows.append({"revision": revision, "allowed": allowed, "why": why})
    return rows


@login_required
def history_section(request, release_id: int):
    release = selectors.release_get(user=request.user, release_id=release_id)
    if release is None:
        raise Http404("no such release")
    decision = policy.can(request.user, policy.ENVIRONMENT_SETTINGS_VIEW)
    context = {"release": release, "service": release.service, "environment": release.environment,
               "can_view": bool(decision), "why_not": decision.reason,
               "rows": _history_rows(request.user, release.service, release.environment) if decision else [],
               "next": request.GET.get("next") or f"/releases/{release.pk}/"}
    return render(request, "frontend/deploy/_history.html", context)


@login_required
@require_POST
def revision_rollback(request, name: str, env: str, number: int):
    try:
        deploy_services.revision_rollback_request(actor=Actor.of(request.user), service=name, environment=env,
                                                  number=number, comment=request.POST.get("comment", "")[:4000])
        messages.success(request, gettext("rollback to revision %(number)s: queued; the history shows it "
                                          "when it has rolled out") % {"number": number})
    except DomainError as error:
        messages.error(request, gettext("rollback to revision %(number)s refused: %(message)s") % {
                                    "number": number, "message": error.message})
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("deploy-values", name=name, env=env)


@login_required
def environment_values(request, name: str, env: str):
    decision = policy.can(request.user, policy.ENVIRONMENT_SETTINGS_VIEW)
    if not decision:
        return render(request, "frontend/deploy/values.html", {"refused": decision.reason}, status=403)
    service = get_object_or_404(AgentService, name=name)
    environment = get_object_or_404(Environment, name=env)
    can_edit = policy.can(request.user, policy.ENVIRONMENT_MANAGE)
    status, submitted, error = 200, {}, None
    if request.method == "POST":
        layer = request.POST.get("layer")
        text = request.POST.get("text", "")
        if layer not in ("service", "environment"):
            return HttpResponseBadRequest("layer: must be 'service' (values.yaml) or 'environment' (values-<env>.yaml)")
        try:
            deploy_services.values_update(actor=Actor.of(request.user), service=service.name, text=text,
                                          environment=environment.name if layer == "environment" else None,
                                          comment=request.POST.get("comment", "")[:500])
            messages.success(request, gettext("values saved"))
            return redirect("deploy-values", name=service.name, env=environment.name)
        except DomainError as exc:
            status, submitted, error = exc.status_code, {layer: text}, {"layer": layer, "field": exc.field,
                                                                         "message": exc.message}
    base = deploy_selectors.service_values_current(service)
    overlay = deploy_selectors.environment_values_current(service, environment)
    try:
        merged, merge_error = deploy_selectors.merged_values(service, environment, image_tag=PREVIEW_TAG), ""
    except (ValuesError, ValueError) as exc:
        merged, merge_error = None, str(exc)
    context = {
        "service": service, "environment": environment, "can_edit": bool(can_edit), "why_not_edit": can_edit.reason,
        "base": base, "overlay": overlay, "error": error,
        "base_text": submitted.get("service", base.text if base else ""),
        "overlay_text": submitted.get("environment", overlay.text if overlay else ""),
        "merged": yaml.safe_dump(merged, sort_keys=False) if merged else "", "merge_error": merge_error,
        "base_history": deploy_selectors.service_values_history(service)[:10],
        "overlay_history": deploy_selectors.environment_values_history(service, environment)[:10],
        "credential": deploy_selectors.credential_summary(environment),
        "target": environment.deploy_target, "target_settings": environment.target_settings,
        "rows": _history_rows(request.user, service, environment), "preview_tag": PREVIEW_TAG,
        "next": request.path,
    }
    return render(request, "frontend/deploy/values.html", context, status=status)
