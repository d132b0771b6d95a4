"""The read-replica router on the ordinary engines: a fake replica alias on a second connection to the test DB.

The fake replica reads the same database through its own connection, so which connection served a query
proves where the router sent it; tests are transactional because a second connection sees committed data only.
The real streaming replica is exercised in test_replica_real.py.
"""

from __future__ import annotations

import copy
import threading

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.test.utils import CaptureQueriesContext

from rempart.accounts.models import User
from rempart.lib import db_routing
from rempart.lib.db_routing import (
    REPLICA_ALIAS,
    reads_current,
    reads_may_lag,
    replica_status,
    reset_replica_health,
)
from rempart.registry.models import Insurer

ROUTER = "rempart.lib.db_routing.ReplicaRouter"
# "replica" exists only while a fixture adds it; listing it lets the test use its connection.
pytestmark = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA_ALIAS])


@pytest.fixture(scope="module", autouse=True)
def fake_replica(django_db_setup):
    """A replica alias on a second connection to the test database, for this module's tests.

    Module-scoped so it exists before each test's database helper validates the aliases the test may use.
    """
    if REPLICA_ALIAS in connections.settings:
        pytest.skip("a real replica is configured (REMPART_REPLICA_URL); see test_replica_real.py")
    conf = copy.deepcopy(connections.settings[DEFAULT_DB_ALIAS])  # NAME is already the test database
    conf["TEST"] = {**conf["TEST"], "MIRROR": DEFAULT_DB_ALIAS}
    connections.settings[REPLICA_ALIAS] = conf
    yield conf
    _forget_connection()
    del connections.settings[REPLICA_ALIAS]
    reset_replica_health()


def _forget_connection() -> None:
    connections[REPLICA_ALIAS].close()
    del connections[REPLICA_ALIAS]


@pytest.fixture(autouse=True)
def router(settings, fake_replica):
    settings.DATABASE_ROUTERS = [ROUTER]
    settings.REMPART_REPLICA_CHECK_SECONDS = 5
    settings.REMPART_REPLICA_MAX_LAG_SECONDS = 30
    reset_replica_health()
    yield
    reset_replica_health()


@pytest.fixture
def dead_replica(fake_replica):
    """The replica alias made unreachable (a closed port on PostgreSQL, an impossible file on SQLite)."""
    saved = copy.deepcopy(fake_replica)
    _forget_connection()
    if fake_replica["ENGINE"].endswith("sqlite3"):
        fake_replica["NAME"] = "/nonexistent-rempart-dir/replica.sqlite3"
    else:
        fake_replica.update(
            HOST="127.0.0.1", PORT="9", OPTIONS={**fake_replica["OPTIONS"], "connect_timeout": 2}
        )
    yield
    _forget_connection()
    fake_replica.clear()
    fake_replica.update(saved)


@pytest.fixture
def insurer_row() -> Insurer:
    return Insurer.objects.create(amc_number="987654321", name="Mutuelle Réplique", kind="mutuelle")


def _served_by(query) -> set[str]:
    """Run query(); the aliases whose connection executed SQL for it."""
    with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_default:
        with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica:
            query()
    return {alias for alias, ctx in ((DEFAULT_DB_ALIAS, on_default), (REPLICA_ALIAS, on_replica)) if ctx}


def _read_insurer(pk: int):
    return lambda: Insurer.objects.get(pk=pk)


# Where reads go.


def test_a_may_lag_read_is_served_by_the_replica(fake_replica, insurer_row):
    with reads_may_lag():
        assert _served_by(_read_insurer(insurer_row.pk)) == {REPLICA_ALIAS}
        assert Insurer.objects.get(pk=insurer_row.pk)._state.db == REPLICA_ALIAS
    assert replica_status() == {"alias": "replica", "lag_seconds": 0.0, "usable": True}


def test_reads_outside_the_scope_stay_on_the_primary(fake_replica, insurer_row):
    assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}
    with reads_may_lag():
        pass
    assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}


def test_after_a_write_the_scope_reads_its_writes_on_the_primary(fake_replica, insurer_row):
    with reads_may_lag():
        assert _served_by(_read_insurer(insurer_row.pk)) == {REPLICA_ALIAS}
        created = Insurer.objects.create(amc_number="111111111", name="Nouvelle", kind="mutuelle")
        assert created._state.db == DEFAULT_DB_ALIAS
        assert _served_by(_read_insurer(created.pk)) == {DEFAULT_DB_ALIAS}


def test_an_object_read_from_the_replica_is_saved_on_the_primary(fake_replica, insurer_row):
    with reads_may_lag():
        row = Insurer.objects.get(pk=insurer_row.pk)
    row.name = "Renommée"
    assert _served_by(row.save) == {DEFAULT_DB_ALIAS}
    assert Insurer.objects.get(pk=row.pk).name == "Renommée"
    # …and later reads through it (refresh, relations) go to the primary, not where it came from.
    assert _served_by(row.refresh_from_db) == {DEFAULT_DB_ALIAS}


def test_reads_inside_a_transaction_on_the_primary_stay_there(fake_replica, insurer_row):
    with reads_may_lag(), transaction.atomic():
        assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}


def test_identity_and_membership_tables_are_always_read_on_the_primary(fake_replica, insurer_row):
    User.objects.create_user("someone@example.test", "a long enough password", full_name="Someone")
    with reads_may_lag():
        assert _served_by(lambda: list(User.objects.all())) == {DEFAULT_DB_ALIAS}
        assert _served_by(_read_insurer(insurer_row.pk)) == {REPLICA_ALIAS}


