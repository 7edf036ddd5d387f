"""Environment pages: ops edit through releases.services.environment_update; errors are shown next to the field."""
import json

from django.test import Client

from releases.models import AuditEvent, Environment


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(**overrides) -> dict:
    data = {"protected": "on", "auto_rollback": "on", "approvals_release_manager": "1", "approvals_qa": "1",
            "approvals_developer": "0", "approvals_ops": "0", "approvals_auditor": "0", "freeze_windows": "[]"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_ops_change_approvals_and_freeze_windows(environments, ops):
    window = [{"weekdays": [4], "from": "18:00", "to": "23:59", "reason": "Friday evening"}]
    response = logged_in(ops).post("/environments/prod/", form_data(approvals_qa="2",
                                                                     freeze_windows=json.dumps(window)), follow=True)
    page = response.content.decode()
    assert "prod: saved freeze_windows, required_approvals" in page
    assert "frozen Fri 18:00-23:59 UTC (Friday evening)" in page
    prod = Environment.objects.get(name="prod")
    assert prod.required_approvals == {"release_manager": 1, "qa": 2} and prod.freeze_windows == window
    event = AuditEvent.objects.filter(action="environment.update").get()
    assert event.actor_name == "ops" and set(event.details["after"]) == {"freeze_windows", "required_approvals"}


def test_unprotecting_is_recorded_and_nothing_changed_is_said(environments, ops):
    client = logged_in(ops)
    page = client.post("/environments/prod/", form_data(), follow=True).content.decode()
    assert "nothing changed" in page
    client.post("/environments/prod/", form_data(protected=None))
    assert Environment.objects.get(name="prod").protected is False


def test_bad_freeze_windows_are_shown_inline_and_nothing_is_saved(environments, ops):
    client = logged_in(ops)
    response = client.post("/environments/prod/", form_data(freeze_windows="[{"))
    assert response.status_code == 400
    assert "freeze_windows: not valid JSON" in response.content.decode()
    bad = json.dumps([{"start": "2026-12-24T00:00Z", "end": "2026-12-20T00:00Z"}])
    response = client.post("/environments/prod/", form_data(freeze_windows=bad))
    assert '<div class="field-error" id="freeze-error">freeze_windows[0]: end must be after start</div>' in \
        response.content.decode()
    response = client.post("/environments/prod/", form_data(approvals_qa="9"))
    assert "QA: Ensure this value is less than or equal to 5." in response.content.decode()
    assert Environment.objects.get(name="prod").freeze_windows == []
    assert not AuditEvent.objects.filter(action="environment.update").exists()


def test_release_managers_read_but_may_not_edit(environments, rm, dev):
    client = logged_in(rm)
    page = client.get("/environments/prod/").content.decode()
    assert "Only ops may change environments" in page and "release_manager" in page
    response = client.post("/environments/prod/", form_data(protected=None))
    assert response.status_code == 403
    assert "only ops may manage environments and deploy targets; you are release_manager" in \
        response.content.decode()
    assert Environment.objects.get(name="prod").protected is True
    assert logged_in(dev).get("/environments/").status_code == 403
    assert client.get("/environments/nowhere/").status_code == 404
