"""Pages answer a fragment to htmx and the whole page otherwise, at the same URL: say so in Vary, so no cache (the
browser's included) hands a fragment back for a plain visit, e.g. after the back button."""
from django.utils.cache import patch_vary_headers

NOT_PAGES = ("/api/", "/static/", "/metrics/", "/monitor/", "/ws/")


class HtmxVaryMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(NOT_PAGES):
            patch_vary_headers(response, ["HX-Request", "HX-History-Restore-Request"])
        return response
