"""Fixed statements for the hot paths (rights check, token check, ledger append).

The ORM builds and compiles SQL for every query, and PostgreSQL plans it again each time; at a few
hundred checks a second that is most of the cost (docs/benchmarks.md, "Rights check"). A
:class:`Statement` is written once, runs as a server-side prepared statement on PostgreSQL (parsed
and planned once per connection; Django turns psycopg's prepared statements off, rempart.settings turns them
back on for the statements that ask by name, unless ``REMPART_DB_PREPARED_STATEMENTS=0``) and as plain SQL on
SQLite, and converts its columns exactly as the
ORM would (the same field converters), so callers get dates, datetimes, JSON and bytes, not raw
driver values. Errors come out as Django's database exceptions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections
from django.db.models import Field


def field(model, name: str) -> Field:
    return model._meta.get_field(name)


class Statement:
    """One SQL text (``%s`` placeholders) whose result columns are the given model fields, in order (None: a
    computed column, passed as the driver gives it). ``read_only``: the statement writes nothing although it
    does not start with SELECT (``WITH … SELECT``), so it may serve as the request's health check (:func:`run`)."""

    def __init__(self, sql: str, columns: Sequence[Field | None] = (), *, read_only: bool = False) -> None:
        self.sql = sql
        self.columns = tuple(columns)
        self.read_only = read_only
        self._converters: dict[str, list] = {}

    def _converters_for(self, vendor: str) -> list:
        if vendor not in self._converters:
            converters = []
            for column in self.columns:
                if column is None:  # a computed column: the driver's value as it is
                    converters.append(((), None))
                    continue
                expression = column.get_col(column.model._meta.db_table)
                chain = connection.ops.get_db_converters(expression) + expression.get_db_converters(
                    connection
                )
                converters.append((chain, expression))
            self._converters[vendor] = converters
        return self._converters[vendor]

    def _convert(self, rows: list[tuple]) -> list[tuple]:
        converters = self._converters_for(connection.vendor)
        if not any(chain for chain, _expression in converters):
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for index, (chain, expression) in enumerate(converters):
                for converter in chain:
                    values[index] = converter(values[index], expression, connection)
            converted.append(tuple(values))
        return converted

    def rows(self, params: Sequence[Any] = ()) -> list[tuple]:
        return self._convert(run(self.sql, params, fetch=True, read_only=self.read_only or None))

    def first(self, params: Sequence[Any] = ()) -> tuple | None:
        rows = self.rows(params)
        return rows[0] if rows else None


def run(
    sql: str, params: Sequence[Any] = (), fetch: bool = False, read_only: bool | None = None
) -> list[tuple]:
    """Execute one statement on the default connection (prepared on PostgreSQL); rows if ``fetch``.

    ``read_only``: whether the statement only reads (default: it starts with SELECT)."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "postgresql":
        with wrapper.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else []
    # A persistent connection is checked once per request (CONN_HEALTH_CHECKS), so that one left broken by a
    # database restart is replaced rather than failing the request. Django checks with a SELECT 1 of its own:
    # a round trip per request. When the request's first statement is a read outside any transaction, the read
    # is the check: if it fails on a connection that no longer works, the connection is replaced and the read
    # sent again (nothing was written); a write, or a read inside a transaction, is checked Django's way first.
    by_reading = (
        wrapper.health_check_enabled
        and not wrapper.health_check_done
        and fetch
        and not wrapper.in_atomic_block
        and (read_only if read_only is not None else sql.lstrip()[:6].upper() == "SELECT")
    )
    if not by_reading:
        wrapper.close_if_health_check_failed()
    wrapper.ensure_connection()
    try:
        rows = _execute(wrapper, sql, params, fetch)
    except (OperationalError, InterfaceError):
        if not by_reading or wrapper.is_usable():
            raise
        wrapper.close()
        wrapper.ensure_connection()
        rows = _execute(wrapper, sql, params, fetch)
    if wrapper.health_check_enabled:
        wrapper.health_check_done = True
    return rows


def _execute(wrapper, sql: str, params: Sequence[Any], fetch: bool) -> list[tuple]:
    import psycopg

    with wrapper.wrap_database_errors, psycopg.Cursor(wrapper.connection) as cursor:
        if wrapper.execute_wrappers:  # observers (tests, instrumentation) see these statements too
            executor = functools.reduce(
                lambda inner, execute_wrapper: functools.partial(execute_wrapper, inner),
                wrapper.execute_wrappers,
                _prepared,
            )
            executor(sql, params, False, {"connection": wrapper, "cursor": cursor})
        else:
            cursor.execute(sql, params, prepare=True)
        return cursor.fetchall() if fetch else []


def _prepared(sql: str, params: Sequence[Any], _many: bool, context: dict) -> None:
    context["cursor"].execute(sql, params, prepare=True)


def row_preparer(model, names: Sequence[str]):
    """``prepare(instance)``: the listed fields of a model instance as the ORM would send them on insert, the
    fields looked up once (the hot paths' inserts: one call per row instead of one lookup per field)."""
    fields = [(name, field(model, name)) for name in names]

    def prepare(instance) -> list:
        wrapper = connections[DEFAULT_DB_ALIAS]
        return [column.get_db_prep_save(getattr(instance, name), wrapper) for name, column in fields]

    return prepare


def prepare_value(model, name: str, value: Any) -> Any:
    """A Python value as the ORM would send it for this field on insert (JSON, inet, bytes…)."""
    return field(model, name).get_db_prep_save(value, connection)
