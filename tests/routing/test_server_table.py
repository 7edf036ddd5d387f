"""The routing table as the server computes and serves it: shape, weights per release status, ETag/304,
blue-green cut-over / switch-back, rules and blocked versions (all audited)."""
import pytest
from django.test import Client

from releases.choices import ReleaseStatus
from releases.models import AuditEvent
from releases.services import Actor, release_pause, release_promote, release_resume, release_worker_transition
from rollgate_client import RoutingTable
from rollgate_client.router import Router
from routing import services

from ..conftest import client_for

URL = "/api/routing/agent-infer/staging/"


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    """Call a service and run its on-commit hooks (release_transitioned -> routing) as a real commit would."""

    def call(service_function, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service_function(**kwargs)

    return call


def get_table(key, **headers):
    response = Client().get(URL, {"wait": "0"}, HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
    return response


@pytest.fixture
def canary(live_release, make_release, rm, act):
    release = make_release("v1.1.0", "staging")
    act(release_promote, actor=Actor.of(rm), release_id=release.pk)
    release.refresh_from_db()
    assert release.status == ReleaseStatus.GRAY and release.gray_weight == 5
    return release


def test_table_follows_the_releases_in_the_client_shape(canary, act, agent_key, rm, settings):
    settings.ROLLGATE_PROMOTE_DEBOUNCE_SECONDS = 0
    response = get_table(agent_key)
    assert response.status_code == 200, response.content
    table = RoutingTable.from_json(response.content)  # the client's strict parser accepts it
    assert (table.stable_version, table.canary_version, table.canary_weight) == ("v1.0.0", "v1.1.0", 5.0)
    assert response["ETag"] == table.etag
    first_revision = table.revision

    act(release_promote, actor=Actor.of(rm), release_id=canary.pk)
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert table.canary_weight == 10.0 and table.revision > first_revision

    act(release_pause, actor=Actor.of(rm), release_id=canary.pk)  # pause holds the ramp; traffic stays
    assert RoutingTable.from_json(get_table(agent_key).content).canary_weight == 10.0
    act(release_resume, actor=Actor.of(rm), release_id=canary.pk)
    assert RoutingTable.from_json(get_table(agent_key).content).canary_weight == 10.0

    act(release_promote, actor=Actor.of(rm), release_id=canary.pk, full=True)
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert (table.stable_version, table.canary_version, table.canary_weight) == ("v1.1.0", None, 0.0)


def test_etag_and_if_none_match_give_304(canary, agent_key, rm):
    first = get_table(agent_key)
    etag = first["ETag"]
    same = get_table(agent_key, HTTP_IF_NONE_MATCH=etag)
    assert same.status_code == 304 and same["ETag"] == etag and same.content == b""
    stale = get_table(agent_key, HTTP_IF_NONE_MATCH='"0-deadbeef"')
    assert stale.status_code == 200
    services.routing_cut_over(actor=Actor.of(rm), service="agent-infer", environment="staging")
    changed = get_table(agent_key, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_blue_green_cut_over_and_switch_back_are_one_audited_change_each(canary, act, agent_key, rm):
    api = client_for(rm)
    response = api.post(f"{URL}cut-over/", {"comment": "green verified"}, format="json")
    assert response.status_code == 200, response.content
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert table.canary_weight == 100.0
    assert Router(table).choose("any-trace") == "v1.1.0"

    assert api.post(f"{URL}switch-back/", {}, format="json").status_code == 200
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert (table.canary_weight, table.gray_rules) == (0.0, ())
    assert Router(table).choose("any-trace") == "v1.0.0"
    actions = list(AuditEvent.objects.filter(object_type="routing").order_by("id").values_list("action", "actor_name"))
    assert actions == [("routing.cut_over", "rm"), ("routing.switch_back", "rm")]

    # A release decision ends the override: promote puts the table back on the ladder.
    act(release_promote, actor=Actor.of(rm), release_id=canary.pk, expected_weight=5)
    assert RoutingTable.from_json(get_table(agent_key).content).canary_weight == 10.0


def test_routing_changes_need_the_routing_role(canary, dev, qa):
    for user in (dev, qa):
        response = client_for(user).post(f"{URL}cut-over/", {}, format="json")
        assert response.status_code == 403
        assert "release_manager" in response.json()["detail"]


def test_gray_rules_are_validated_and_served(canary, agent_key, rm):
    api = client_for(rm)
    bad = api.put(f"{URL}rules/", {"rules": [{"tenant": ["acme"]}]}, format="json")
    assert bad.status_code == 400 and "tenant" in bad.json()["detail"]
    empty = api.put(f"{URL}rules/", {"rules": [{}]}, format="json")
    assert empty.status_code == 400 and "canary_weight 100" in empty.json()["detail"]
    rules = [{"tenants": ["acme"], "regions": ["cn-bj"]}, {"gray_tags": ["gray-phase-A"]}]
    assert api.put(f"{URL}rules/", {"rules": rules, "comment": "acme first"}, format="json").status_code == 200
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert [rule.to_dict() for rule in table.gray_rules] == [
        {"tenants": ["acme"], "regions": ["cn-bj"]}, {"gray_tags": ["gray-phase-A"]}]
    router = Router(table)
    assert router.choose("t-1", tenant="acme", region="cn-bj") == "v1.1.0"
    assert router.choose("t-1", headers={"X-Gray-Tag": "gray-phase-A"}) == "v1.1.0"
    assert AuditEvent.objects.filter(action="routing.rules_update", release=canary).count() == 1


def test_blocked_versions_are_never_chosen(canary, agent_key, rm, make_release):
    api = client_for(rm)
    # Cut over first: a cut-over onto a blocked version is refused (releases.services.traffic_check).
    services.routing_cut_over(actor=Actor.of(rm), service="agent-infer", environment="staging")
    assert api.post(f"{URL}blocked-versions/", {"version": "v1.1.0"}, format="json").status_code == 400  # reason
    response = api.post(f"{URL}blocked-versions/", {"version": "v1.1.0", "reason": "bad answers"}, format="json")
    assert response.status_code == 201
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert "v1.1.0" in table.blocked_versions and table.canary_weight == 100.0
    router = Router(table)
    assert {router.choose(f"trace-{i}", tenant="acme") for i in range(2000)} == {"v1.0.0"}

    assert api.delete(f"{URL}blocked-versions/v1.1.0/").status_code == 200
    assert RoutingTable.from_json(get_table(agent_key).content).blocked_versions == ()


def test_a_release_blocked_by_the_sla_gate_blocks_its_version(canary, act, agent_key):
    assert act(release_worker_transition, release_id=canary.pk, from_statuses={ReleaseStatus.GRAY},
                                     to_status=ReleaseStatus.BLOCKED, actor_name="sla-gate",
                                     action="sla.block_version", reason="62 failed traces")
    table = RoutingTable.from_json(get_table(agent_key).content)
    assert table.canary_version is None and table.blocked_versions == ("v1.1.0",)


def test_table_read_permissions_and_errors(canary, agent_key, rm, nobody, environments):
    assert Client().get(URL).status_code == 401
    human = Client()
    human.force_login(rm)
    assert human.get(URL).status_code == 200
    no_role = Client()
    no_role.force_login(nobody)
    assert no_role.get(URL).status_code == 403
    assert Client().get("/api/routing/agent-infer/prod/", HTTP_AUTHORIZATION=f"Bearer {agent_key}").status_code == 403
    bad_wait = Client().get(URL, {"wait": "soon"}, HTTP_AUTHORIZATION=f"Bearer {agent_key}")
    assert bad_wait.status_code == 400 and "wait" in bad_wait.json()["detail"]


def test_no_table_before_anything_is_live(environments, service, agent_key):
    response = get_table(agent_key)
    assert response.status_code == 404
    assert "no live release" in response.json()["detail"]
