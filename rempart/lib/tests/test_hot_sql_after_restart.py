"""A persistent connection broken by a PostgreSQL restart is replaced before a hot-path statement uses it.

Found by the soak test (bench/soak.py): after ``pg_ctl restart`` each gunicorn thread's persistent connection failed
the first token check that met it ("terminating connection due to administrator command", a 503), seconds or a
minute after the database was back, because ``rempart.lib.hot_sql`` uses the driver's connection directly and so
skipped the per-request health check Django's own cursors make (``CONN_HEALTH_CHECKS``, on with PostgreSQL).

Django checks with a SELECT 1 of its own, a round trip per request; a request whose first statement is a hot read
(the token check, the bare lookup) uses that read as the check instead (issue 19): it is sent again on a fresh
connection if the first one no longer works.
"""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.utils import OperationalError

from rempart.lib import hot_sql

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: persistent connections and their health checks")


def break_the_connection_as_a_restart_does() -> None:
    """The server ends this backend (what a fast shutdown does to every client), seen from another session."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    connection.close_if_unusable_or_obsolete()  # a new request starts (request_started): checked once more


def test_postgresql_connections_are_persistent_and_health_checked(postgresql):
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True


def test_a_hot_read_after_a_restart_gets_a_fresh_connection(postgresql, monkeypatch):
    assert hot_sql.run("SELECT 1", fetch=True) == [(1,)]
    break_the_connection_as_a_restart_does()
    assert hot_sql.run("SELECT 2", fetch=True) == [(2,)]
    assert connection.health_check_done  # the request's other statements are not checked again


def test_a_working_connection_costs_no_extra_round_trip(postgresql, monkeypatch):
    hot_sql.run("SELECT 1", fetch=True)
    connection.close_if_unusable_or_obsolete()  # a new request
    checks = []
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)
    assert hot_sql.run("SELECT 3", fetch=True) == [(3,)]
    assert checks == []  # the read itself was the check


def test_a_hot_write_after_a_restart_is_checked_before_it_is_sent(postgresql):
    """A write is never sent twice: the connection is checked Django's way (SELECT 1) before it."""
    hot_sql.run("SELECT 1", fetch=True)
    break_the_connection_as_a_restart_does()
    hot_sql.run("SET application_name = 'rempart-test'")
    assert hot_sql.run("SHOW application_name", fetch=True) == [("rempart-test",)]


def test_without_replacing_the_connection_the_same_read_fails(postgresql, monkeypatch):
    """Replacing the broken connection is what saves the read: a connection taken for usable fails it."""
    hot_sql.run("SELECT 1", fetch=True)
    break_the_connection_as_a_restart_does()
    monkeypatch.setattr(connection, "is_usable", lambda: True)
    with pytest.raises(OperationalError):
        hot_sql.run("SELECT 2", fetch=True)
    connection.close()
