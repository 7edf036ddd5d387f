"""Page access: every page and page action asks releases.policy, exactly like the API does."""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from releases import policy


def refuse(request, reason: str, status: int = 403):
    """The page a user sees instead of what their role may not open: it says why, and who can help."""
    no_role = not policy.roles_of(request.user)
    return render(request, "frontend/forbidden.html", {"reason": reason, "no_role": no_role}, status=status)


def page_requires(action: str):
    """Login, then the policy: a user without the permission gets a page that says why (403)."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            decision = policy.can(request.user, action)
            if not decision:
                return refuse(request, decision.reason)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def is_htmx(request) -> bool:
    """An htmx request that wants a fragment. A history restore (the back button after htmx swapped the page,
    with nothing in htmx's history cache) needs the whole page: htmx puts the answer in place of <body>."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")
