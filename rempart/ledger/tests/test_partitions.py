"""PostgreSQL: the ledger is partitioned by month; the CIDR lookup works on both databases."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.ledger.partitions import ensure_partitions, partition_name

pg_only = pytest.mark.skipif("connection.vendor != 'postgresql'")


def _append(when: dt.datetime, ip: str = "198.51.100.7"):
    with transaction.atomic():
        return chain.append(channel="api", purpose="rights_check", organisation_id=1, outcome="no_match",
                            domain="OPTI", fields=[], ip_address=ip, created_at=when)  # fmt: skip


def _partition_of(row) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM ledger_disclosure WHERE id = %s", [row.pk])
        return cursor.fetchone()[0]


@pg_only
def test_rows_land_in_their_month_and_old_months_can_be_added(db):
    now = dt.datetime.now(dt.UTC)
    assert _partition_of(_append(now)) == partition_name("ledger_disclosure", now.date().replace(day=1))
    old = dt.datetime(2019, 3, 15, tzinfo=dt.UTC)
    created, skipped = ensure_partitions(since=old.date(), months_ahead=1)
    assert "ledger_disclosure_y2019m03" in created and not skipped
    assert _partition_of(_append(old)) == "ledger_disclosure_y2019m03"
    assert chain.verify().ok


@pg_only
def test_a_month_with_rows_in_the_default_partition_is_reported_not_broken(db, capsys):
    ancient = dt.datetime(2011, 6, 1, tzinfo=dt.UTC)  # no partition: the default one takes it
    assert _partition_of(_append(ancient)) == "ledger_disclosure_default"
    created, skipped = ensure_partitions(since=ancient.date(), months_ahead=1, until=ancient.date())
    assert skipped == ["ledger_disclosure_y2011m06"] and "ledger_disclosure_y2011m07" in created
    call_command("ledger", "partitions", "--months-ahead", "1")
    assert "ledger_disclosure_default" in capsys.readouterr().out


@pg_only
def test_updates_are_refused_on_every_partition(db):
    from django.db import DatabaseError

    row = _append(dt.datetime.now(dt.UTC))
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {_partition_of(row)} SET outcome = 'covered' WHERE id = %s", [row.pk])  # noqa: S608


def test_addresses_are_found_by_network(db):
    now = dt.datetime.now(dt.UTC)
    for ip in ("198.51.100.7", "198.51.101.9", "2001:db8::5", "203.0.113.1"):
        _append(now, ip)
    assert Disclosure.objects.filter(ip_address__within="198.51.100.0/23").count() == 2
    assert Disclosure.objects.filter(ip_address__within="2001:db8::/32").count() == 1
    assert Disclosure.objects.filter(ip_address__within="203.0.113.1").count() == 1
    assert Disclosure.objects.filter(ip_address__within="10.0.0.0/8").count() == 0
