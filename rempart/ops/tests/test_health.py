"""/healthz and /readyz for the load balancer: cheap, outside sessions and logins, and saying only what failed."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import types

import pytest
from django.db import OperationalError, connection

from rempart.lib import db_routing
from rempart.ops import health


@pytest.fixture(autouse=True)
def _fresh_migration_state():
    health.migrations_state.forget()
    yield
    health.migrations_state.forget()


@pytest.fixture
def no_replica(monkeypatch):
    monkeypatch.setattr(db_routing, "replica_status", lambda: None)


@pytest.fixture
def replica(monkeypatch):
    """The replica router's status (rempart.lib.db_routing), as the test sets it."""
    holder = types.SimpleNamespace(answer=None)
    monkeypatch.setattr(db_routing, "replica_status", lambda: holder.answer)
    return holder


# --- /healthz


def test_healthz_answers_without_the_database(client):
    """No ``db`` fixture: any query would raise. A database outage never gets app servers restarted."""
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store" and len(response["X-Request-ID"]) == 32


def test_probes_answer_any_host_over_plain_http_without_a_session(client, db, settings, no_replica):
    """The load balancer calls each server by its address, over HTTP, with no cookie to keep."""
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="10.0.3.7:8000")
        assert response.status_code == 200, (path, response.status_code)
        assert not response.cookies


def test_probes_answer_a_logged_in_session_without_the_second_factor(client, cast, no_replica):
    """A session that did not pass the second factor is sent to the 2FA page everywhere, not here."""
    from rempart.testing import PASSWORD

    client.post("/accounts/login/", {"login": cast.staff.email, "password": PASSWORD})
    assert client.get("/comptoir/droits/").status_code == 302
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_probes_answer_reads_only(client, db):
    assert client.post("/healthz").status_code == 405
    assert client.delete("/readyz").status_code == 405


# --- /readyz


def test_readyz_is_ready_with_a_database_and_migrations_applied(client, db, no_replica):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_is_cheap_once_migrations_were_seen_applied(
    client, db, no_replica, django_assert_max_num_queries
):
    assert client.get("/readyz").status_code == 200
    started = time.perf_counter()
    with django_assert_max_num_queries(20):  # SELECT 1 each; the migration plan is not asked again
        for _ in range(20):
            assert client.get("/readyz").status_code == 200
    per_call = (time.perf_counter() - started) / 20
    assert per_call < 0.02, f"{per_call * 1000:.1f} ms per /readyz"


def test_readyz_fails_when_the_database_does_not_answer(client, db, no_replica, monkeypatch):
    secret_dsn = "postgres://rempart:s3cret@db.internal:5432/rempart"

    def refuse(*args, **kwargs):
        raise OperationalError(f'connection to server at "db.internal" failed: {secret_dsn}')

    with monkeypatch.context() as patched:
        patched.setattr(connection, "cursor", refuse)
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "failed"},
        "failed": ["database"],
    }
    assert b"db.internal" not in response.content and b"s3cret" not in response.content


def test_readyz_fails_while_a_migration_is_pending_and_sees_it_applied(client, db, no_replica, monkeypatch):
    pending = [2]
    monkeypatch.setattr(health, "_pending_migrations", lambda: pending[0])
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["migrations"]
    assert response.json()["checks"]["migrations"] == "pending"
    # Asked again only after a while (every probe would otherwise load the migration graph).
    pending[0] = 0
    assert client.get("/readyz").status_code == 503
    monkeypatch.setattr(health, "PENDING_RECHECK_SECONDS", 0.0)
    health.migrations_state._pending_until = 0.0
    assert client.get("/readyz").status_code == 200


