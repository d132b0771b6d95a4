"""Monthly partitions of the disclosure ledger on PostgreSQL (one table per month of ``created_at``).

Why: scopes select by actor or address *and* a time window; with monthly partitions the window
prunes whole months, each month's indexes stay small enough to be cached, a BRIN index answers pure
time windows, and a retention policy can archive a month by detaching its partition (done by the
database owner, never by the application). A DEFAULT partition takes any row no monthly partition
covers, so an append never fails for want of a partition; ``ensure_partitions`` runs after every
``migrate`` and from ``rempart ledger partitions``, creating the months ahead.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection as default_connection

MONTHS_AHEAD = 12


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def partition_name(table: str, month: dt.date) -> str:
    return f"{table}_y{month.year}m{month.month:02d}"


def ensure_partitions(
    connection=None,
    *,
    table: str = "ledger_disclosure",
    name_prefix: str = "ledger_disclosure",
    since: dt.datetime | dt.date | None = None,
    until: dt.date | None = None,
    months_ahead: int = MONTHS_AHEAD,
) -> tuple[list[str], list[str]]:
    """Create the missing monthly partitions from ``since`` (default: this month) to ``months_ahead`` ahead.

    Partitions are named ``{name_prefix}_yYYYYmMM`` (the migration builds the table under another name).
    Returns (created, skipped): a month is skipped when rows for it already sit in the default partition
    (they stay readable there; moving them is a maintenance step documented in the runbook).
    """
    connection = connection or default_connection
    if connection.vendor != "postgresql":
        return [], []
    today = dt.datetime.now(dt.UTC).date()
    first = _month_start(since.date() if isinstance(since, dt.datetime) else (since or today))
    first = min(first, _month_start(today))
    last = until or _month_start(today)
    for _ in range(months_ahead):
        last = _next_month(last)
    created, skipped = [], []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [table],
        )
        existing = {name for (name,) in cursor.fetchall()}
        month = first
        while month <= last:
            name = partition_name(name_prefix, month)
            if name not in existing:
                upper = _next_month(month)
                cursor.execute(
                    f"SELECT EXISTS (SELECT 1 FROM {name_prefix}_default WHERE created_at >= %s AND created_at < %s)",  # noqa: S608
                    [month, upper],
                )
                if cursor.fetchone()[0]:
                    skipped.append(name)
                else:
                    cursor.execute(
                        f"CREATE TABLE {name} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')"
                    )
                    created.append(name)
            month = _next_month(month)
    return created, skipped


def missing_months(months: int, connection=None, table: str = "ledger_disclosure") -> list[str]:
    """The partitions of this month and the ``months - 1`` next that do not exist (``YYYY-MM``)."""
    connection = connection or default_connection
    if connection.vendor != "postgresql":
        return []
    existing = {name for name, _rows, _size in partition_sizes(connection, table)}
    month, missing = _month_start(dt.datetime.now(dt.UTC).date()), []
    for _ in range(months):
        if partition_name(table, month) not in existing:
            missing.append(f"{month:%Y-%m}")
        month = _next_month(month)
    return missing


def partition_sizes(connection=None, table: str = "ledger_disclosure") -> list[tuple[str, int, int]]:
    """(partition, estimated rows, bytes incl. indexes) for each partition, oldest first."""
    connection = connection or default_connection
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = %s ORDER BY c.relname",
            [table],
        )
        return [(name, max(rows, 0), size) for name, rows, size in cursor.fetchall()]
