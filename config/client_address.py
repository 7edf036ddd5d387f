"""The client's address, for throttles and lockouts: X-Forwarded-For counts only when a trusted proxy sent it.

ROLLGATE_TRUSTED_PROXIES lists the addresses (or CIDR networks) of the reverse proxies in front of Rollgate. When
the connection comes from one of them, the client is the right-most X-Forwarded-For entry that is not itself a
trusted proxy; otherwise X-Forwarded-For is ignored and dropped, so nothing downstream (DRF throttles, django-axes,
logs) can be fooled by a header the client wrote itself.
"""
import ipaddress

from django.conf import settings


def _networks():
    return [ipaddress.ip_network(item, strict=False) for item in settings.ROLLGATE_TRUSTED_PROXIES]


def _trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(meta: dict) -> str:
    remote = meta.get("REMOTE_ADDR", "") or ""
    networks = _networks()
    if not networks or not _trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # garbage from beyond the proxy: fall back to the proxy itself
    return remote


class TrustedProxyMiddleware:
    """Resolve REMOTE_ADDR once, first thing, and drop X-Forwarded-For; X-Forwarded-Proto (HTTPS behind a proxy,
    production's SECURE_PROXY_SSL_HEADER) is kept only when a trusted proxy sent it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from_proxy = _trusted(request.META.get("REMOTE_ADDR", "") or "", _networks())
        request.META["REMOTE_ADDR"] = client_address(request.META)
        request.META.pop("HTTP_X_FORWARDED_FOR", None)
        if not from_proxy:
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)


def axes_client_ip(request) -> str:
    """django-axes' AXES_CLIENT_IP_CALLABLE: the address the middleware resolved."""
    meta = getattr(request, "META", None) or getattr(getattr(request, "_request", None), "META", {})
    return meta.get("REMOTE_ADDR", "")