def test_the_migration_plan_is_really_read(db):
    """The real plan of the test database: every migration applied."""
    assert health._pending_migrations() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readyz_fails_when_a_configured_redis_does_not_answer(client, db, no_replica, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{_free_port()}/0"  # nobody listens there
    started = time.perf_counter()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failed"] == ["redis_cache"]
    assert str(settings.REDIS_URL).encode() not in response.content and b"127.0.0.1" not in response.content
    assert time.perf_counter() - started < 2.0


def test_readyz_asks_every_redis_in_use_once(settings):
    settings.REDIS_URL = "redis://cache:6379/0"
    settings.REMPART_SURVEILLANCE_STORE = "redis"
    settings.REMPART_SURVEILLANCE_REDIS_URL = "redis://counters:6379/0"
    settings.REMPART_TASKS_BACKEND = "rq"
    settings.REMPART_RQ_URL = "redis://cache:6379/0"  # the cache's server: asked once
    assert health.redis_urls() == {
        "redis_cache": "redis://cache:6379/0",
        "redis_surveillance": "redis://counters:6379/0",
    }
    settings.REMPART_SURVEILLANCE_STORE = "database"
    settings.REDIS_URL = None
    settings.REMPART_TASKS_BACKEND = "database"
    assert health.redis_urls() == {}


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_readyz_is_ready_with_a_real_redis(client, db, no_replica, settings, tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            response = client.get("/readyz")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.status_code == 200 and response.json()["checks"]["redis_cache"] == "ok"
        server.terminate()
        server.wait(timeout=10)
        assert client.get("/readyz").status_code == 503
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


# --- the replica: shown, never failing readiness


def test_a_lagging_replica_is_shown_and_skipped_not_a_failure(client, db, replica):
    replica.answer = {"alias": "replica", "lag_seconds": 42.5, "usable": False}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["replica"] == {
        "alias": "replica",
        "lag_seconds": 42.5,
        "usable": False,
        "state": "skipped",
    }


def test_a_current_replica_is_shown_in_use(client, db, replica):
    replica.answer = {"alias": "replica", "lag_seconds": 0.1, "usable": True}
    assert client.get("/readyz").json()["replica"]["state"] == "in_use"


def test_no_replica_configured_shows_none(client, db):
    """The real router, with no replica configured (the embedded default)."""
    assert db_routing.replica_status() is None
    assert "replica" not in client.get("/readyz").json()


def test_a_replica_that_cannot_be_asked_is_unknown_not_a_failure(client, db, monkeypatch):
    def broken():
        raise OperationalError("replica.internal: connection refused")

    monkeypatch.setattr(db_routing, "replica_status", broken)
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["replica"]["state"] == "unknown"
    assert b"replica.internal" not in response.content


def test_a_cluster_is_ready_when_one_seed_node_answers(settings, monkeypatch):
    asked = []

    class Node:
        def __init__(self, url):
            self.url = url

        def ping(self):
            asked.append(self.url)
            if "down" in self.url:
                raise ConnectionError("refused")
            return True

    monkeypatch.setattr(health, "_redis_client", Node)
    settings.REMPART_REDIS_CLUSTER = True
    assert health._redis("redis://down-1:7000,redis://up-2:7001") == "ok"
    assert asked == ["redis://down-1:7000", "redis://up-2:7001"]
    assert health._redis("redis://down-1:7000,redis://down-2:7001") == "failed"
    settings.REMPART_REDIS_CLUSTER = False  # a primary and its replicas: the primary must answer
    assert health._redis("redis://down-1:7000,redis://up-2:7001") == "failed"


def test_a_replica_required_by_configuration_fails_readiness_when_skipped(client, db, replica, settings):
    settings.REMPART_READYZ_REQUIRE_REPLICA = True
    replica.answer = {"alias": "replica", "lag_seconds": 42.5, "usable": False}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["replica"] and response.json()["checks"]["replica"] == "skipped"
    assert response.json()["replica"]["lag_seconds"] == 42.5
    replica.answer = {"alias": "replica", "lag_seconds": 0.2, "usable": True}
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["replica"] == "ok"
    replica.answer = None  # no replica configured: nothing to require
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_a_required_replica_that_cannot_be_asked_fails_readiness(client, db, settings, monkeypatch):
    def broken():
        raise OperationalError("replica.internal: connection refused")

    settings.REMPART_READYZ_REQUIRE_REPLICA = True
    monkeypatch.setattr(db_routing, "replica_status", broken)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["replica"] == "unknown"
    assert b"replica.internal" not in response.content


def test_readyz_carries_no_version_and_no_secret(client, db, replica, settings):
    """Only the documented keys: a status, the checks by name, the replica's state."""
    replica.answer = {"alias": "replica", "lag_seconds": 1.0, "usable": True, "dsn": "postgres://x:pw@h/db"}
    body = client.get("/readyz").json()
    assert set(body) == {"status", "checks", "replica"}
    assert set(body["replica"]) == {"alias", "lag_seconds", "usable", "state"}
    assert "pw@" not in json.dumps(body) and "version" not in json.dumps(body).lower()
