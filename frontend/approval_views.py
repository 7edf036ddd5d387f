"""The approvals inbox: releases waiting for an approval this user's roles can give, newest first, by page; above
them, canaries whose ramp waits at a gray step for the user's role."""
from django.http import HttpResponseBadRequest
from django.shortcuts import render

from frontend.access import is_htmx, page_requires
from releases import policy, selectors
from releases.keyset import BadCursor


@page_requires(policy.RELEASE_APPROVE)
def approvals_inbox(request):
    if is_htmx(request) and request.GET.get("badge"):  # the nav badge, refreshed on live events
        return render(request, "frontend/_inbox_badge.html",
                      {"count": selectors.approvals_inbox_count(user=request.user), "limit": selectors.BADGE_LIMIT})
    cursor = request.GET.get("cursor", "")
    try:
        page = selectors.approvals_inbox(user=request.user, cursor=cursor)
    except BadCursor as error:
        return HttpResponseBadRequest(f"cursor: {error}", content_type="text/plain")
    template = "frontend/_approvals_table.html" if is_htmx(request) else "frontend/approvals.html"
    # Canaries whose ramp waits at a gray step for this user's role: few, listed above the page on the first one.
    steps = selectors.approvals_step_waits(user=request.user) if not cursor else []
    return render(request, template, {"waiting": page, "first_page": not cursor, "step_waits": steps,
                                      "my_roles": sorted(policy.roles_of(request.user))})
