"""Pages a person reads: numbers formatted one way everywhere, statistics folded away, the API documented for
signed-in users from our own static files, a favicon, and only the buttons that can apply."""
import re

import pytest
from django.template import Context, Template

from releases.choices import ReleaseStatus as S
from releases.services import Actor, release_pause, release_promote

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("source,expected", [
    ("{{ 1234567|number }}", "1,234,567"), ("{{ 12|number }}", "12"), ("{{ 2.345|number:1 }}", "2.3"), ("{{ 2.345|number:2 }}", "2.35"),
    ("{{ 1999.5|number:2 }}", "1,999.50"), ("{{ none|number }}", "n/a"), ("{{ 0.98765|percent }}", "98.77 %"),
    ("{{ 0.5|percent:0 }}", "50 %"), ("{{ none|percent }}", "n/a"), ("{{ 'abc'|number }}", "abc"),
])
def test_the_number_filter_formats_for_people(source, expected):
    assert Template("{% load numbers %}" + source).render(Context({"none": None})) == expected


STATE_BUTTONS = {"approve", "reject", "promote", "promote_full", "pause", "resume", "rollback"}


def buttons(client, release_id) -> list[str]:
    """The state-dependent action buttons on the release page, in order (promote-next-env has its own rule)."""
    found = re.findall(r'data-action="([a-z_]+)"', client.get(f"/releases/{release_id}/").content.decode())
    return [name for name in found if name in STATE_BUTTONS]


def test_only_the_buttons_that_can_apply_are_shown(client, rm, make_release, live_release):
    client.force_login(rm)
    release = make_release("v1.1.0", "staging")
    assert buttons(client, release.pk) == ["promote", "promote_full"]
    release_promote(actor=Actor.of(rm), release_id=release.pk)
    assert buttons(client, release.pk) == ["promote", "promote_full", "pause", "rollback"]
    release_pause(actor=Actor.of(rm), release_id=release.pk, comment="look first")
    assert buttons(client, release.pk) == ["resume", "rollback"]
    assert buttons(client, live_release.pk) == ["rollback"]
    prod = make_release("v2.0.0", "prod")
    assert buttons(client, prod.pk) == ["approve", "reject", "promote"]  # promote disabled, with the reason


def test_the_sla_rules_and_readings_are_folded_under_details(client, qa, rm, make_release, live_release):
    from tests.sla.test_gate_v2_api import SUMMARY, gate_record

    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)
    gate_record(canary)
    client.force_login(qa)
    section = client.get(f"/sla/releases/{canary.pk}/").content.decode()
    assert section.index(SUMMARY) < section.index('<details class="sla-rules">') < section.index("sla-findings")
    assert "statistics: 3 rules with their measured values and thresholds" in section
    assert "3.10 %" in section and "1,234 ms" in section  # measured values in their unit


def test_api_docs_for_signed_in_users_from_our_own_static_files(client, dev):
    anonymous = client.get("/api/docs/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    client.force_login(dev)
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/' in attributes for attributes in scripts)  # no inline script, no CDN
    assert '/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js' in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
    init = client.get("/api/docs/?script")
    assert init.status_code == 200 and init["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in init.content.decode()
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js").status_code == 404
    assert 'href="/api/docs/"' in client.get("/").content.decode()  # in the navigation


def test_every_page_names_a_favicon_and_favicon_ico_finds_it(client, dev):
    client.force_login(dev)
    assert '<link rel="icon" href="/static/frontend/favicon.svg" type="image/svg+xml">' in \
        client.get("/").content.decode()
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302 and answer["Location"] == "/static/frontend/favicon.svg"
    icon = client.get("/static/frontend/favicon.svg")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
