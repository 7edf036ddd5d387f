"""The fleet overview: services x environments, filters, approval badges, and a query count that does not grow."""
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from releases.choices import ReleaseStatus as S
from releases.models import AgentService
from releases.services import Actor, release_create, release_promote, release_worker_transition
from tests.conftest import sha


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def add_services(count: int, dev, rm, start: int = 0) -> None:
    """Each service: v1 live in staging, v2 at 5 % in staging, v1 waiting for approvals in prod."""
    for index in range(start, start + count):
        name = f"svc-{index:04d}"
        AgentService.objects.create(name=name, image_repository=f"registry.example.com/{name}")
        commits = {"v1.0.0": sha(), "v1.1.0": sha()}
        for tag, env in (("v1.0.0", "staging"), ("v1.1.0", "staging"), ("v1.0.0", "prod")):
            release = release_create(actor=Actor.of(dev), service=name, environment=env, tag=tag,
                                     commit=commits[tag])
            release_worker_transition(release_id=release.pk, from_statuses={S.PENDING}, to_status=S.READY,
                                      actor_name="pipeline", action="pipeline.succeeded")
            if env == "staging":
                release_promote(actor=Actor.of(rm), release_id=release.pk)


def fleet_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")
    assert response.status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_the_number_of_services(environments, dev, rm):
    client = logged_in(rm)
    add_services(2, dev, rm)
    few = fleet_queries(client)
    add_services(20, dev, rm, start=2)
    many = fleet_queries(client)
    assert "svc-0021" in client.get("/").content.decode()
    assert many == few, f"{few} queries for 2 services but {many} for 22"


def test_fleet_shows_stable_canary_weight_and_waiting_approvals(environments, dev, rm):
    add_services(1, dev, rm)
    page = logged_in(rm).get("/").content.decode()
    assert '<span class="dot live"></span>' in page and ">v1.0.0</a> <span class=\"muted\">95 %</span>" in page
    assert '<span class="dot canary"></span>' in page and "5 % <span class=\"status s-gray\">gray</span>" in page
    assert '<span class="tag warn" title="approvals missing">needs 1 qa, 1 release_manager</span>' in page
    assert '<b id="pending-approvals">1</b> waiting for approval' in page


def test_fleet_filters_by_service_environment_and_status(environments, dev, rm):
    add_services(3, dev, rm)
    client = logged_in(rm)
    page = client.get("/", {"service": "svc-0001"}, HTTP_HX_REQUEST="true").content.decode()
    assert "svc-0001" in page and "svc-0002" not in page and "<html" not in page
    page = client.get("/", {"environment": "prod"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<th>prod" in page and "<th>staging" not in page
    page = client.get("/", {"status": "gray", "environment": "dev"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No services match." in page
    page = client.get("/", {"status": "no-such-status"}, HTTP_HX_REQUEST="true").content.decode()
    assert page.count('<th class="service">') == 3


def test_each_cell_shows_the_sla_gate_last_verdict(environments, dev, rm):
    from releases.models import Release
    from sla.models import GateRecord

    add_services(1, dev, rm)
    canary = Release.objects.get(service__name="svc-0000", environment__name="staging", status=S.GRAY)
    GateRecord.objects.create(release=canary, status="watching", action="hold")
    page = logged_in(rm).get("/").content.decode()
    assert 'SLA v1.1.0 <span class="status v-watching">watching</span>' in page


def test_fleet_pages_by_service_with_the_total_and_filters_applied_before_paging(environments, dev, rm, monkeypatch):
    from releases import selectors

    monkeypatch.setattr(selectors, "FLEET_PAGE_SIZE", 2)
    add_services(5, dev, rm)
    client = logged_in(rm)
    first = client.get("/").content.decode()
    assert first.count('<th class="service">') == 2 and "<b>5</b> services · page 1 of 3" in first
    last = client.get("/", {"page": 3}).content.decode()
    assert last.count('<th class="service">') == 1 and "svc-0004" in last and "← previous" in last
    assert "svc-0004" in client.get("/", {"page": 999}).content.decode()  # past the end: the last page
    release_worker_transition(release_id=release_create(actor=Actor.of(dev), service="svc-0003", environment="dev",
                                                        tag="v9.0.0", commit=sha()).pk,
                              from_statuses={S.PENDING}, to_status=S.CI_FAILED, actor_name="pipeline",
                              action="pipeline.failed")
    failed = client.get("/", {"status": "ci_failed"}, HTTP_HX_REQUEST="true").content.decode()
    assert failed.count('<th class="service">') == 1 and "svc-0003" in failed and "<b>1</b> services" in failed
    assert "need attention" in failed


def test_every_fleet_page_costs_the_same_queries_at_any_size(environments, dev, rm, monkeypatch):
    from releases import selectors

    monkeypatch.setattr(selectors, "FLEET_PAGE_SIZE", 2)
    client = logged_in(rm)
    add_services(3, dev, rm)
    few = fleet_queries(client)
    add_services(6, dev, rm, start=3)
    assert fleet_queries(client) == few
    with CaptureQueriesContext(connection) as deep:
        assert client.get("/", {"page": 4, "status": "gray"}).status_code == 200
    assert len(deep) == few


def test_a_paused_canary_needs_attention_even_with_a_newer_release_waiting(make_release, live_release, rm):
    from releases.services import release_pause

    canary = make_release("v1.1.0", "staging")
    release_promote(actor=Actor.of(rm), release_id=canary.pk)  # 5 %
    client = logged_in(rm)

    def attention() -> str:
        page = client.get("/").content.decode()
        return page.split(" need attention")[0].rsplit("<b>", 1)[1].split("</b>")[0]

    assert attention() == "0"
    release_pause(actor=Actor.of(rm), release_id=canary.pk, comment="eval scores look worse")
    assert attention() == "1"
    make_release("v1.2.0", "staging")  # the next version is built meanwhile: the paused canary still holds the slot
    assert attention() == "1"
