"""The router against a real PostgreSQL streaming replica (CI starts one with scripts/pg_local.py).

Runs only when REMPART_TEST_REPLICA_URL is set, with DATABASE_URL on the primary and REMPART_REPLICA_URL on
the replica: the test database is created on the primary and reaches the replica by physical replication
(the replica alias mirrors default's test database name).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections

from rempart.lib.db_routing import REPLICA_ALIAS, reads_may_lag, replica_status, reset_replica_health
from rempart.registry.models import Insurer

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not os.environ.get("REMPART_TEST_REPLICA_URL"), reason="REMPART_TEST_REPLICA_URL not set"
    ),
    pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA_ALIAS]),
]

ROOT = Path(__file__).resolve().parents[3]
WAIT_SECONDS = 20


@functools.cache
def _pg_local():
    """scripts/pg_local.py, which is not a package module (CI runs it before any virtualenv exists)."""
    spec = importlib.util.spec_from_file_location("pg_local", ROOT / "scripts" / "pg_local.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("pg_local", module)
    spec.loader.exec_module(module)
    return module


def _scalar(alias: str, sql: str):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def _eventually(condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} within {WAIT_SECONDS} s")


@pytest.fixture(autouse=True)
def replica(settings):
    """The replica alias, probed afresh for every read; replay resumed and the replica running afterwards."""
    assert REPLICA_ALIAS in connections.settings, "set REMPART_REPLICA_URL to the replica too"
    settings.REMPART_REPLICA_CHECK_SECONDS = 0
    reset_replica_health()
    replica_settings = connections[REPLICA_ALIAS].settings_dict
    assert replica_settings["NAME"] == connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]
    assert _scalar(REPLICA_ALIAS, "SELECT pg_is_in_recovery()") is True
    data_dir = _scalar(REPLICA_ALIAS, "SELECT current_setting('data_directory')")
    yield data_dir
    pg_local = _pg_local()
    if pg_local.status(data_dir) is None:
        primary_port = int(connections[DEFAULT_DB_ALIAS].settings_dict["PORT"])
        pg_local.start(data_dir, int(replica_settings["PORT"]), replica_of=primary_port)
    connections[REPLICA_ALIAS].close()
    if _scalar(REPLICA_ALIAS, "SELECT pg_is_wal_replay_paused()"):
        _scalar(REPLICA_ALIAS, "SELECT pg_wal_replay_resume()::text")
    connections[REPLICA_ALIAS].close()
    reset_replica_health()


def _new_insurer(amc: str) -> Insurer:
    return Insurer.objects.create(amc_number=amc, name=f"Mutuelle {amc}", kind="mutuelle")


def _on_replica(pk: int) -> bool:
    return Insurer.objects.using(REPLICA_ALIAS).filter(pk=pk).exists()


def test_a_write_on_the_primary_reaches_the_replica():
    row = _new_insurer("100000001")
    _eventually(lambda: _on_replica(row.pk), "the row replicated")
    assert Insurer.objects.using(REPLICA_ALIAS).get(pk=row.pk).name == "Mutuelle 100000001"


def test_a_may_lag_read_is_served_by_the_standby_and_others_by_the_primary():
    row = _new_insurer("100000002")
    _eventually(lambda: _on_replica(row.pk), "the row replicated")
    with reads_may_lag():
        served = Insurer.objects.get(pk=row.pk)
        assert served._state.db == REPLICA_ALIAS
    # The connection that served it is a server in recovery: the standby, not the primary.
    assert _scalar(served._state.db, "SELECT pg_is_in_recovery()") is True
    outside = Insurer.objects.get(pk=row.pk)
    assert outside._state.db == DEFAULT_DB_ALIAS
    assert _scalar(outside._state.db, "SELECT pg_is_in_recovery()") is False
    status = replica_status()
    assert status["usable"] is True and 0 <= status["lag_seconds"] < 30


def test_a_stopped_replica_is_skipped_without_an_error(replica):
    row = _new_insurer("100000003")
    _eventually(lambda: _on_replica(row.pk), "the row replicated")
    assert _pg_local().stop(replica) is True
    with reads_may_lag():
        served = Insurer.objects.get(pk=row.pk)
    assert served._state.db == DEFAULT_DB_ALIAS and served.name == "Mutuelle 100000003"
    assert replica_status() == {"alias": "replica", "lag_seconds": None, "usable": False}


def test_a_view_whose_replica_goes_away_between_checks_is_served_by_the_primary(replica, settings):
    row = _new_insurer("100000004")
    _eventually(lambda: _on_replica(row.pk), "the row replicated")
    settings.REMPART_REPLICA_CHECK_SECONDS = 600  # the last check said "usable" and is not repeated
    assert replica_status()["usable"] is True
    Insurer.objects.using(REPLICA_ALIAS).filter(pk=row.pk).exists()  # an open connection to the standby
    assert _pg_local().stop(replica) is True

    @reads_may_lag
    def page(pk: int) -> tuple[str, str]:
        served = Insurer.objects.get(pk=pk)
        return served._state.db, served.name

    assert page(row.pk) == (DEFAULT_DB_ALIAS, "Mutuelle 100000004")
    assert replica_status()["usable"] is False


def test_a_paused_replica_beyond_the_max_lag_is_reported_and_skipped(settings):
    settings.REMPART_REPLICA_MAX_LAG_SECONDS = 1
    _new_insurer("100000005")
    _eventually(lambda: replica_status()["usable"], "the replica caught up")
    _scalar(REPLICA_ALIAS, "SELECT pg_wal_replay_pause()::text")
    _eventually(
        lambda: _scalar(REPLICA_ALIAS, "SELECT pg_get_wal_replay_pause_state()") == "paused", "paused"
    )
    row = _new_insurer("100000006")  # replicated, not replayed
    _eventually(lambda: (replica_status()["lag_seconds"] or 0) > 1, "the lag passed 1 s")
    status = replica_status()
    assert status["usable"] is False and status["lag_seconds"] > 1
    assert not _on_replica(row.pk)
    with reads_may_lag():
        served = Insurer.objects.get(pk=row.pk)  # would be missing on the replica
    assert served._state.db == DEFAULT_DB_ALIAS
    _scalar(REPLICA_ALIAS, "SELECT pg_wal_replay_resume()::text")
    _eventually(lambda: replica_status()["usable"], "the replica usable again once replay resumed")
