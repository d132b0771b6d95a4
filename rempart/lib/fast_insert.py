"""Many new rows of one model at once: COPY on PostgreSQL, the ORM's bulk insert on SQLite.

A lot of invoices writes thousands of claims, lines and ledger rows per second. ``bulk_create`` builds
one INSERT with a placeholder per value and, with Django's client-side binding on psycopg 3, quotes every
value in Python: at that rate most of the time goes there (docs/benchmarks.md, "Claims"). COPY sends the
rows as they are; the server checks the same constraints and fires the same triggers. Ids are taken from
the table's sequence first (one statement), so callers get them as with ``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import JSONField, Model


def _sequence_ids(model, count: int) -> list[int]:
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def insert(objs: Sequence[Model]) -> None:
    """Insert new model instances (all of one model), setting their primary keys. Inside a transaction."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    missing = [obj for obj in objs if obj.pk is None]
    if missing:
        for obj, pk in zip(missing, _sequence_ids(model, len(missing)), strict=True):
            obj.pk = pk
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    copy_sql = f"COPY {table} ({columns}) FROM STDIN"  # noqa: S608 - names from the model
    # Errors as Django's (IntegrityError…), as the ORM would raise them.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        for obj in objs:
            row = []
            for f in fields:
                value = f.pre_save(obj, True)  # auto_now_add and the like, as the ORM does
                if f.attname in json_fields:
                    value = f.get_db_prep_save(value, connection)
                row.append(value)
            copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
