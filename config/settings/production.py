"""Production: what runs unless DJANGO_SETTINGS_MODULE says otherwise (manage.py, asgi, wsgi and Celery default to
it). It refuses to start without its secrets, and serves HTTPS only: HSTS, redirect, secure cookies, a CSP."""

from .base import *  # noqa: F401,F403
from .base import BASE_DIR, env, env_secret


# The keys local.py and test.py carry are in the repository: anyone can read them.
PUBLIC_KEYS = {"rollgate-local-development-only-not-secret", "rollgate-local-credentials-key-not-secret",
               "rollgate-test-only", "rollgate-test-credentials-key"}


def required_secret(name: str) -> str:
    value = env_secret(name)
    if not value:
        raise RuntimeError(f"{name} (or {name}_FILE) must be set in production: there is no default. For a local "
                           f"run use DJANGO_SETTINGS_MODULE=config.settings.local (make run does)")
    if value in PUBLIC_KEYS:
        raise RuntimeError(f"{name} is one of the keys committed to the repository (local/test settings): "
                           f"generate a secret one for production")
    return value


DEBUG = False
SECRET_KEY = required_secret("SECRET_KEY")
# Environment credentials (kubeconfigs, tokens) are encrypted with this key: never the repository's local one.
ROLLGATE_CREDENTIALS_KEY = required_secret("ROLLGATE_CREDENTIALS_KEY")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy: X-Forwarded-Proto is believed only from ROLLGATE_TRUSTED_PROXIES
# (config/client_address.py drops it from anyone else) or from the proxies uvicorn trusts (FORWARDED_ALLOW_IPS,
# which then sets the request's scheme itself). SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https" by default;
# another header for proxies that use one, or "" when nothing in front of Rollgate terminates TLS.
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=["HTTP_X_FORWARDED_PROTO", "https"])
if _proxy_ssl_header and (len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_")):
    raise RuntimeError(f"SECURE_PROXY_SSL_HEADER must be 'HTTP_<HEADER>,<value>' (e.g. HTTP_X_FORWARDED_PROTO,https) "
                       f"or empty, got {','.join(_proxy_ssl_header)!r}")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
# Browser logins POST with an Origin header: Rollgate's public HTTPS origin is trusted unless told otherwise.
if not CSRF_TRUSTED_ORIGINS and ROLLGATE_PUBLIC_URL.startswith("https://"):  # noqa: F405 (from base)
    CSRF_TRUSTED_ORIGINS = [ROLLGATE_PUBLIC_URL.rstrip("/")]  # noqa: F405
# The health checks and /metrics answer over plain HTTP too (kubelet probes and Prometheus reach the pod directly).
SECURE_REDIRECT_EXEMPT = [r"^api/health/", r"^metrics$"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# The image collects static files at build time and ships without node_modules (no Node.js at run time): the
# vendor finder (config/static_files.py) lists only files that exist, and checks for them only where it serves them.
WHITENOISE_USE_FINDERS = False
# collectstatic writes each file under a content-hashed name (htmx.min.3f2a….js) with .gz next to it (.br too when
# the brotli package is installed); WhiteNoise serves the hashed names with "max-age=315360000, public, immutable"
# and negotiates the compressed copy. Templates name files through {% static %}, which resolves the hashed name.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Only the hashed copies stay in STATIC_ROOT (every reference goes through {% static %}).
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
