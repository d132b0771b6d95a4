"""Database settings for the billing batch transactions (a month of statements, its detail files).

Preparing a month joins and sorts millions of rows (postings, transactions, payment items, claim lines). With
PostgreSQL's default ``work_mem`` (4 MB) each hash join of that size is cut into dozens of batches spilled to
disk; ``REMPART_BILLING_WORK_MEM`` (default 256 MB) is set for these transactions alone (``SET LOCAL``), so the
web's many small transactions keep the server's default. docs/benchmarks.md, "Billing", measures the effect.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import connection

_SIZE = re.compile(r"\d{1,7}(kB|MB|GB)")


def batch_memory() -> None:
    """Inside the batch's transaction: give its sorts and hash joins ``REMPART_BILLING_WORK_MEM`` (PostgreSQL)."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return
    size = str(getattr(settings, "REMPART_BILLING_WORK_MEM", "") or "")
    if not _SIZE.fullmatch(size):
        raise ValueError("REMPART_BILLING_WORK_MEM must look like 256MB (kB, MB or GB)")
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{size}'")  # checked above: digits and a unit


# Past this many rows, a batch reads most of the month: hash joins over whole tables, not index look-ups.
LARGE_BATCH = 100_000


def fresh_statistics(table: str) -> None:
    """PostgreSQL: ANALYZE a table the batch has just filled (its own rows count), so the next statements of the
    same batch, and the detail files after it, are planned for millions of items rather than for none."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def whole_table_plan(rows: int) -> None:
    """PostgreSQL, inside the batch's transaction: for a batch of more than :data:`LARGE_BATCH` rows, no nested
    loops (a month's detail files are one scan of each table; a million index look-ups at random was 20× slower,
    docs/benchmarks.md "Billing"). A small batch (one statement's first download) keeps the usual plan."""
    if connection.vendor == "postgresql" and connection.in_atomic_block and rows > LARGE_BATCH:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_nestloop = off")
