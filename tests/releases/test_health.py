import socket

from rest_framework.test import APIClient


def test_health_is_ok_when_database_and_redis_answer(db):
    response = APIClient().get("/api/health/")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_health_is_503_naming_redis_when_it_is_down(db, settings):
    with socket.socket() as probe:  # a port nobody listens on: bind, note it, close
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    response = APIClient().get("/api/health/")
    assert response.status_code == 503
    assert response.json()["down"] == ["redis"]
