"""Reads that may lag go to a PostgreSQL streaming replica; everything else stays on the primary.

A replica serves only what a view declares may be a few seconds old (``@reads_may_lag`` on a statements
list, a dashboard, a history page, a scope preview). The gate, surveillance decisions, imports and anything
that writes never declare it, so they read what the primary holds now. Inside a declared scope the primary
is still used when the read is inside a transaction on the primary, when the request or scope has already
written (read-your-writes), for identity and membership tables (a removed member must not keep access for
the replica's lag), and whenever the replica is down or too far behind: a lagging replica costs load on the
primary, never an error page.

Installed by settings when ``REMPART_REPLICA_URL`` is set (alias ``replica``); without it nothing here runs.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

REPLICA_ALIAS = "replica"

# Identity, sessions, memberships and jobs are always read on the primary: access decisions and job states
# must be current, whatever page asks.
PRIMARY_ONLY_APPS = frozenset(
    {
        "auth",
        "contenttypes",
        "sessions",
        "admin",
        "account",
        "mfa",
        "usersessions",
        "accounts",
        "jobs",
        "django_tasks_database",
    }
)

logger = logging.getLogger("rempart.db_routing")


@dataclass
class _Scope:
    """One ``reads_may_lag`` scope: whether it wrote, whether it used the replica, whether it is overridden."""

    wrote: bool = False
    used_replica: bool = False
    current: bool = False
    parent: _Scope | None = field(default=None, repr=False)


_scope: ContextVar[_Scope | None] = ContextVar("rempart_reads_may_lag", default=None)


@dataclass
class _Request:
    wrote: bool = False


# The request being served, if any: a write anywhere in it (middleware included) keeps its later reads on the primary.
_request: ContextVar[_Request | None] = ContextVar("rempart_request_writes", default=None)


def _request_started(**kwargs) -> None:
    _request.set(_Request())


def _request_finished(**kwargs) -> None:
    _request.set(None)


request_started.connect(_request_started, dispatch_uid="rempart_db_routing_request_started")
request_finished.connect(_request_finished, dispatch_uid="rempart_db_routing_request_finished")


def _wrote_in_request() -> bool:
    request = _request.get()
    return request is not None and request.wrote


@contextmanager
def _may_lag_scope(*, current: bool = False) -> Iterator[_Scope]:
    parent = _scope.get()
    scope = _Scope(
        wrote=_wrote_in_request() or bool(parent and parent.wrote),
        current=current or bool(parent and parent.current),
        parent=parent,
    )
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        if parent is not None:
            parent.wrote = parent.wrote or scope.wrote
            parent.used_replica = parent.used_replica or scope.used_replica


def reads_may_lag(func: Callable | None = None):
    """Let the reads of a view (decorator) or block (``with reads_may_lag():``) be served by the replica.

    As a decorator, a view that fails with a database error after reading from the replica (the replica went
    away between two health checks) is marked unusable and run once more on the primary: only put it on views
    that do not write, which is what "may lag" means anyway.
    """
    if func is None:
        return _may_lag_scope()
    if inspect.iscoroutinefunction(func):
        raise TypeError("reads_may_lag decorates synchronous views only")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _may_lag_scope() as scope:
            try:
                return func(*args, **kwargs)
            except (OperationalError, InterfaceError):
                if not scope.used_replica or scope.wrote:
                    raise
                _mark_unusable("query failed")
        with reads_current():
            return func(*args, **kwargs)

    return wrapper


def reads_current():
    """Force the primary inside a may-lag scope (for code that decides on what it reads, e.g. the gate)."""
    return _may_lag_scope(current=True)


@dataclass(frozen=True)
class _Health:
    checked_at: float
    lag_seconds: float | None
    usable: bool


_health: _Health | None = None
_health_lock = threading.Lock()

_LAG_SQL = """
SELECT pg_is_in_recovery(),
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver),
       pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(),
       EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