def test_reads_current_forces_the_primary_inside_a_may_lag_scope(fake_replica, insurer_row):
    with reads_may_lag():
        with reads_current():
            assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}
            with reads_may_lag():  # nesting cannot undo it
                assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}
        assert _served_by(_read_insurer(insurer_row.pk)) == {REPLICA_ALIAS}


def test_a_request_that_already_wrote_reads_on_the_primary(fake_replica, insurer_row):
    from django.core.signals import request_finished, request_started

    request_started.send(sender=None)
    try:
        Insurer.objects.filter(pk=insurer_row.pk).update(name="Écrit avant la vue")  # e.g. by a middleware
        with reads_may_lag():
            assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}
    finally:
        request_finished.send(sender=None)
    request_started.send(sender=None)
    try:
        with reads_may_lag():
            assert _served_by(_read_insurer(insurer_row.pk)) == {REPLICA_ALIAS}
    finally:
        request_finished.send(sender=None)


def test_the_scope_does_not_leak_into_other_threads(fake_replica, insurer_row):
    seen: list[set[str]] = []

    def other_thread():
        try:
            seen.append(_served_by(_read_insurer(insurer_row.pk)))
        finally:
            connections.close_all()

    with reads_may_lag():
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(timeout=30)
    assert seen == [{DEFAULT_DB_ALIAS}]


# A replica that is down or behind is skipped, never an error.


def test_an_unreachable_replica_is_skipped_without_an_error(dead_replica, insurer_row):
    with reads_may_lag():
        assert Insurer.objects.get(pk=insurer_row.pk).name == "Mutuelle Réplique"
        assert Insurer.objects.get(pk=insurer_row.pk)._state.db == DEFAULT_DB_ALIAS
    assert replica_status() == {"alias": "replica", "lag_seconds": None, "usable": False}


@pytest.mark.parametrize("lag", [31.0, None])
def test_a_replica_too_far_behind_or_of_unknown_lag_is_skipped(fake_replica, insurer_row, monkeypatch, lag):
    monkeypatch.setattr(db_routing, "measure_lag", lambda alias=REPLICA_ALIAS: lag)
    with reads_may_lag():
        assert _served_by(_read_insurer(insurer_row.pk)) == {DEFAULT_DB_ALIAS}
    assert replica_status() == {"alias": "replica", "lag_seconds": lag, "usable": False}


def test_lag_within_the_bound_is_usable(fake_replica, insurer_row, monkeypatch, settings):
    settings.REMPART_REPLICA_MAX_LAG_SECONDS = 2
    monkeypatch.setattr(db_routing, "measure_lag", lambda alias=REPLICA_ALIAS: 1.5)
    assert replica_status() == {"alias": "replica", "lag_seconds": 1.5, "usable": True}


def test_the_health_is_probed_once_per_check_period(fake_replica, insurer_row, monkeypatch, settings):
    probes: list[str] = []

    def counting(alias=REPLICA_ALIAS):
        probes.append(alias)
        return 0.0

    monkeypatch.setattr(db_routing, "measure_lag", counting)
    with reads_may_lag():
        for _ in range(5):
            Insurer.objects.get(pk=insurer_row.pk)
    replica_status()
    assert len(probes) == 1
    settings.REMPART_REPLICA_CHECK_SECONDS = 0
    replica_status()
    replica_status()
    assert len(probes) == 3


def test_measured_lag_of_a_server_not_in_recovery_is_zero(fake_replica):
    # The fake replica is the primary itself: current by definition (a promoted replica reads the same).
    assert db_routing.measure_lag() == 0.0


def test_a_view_whose_replica_read_fails_is_run_again_on_the_primary(fake_replica, insurer_row):
    calls: list[str] = []

    @reads_may_lag
    def page(pk):
        row = Insurer.objects.get(pk=pk)
        calls.append(row._state.db)
        if row._state.db == REPLICA_ALIAS:
            raise OperationalError("server closed the connection unexpectedly")
        return row.name

    assert page(insurer_row.pk) == "Mutuelle Réplique"
    assert calls == [REPLICA_ALIAS, DEFAULT_DB_ALIAS]
    assert replica_status()["usable"] is False


def test_a_failing_view_that_wrote_is_not_run_twice(fake_replica, insurer_row):
    calls: list[str] = []

    @reads_may_lag
    def page(pk):
        row = Insurer.objects.get(pk=pk)
        calls.append(row._state.db)
        Insurer.objects.filter(pk=pk).update(name="Deux fois ?")
        raise OperationalError("boom")

    with pytest.raises(OperationalError):
        page(insurer_row.pk)
    assert calls == [REPLICA_ALIAS]


def test_a_failure_without_a_replica_read_is_not_retried(fake_replica, insurer_row):
    calls: list[int] = []

    @reads_may_lag
    def page():
        calls.append(1)
        raise OperationalError("the primary is down")

    with pytest.raises(OperationalError):
        page()
    assert calls == [1]


# Pages declared "may lag" really read from the replica; pages that post do not.


def test_history_page_reads_from_the_replica_and_the_counter_check_does_not(client):
    from rempart.testing import build_cast, login

    cast = build_cast()
    login(client, cast.staff, cast.secrets[cast.staff.email])
    with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica:
        response = client.get("/comptoir/historique/")
    assert response.status_code == 200
    read_there = " ".join(q["sql"] for q in on_replica.captured_queries)
    # The page's rows came from the replica; who is logged in and their membership did not.
    assert "ledger_" in read_there
    assert "accounts_" not in read_there and "django_session" not in read_there
    with CaptureQueriesContext(connections[REPLICA_ALIAS]) as on_replica:
        response = client.post("/comptoir/droits/", {"domain": "OPTI"})
    assert response.status_code in (200, 302, 400)  # whatever it answers, it read nothing on the replica
    assert on_replica.captured_queries == []
