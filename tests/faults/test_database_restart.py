"""PostgreSQL restarts (issue 13), on a cluster of the test's own (pg_createcluster on a free port):

- builds running while the database restarts finish: a database blip is retried inside the stage, never reported
  as "worker lost", and no release ends ci_failed for it;
- while the database is down the API answers 503 in its JSON error shape, naming the database (pages answer the
  503 page: the in-process test at the end);
- a COMMIT whose connection breaks after the server committed is not reported as failed: the backend asks the
  database (txid_status) before answering. A loopback proxy between Django and PostgreSQL cuts the connection at
  the exact moment, before or after the server's answer to COMMIT.
"""
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection, connections

from config.postgres.base import DatabaseWrapper
from tests.faults.conftest import TIMED_RUNNERS
from tests.faults.services import PrivateCluster, PrivateRedis
from tests.faults.stack import ROOT, Stack, create_release
from tests.pipelines.conftest import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster():
    private = PrivateCluster().create()
    env = {**os.environ, "DATABASE_URL": private.url, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo", "--password", "pw-fault-test"]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True,
                       timeout=180)
    yield private
    private.drop()


def private_rows(cluster: PrivateCluster, sql: str) -> list[tuple]:
    with psycopg.connect(cluster.url.replace("postgres://", "postgresql://"), connect_timeout=3) as conn:
        return conn.execute(sql).fetchall()


def test_builds_survive_a_database_restart_and_the_api_says_503_meanwhile(tmp_path, cluster):
    redis = PrivateRedis(tmp_path / "redis").start()
    journal = tmp_path / "journal"
    stack = Stack(tmp_path / "logs", database_url=cluster.url, redis_url=redis.url,
                  ROLLGATE_PIPELINE_RUNNERS=TIMED_RUNNERS, ROLLGATE_TEST_STAGE_SECONDS="0.2",
                  ROLLGATE_TEST_STAGE_SECONDS_BUILD="14", ROLLGATE_TEST_STAGE_LOG_EVERY="0.3",
                  ROLLGATE_TEST_STAGE_JOURNAL=journal)
    try:
        stack.web()
        stack.worker("worker", queues="celery", concurrency=2)
        stack.worker("gate", queues="gate")
        stack.beat()
        token = stack.token("dev", "pw-fault-test")
        ids = [create_release(stack, token, f"v4.{n}.0") for n in range(2)]
        wait_for(lambda: journal.exists() and journal.read_text().count("build start") == 2, timeout=60,
                 what="both builds to run")
        time.sleep(1.5)
        during = {}

        def while_down():
            headers = {"Authorization": f"Token {token}"}
            during["list"] = httpx.get(f"{stack.url}/api/releases/", headers=headers, timeout=20)
            during["pause"] = httpx.post(f"{stack.url}/api/releases/{ids[0]}/pause/", headers=headers, json={},
                                         timeout=20)

        cluster.restart(down_s=4.0, mode="immediate", while_down=while_down)  # a crash: no clean shutdown

        for name in ("list", "pause"):
            answer = during[name]
            assert answer.status_code == 503, (name, answer.status_code, answer.text[:300])
            body = answer.json()
            assert (body["code"], body["unavailable"]) == ("service_unavailable", "database"), body
            assert "database is unavailable" in body["detail"] and answer.headers["Retry-After"]

        def settled():
            rows = private_rows(cluster, f"SELECT id, status FROM releases_release WHERE id IN ({ids[0]}, {ids[1]})")
            return all(status == "ready" for _, status in rows) and rows
        try:
            wait_for(settled, timeout=120, what="both releases to be ready after the restart")
        except AssertionError:
            print(stack.logs())
            raise
        failures = private_rows(cluster, "SELECT name, failure_reason, attempt FROM pipelines_stage "
                                         "WHERE failure_reason <> '' OR status <> 'succeeded'")
        assert failures == [] or all("worker lost" not in reason for _, reason, _ in failures), failures
        lost = private_rows(cluster, "SELECT count(*) FROM pipelines_stagelogline WHERE message LIKE '%lost while "
                                     "the database was unreachable%'")
        print(f"log lines noted as lost during the outage: {lost}")
        stack.assert_running()
    finally:
        stack.stop()
        redis.stop()