"""


def measure_lag(alias: str = REPLICA_ALIAS) -> float | None:
    """Seconds the replica is behind the primary (0 when caught up), None when unknown; raises if unreachable.

    ``now() - pg_last_xact_replay_timestamp()`` alone grows while the primary is idle, so a standby whose WAL
    receiver runs and has replayed all it received counts as caught up. A server not in recovery is a primary
    (the alias points at one, or it was promoted): it is current by definition.
    """
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT 1")
            return 0.0
        cursor.execute(_LAG_SQL)
        in_recovery, receiving, caught_up, replay_lag = cursor.fetchone()
    if not in_recovery:
        return 0.0
    if receiving and caught_up:
        return 0.0
    if replay_lag is None:
        return None
    return max(0.0, float(replay_lag))


def _mark_unusable(reason: str) -> None:
    global _health
    _health = _Health(time.monotonic(), None, False)
    logger.warning("read replica skipped: %s", reason)
    try:
        connections[REPLICA_ALIAS].close()
    except Exception as exc:  # noqa: BLE001 - closing a broken connection may fail too; the next check reconnects
        logger.debug("closing the replica connection failed: %s", type(exc).__name__)


def _check() -> _Health:
    global _health
    try:
        lag = measure_lag()
    except Exception as exc:  # noqa: BLE001 - any failure of the probe means "do not use the replica"
        _mark_unusable(f"unreachable ({type(exc).__name__})")
        return _health
    max_lag = float(getattr(settings, "REMPART_REPLICA_MAX_LAG_SECONDS", 30))
    usable = lag is not None and lag <= max_lag
    if not usable and (_health is None or _health.usable):
        logger.warning(
            "read replica skipped: lag %s s over %s s", "unknown" if lag is None else f"{lag:.1f}", max_lag
        )
    _health = _Health(time.monotonic(), lag, usable)
    return _health


def replica_health() -> _Health | None:
    """The replica's last known state, checked again once ``REMPART_REPLICA_CHECK_SECONDS`` have passed."""
    if REPLICA_ALIAS not in settings.DATABASES:
        return None
    every = float(getattr(settings, "REMPART_REPLICA_CHECK_SECONDS", 5))
    known = _health
    if known is not None and time.monotonic() - known.checked_at < every:
        return known
    # One thread probes; the others keep the previous answer rather than queue behind a slow connect.
    if not _health_lock.acquire(blocking=known is None):
        return known
    try:
        known = _health
        if known is not None and time.monotonic() - known.checked_at < every:
            return known
        return _check()
    finally:
        _health_lock.release()


def reset_replica_health() -> None:
    """Forget the cached state (tests, and after a failover): the next may-lag read probes again."""
    global _health
    _health = None


def replica_status() -> dict | None:
    """For /readyz: None without a replica, else its alias, lag in seconds (None if unknown) and usability."""
    health = replica_health()
    if health is None:
        return None
    lag = None if health.lag_seconds is None else round(health.lag_seconds, 3)
    return {"alias": REPLICA_ALIAS, "lag_seconds": lag, "usable": health.usable}


def _reads_from_replica(model) -> bool:
    scope = _scope.get()
    if scope is None or scope.current or scope.wrote or _wrote_in_request():
        return False
    if model is not None and model._meta.app_label in PRIMARY_ONLY_APPS:
        return False
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return False
    health = replica_health()
    return health is not None and health.usable


class ReplicaRouter:
    """Django database router: the replica for declared may-lag reads, the primary for all the rest."""

    def db_for_read(self, model, **hints) -> str:
        # Always an explicit alias: an object read from the replica must not pull later reads (or its save) there.
        if _reads_from_replica(model):
            _scope.get().used_replica = True
            return REPLICA_ALIAS
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        if model is not None and model._meta.app_label in PRIMARY_ONLY_APPS:
            return DEFAULT_DB_ALIAS  # sessions, last-seen marks: read on the primary anyway, nothing to pin
        scope = _scope.get()
        if scope is not None:
            scope.wrote = True
        request = _request.get()
        if request is not None:
            request.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        aliases = {DEFAULT_DB_ALIAS, REPLICA_ALIAS}
        if obj1._state.db in aliases and obj2._state.db in aliases:
            return True
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool | None:
        return False if db == REPLICA_ALIAS else None
