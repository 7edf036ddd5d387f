"""The approvals inbox: releases waiting for an approval this user's roles can give."""
from django.shortcuts import render

from frontend.access import is_htmx, page_requires
from releases import policy, selectors


@page_requires(policy.RELEASE_APPROVE)
def approvals_inbox(request):
    waiting = selectors.approvals_inbox(user=request.user)
    if is_htmx(request) and request.GET.get("badge"):  # the nav badge, refreshed on live events
        return render(request, "frontend/_inbox_badge.html", {"count": len(waiting)})
    template = "frontend/_approvals_table.html" if is_htmx(request) else "frontend/approvals.html"
    return render(request, template, {"waiting": waiting, "my_roles": sorted(policy.roles_of(request.user))})