# --- COMMIT whose connection breaks (in-process, through a loopback proxy) ----------------------------------------


class CommitCutter:
    """A TCP proxy in front of PostgreSQL. Armed with "after", it forwards the client's COMMIT, then cuts both sides
    as soon as the server's answer to it arrives (the server committed; the client never hears it). Armed with
    "before", it cuts when the client sends COMMIT (the server never gets it). Then it disarms."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.armed = ""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, server, "to_server"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, "to_client"), daemon=True).start()

    def _pipe(self, source, sink, direction):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if direction == "to_server" and self.armed == "before" and b"COMMIT" in data:
                    self.armed = ""
                    break
                if direction == "to_client" and self.armed == "after" and b"COMMIT\x00" in data:
                    self.armed = ""
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self):
        self._stop.set()
        self.listener.close()


@pytest.fixture
def probe_table(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS rollgate_commit_probe (id serial PRIMARY KEY, note text)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE rollgate_commit_probe")


def proxied_wrapper(cutter: CommitCutter) -> DatabaseWrapper:
    params = {**connections["default"].settings_dict, "HOST": "127.0.0.1", "PORT": cutter.port}
    return DatabaseWrapper(params, alias="proxied")


def stored(note: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rollgate_commit_probe WHERE note = %s", [note])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("note", ["pause committed", "promote to 30 % committed"])
def test_a_commit_whose_answer_is_lost_is_not_reported_as_failed(probe_table, note):
    cutter = CommitCutter(int(connections["default"].settings_dict.get("PORT") or 5432))
    wrapper = proxied_wrapper(cutter)
    try:
        wrapper.set_autocommit(False)
        with wrapper.cursor() as cursor:
            cursor.execute("INSERT INTO rollgate_commit_probe (note) VALUES (%s)", [note])
        cutter.armed = "after"
        wrapper.commit()  # the connection breaks while COMMIT's answer is on its way: no error, the write stands
        assert cutter.armed == ""  # the cut really happened
    finally:
        wrapper.close()
        cutter.close()
    assert stored(note) == 1


def test_a_commit_that_never_reached_the_server_is_reported(probe_table):
    cutter = CommitCutter(int(connections["default"].settings_dict.get("PORT") or 5432))
    wrapper = proxied_wrapper(cutter)
    try:
        wrapper.set_autocommit(False)
        with wrapper.cursor() as cursor:
            cursor.execute("INSERT INTO rollgate_commit_probe (note) VALUES ('lost')")
        cutter.armed = "before"
        with pytest.raises(OperationalError):
            wrapper.commit()
    finally:
        try:
            wrapper.close()
        except Exception:  # noqa: BLE001 - the connection is already gone
            pass
        cutter.close()
    assert stored("lost") == 0


# --- 503 from a process whose database is gone (in-process) ------------------------------------------------------


@contextlib.contextmanager
def database_gone():
    """The default connection pointed at a port nothing listens on, while the block runs."""
    from tests.faults.services import free_port

    connection.close()
    saved = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = free_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


@pytest.mark.django_db(transaction=True)
def test_api_and_pages_answer_503_naming_the_database(rm):
    from django.test import Client

    client = Client(raise_request_exception=False)  # answer as the server would, not re-raise into the test
    client.force_login(rm)
    token = client.post("/api/auth/token/", {"username": "rm", "password": "pw-rm"},
                        content_type="application/json").json()["token"]
    with database_gone():
        api = client.get("/api/releases/", HTTP_AUTHORIZATION=f"Token {token}")
        write = client.post("/api/releases/1/pause/", {}, content_type="application/json",
                            HTTP_AUTHORIZATION=f"Token {token}")
        page = client.get("/")
    for answer in (api, write):
        assert answer.status_code == 503, answer.content[:300]
        assert answer.json()["unavailable"] == "database" and answer.json()["code"] == "service_unavailable"
        assert answer["Retry-After"] == "5"
    assert page.status_code == 503 and b"cannot reach the database" in page.content
    assert settings.DEBUG is False
    assert client.get("/api/releases/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200  # back again
