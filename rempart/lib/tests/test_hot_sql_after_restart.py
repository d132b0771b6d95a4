"""A persistent connection broken by a PostgreSQL restart is replaced before a hot-path statement uses it.

Found by the soak test (bench/soak.py): after ``pg_ctl restart`` each gunicorn thread's persistent connection failed
the first token check that met it ("terminating connection due to administrator command", a 503), seconds or a
minute after the database was back, because ``rempart.lib.hot_sql`` uses the driver's connection directly and so
skipped the per-request health check Django's own cursors make (``CONN_HEALTH_CHECKS``, on with PostgreSQL).
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


def test_a_hot_statement_after_a_restart_gets_a_fresh_connection(postgresql):
    assert hot_sql.run("SELECT 1", fetch=True) == [(1,)]
    break_the_connection_as_a_restart_does()
    assert hot_sql.run("SELECT 2", fetch=True) == [(2,)]


def test_without_the_health_check_the_same_statement_fails(postgresql, monkeypatch):
    """The check is what saves the statement: without it the broken connection is used and fails."""
    monkeypatch.setattr(connection, "close_if_health_check_failed", lambda: None)
    hot_sql.run("SELECT 1", fetch=True)
    break_the_connection_as_a_restart_does()
    with pytest.raises(OperationalError):
        hot_sql.run("SELECT 2", fetch=True)
    connection.close()
