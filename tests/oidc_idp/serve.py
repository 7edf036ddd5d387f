"""A small OpenID Connect provider for the SSO tests: django-oidc-provider in a Django project of its own, with its
own SQLite database, served on 127.0.0.1 by a subprocess the test starts (and stops).

    python tests/oidc_idp/serve.py --port 8123 --redirect-uri http://127.0.0.1:8000/oidc/callback/ \
        --client-id rollgate --client-secret s3cret --user alice:pw-alice:release-managers,staff

Users log in on its /login/ page; their groups are the `groups` claim (scope "groups"). It prints READY when it
listens. Nothing here is part of Rollgate.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import django
from django.conf import settings

HERE = Path(__file__).resolve().parent


def userinfo(claims, user):
    claims["preferred_username"] = user.username
    claims["email"] = user.email
    claims["name"] = user.get_full_name() or user.username
    return claims


def _groups_claims_class():
    from oidc_provider.lib.claims import ScopeClaims

    class GroupsClaims(ScopeClaims):
        info_groups = ("Groups", "The groups you belong to.")

        def scope_groups(self):
            return {"groups": sorted(self.user.groups.values_list("name", flat=True))}

    return GroupsClaims


GroupsClaims = None  # set after Django is configured (OIDC_EXTRA_SCOPE_CLAIMS names it)


def configure(port: int, database: str) -> None:
    settings.configure(
        DEBUG=False, SECRET_KEY="oidc-test-idp-only-not-a-secret", ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF="__main__", USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                        "oidc_provider"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [str(HERE / "templates")],
                    "APP_DIRS": True, "OPTIONS": {"context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth"]}}],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        # Rollgate runs on the same host (127.0.0.1, another port): cookies are per host, so names must differ.
        SESSION_COOKIE_NAME="idp_session", CSRF_COOKIE_NAME="idp_csrftoken",
        LOGIN_URL="/login/", SITE_URL=f"http://127.0.0.1:{port}",
        OIDC_USERINFO="__main__.userinfo", OIDC_EXTRA_SCOPE_CLAIMS="__main__.GroupsClaims",
    )
    django.setup()


def build_urls():
    from django.contrib.auth.views import LoginView
    from django.urls import include, path

    return [path("openid/", include("oidc_provider.urls", namespace="oidc_provider")),
            path("login/", LoginView.as_view(template_name="idp_login.html"))]


urlpatterns: list = []


def main(argv: list[str]) -> None:
    global GroupsClaims
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--user", action="append", default=[], help="name:password:group1,group2")
    args = parser.parse_args(argv)
    configure(args.port, str(Path(tempfile.mkdtemp(prefix="rollgate-idp-")) / "idp.sqlite3"))
    GroupsClaims = _groups_claims_class()
    urlpatterns.extend(build_urls())

    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from oidc_provider.models import Client, ResponseType

    call_command("migrate", verbosity=0)
    call_command("creatersakey")
    for spec in args.user:
        name, password, groups = (spec.split(":") + [""])[:3]
        user = User.objects.create_user(name, email=f"{name}@example.com", password=password)
        for group in filter(None, groups.split(",")):
            user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = Client.objects.create(name="Rollgate", client_type="confidential", client_id=args.client_id,
                                   client_secret=args.client_secret, jwt_alg="RS256", require_consent=False,
                                   reuse_consent=True, _redirect_uris=args.redirect_uri,
                                   _scope="openid email profile groups")
    client.response_types.add(ResponseType.objects.get(value="code"))

    from django.core.servers.basehttp import WSGIRequestHandler, run
    from django.core.wsgi import get_wsgi_application

    WSGIRequestHandler.log_message = lambda *a, **k: None  # quiet
    print("READY", flush=True)
    run("127.0.0.1", args.port, get_wsgi_application(), threading=True)


if __name__ == "__main__":
    main(sys.argv[1:])
