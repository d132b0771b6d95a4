"""Readiness for the load balancer: may this app server be sent requests?

Ready when the database answers, every configured Redis answers, and no migration is left to apply. A read
replica is reported but does not make the server unready (unless ``REMPART_READYZ_REQUIRE_REPLICA``): a
lagging replica is skipped by the router (rempart.lib.db_routing) and the primary answers instead.

Cheap enough to be asked every second: one ``SELECT 1``, one ``PING`` per Redis with a short timeout, and
the migration plan computed once per process (loading the migration graph costs a tenth of a second) — once
it is "all applied" it stays so for the life of the process; a pending answer is recomputed after a while.
Answers name the failing checks only: no exception text, no host, no DSN.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from functools import cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

log = logging.getLogger("rempart.ops")
REDIS_TIMEOUT_SECONDS = 0.5
PENDING_RECHECK_SECONDS = 10.0


def readiness() -> tuple[bool, dict]:
    """(ready, body): the body names each check and its result, and shows the replica if there is one."""
    checks = {"database": _database()}
    if checks["database"] == "ok":
        checks["migrations"] = migrations_state()
    for name, url in redis_urls().items():
        checks[name] = _redis(url)
    replica = _replica()
    if replica is not None and getattr(settings, "REMPART_READYZ_REQUIRE_REPLICA", False):
        # Configured so (a deployment whose primary cannot take the replica's reads): a replica skipped
        # by the router is then a failed check like any other.
        checks["replica"] = "ok" if replica["usable"] else replica["state"]
    ready = all(value == "ok" for value in checks.values())
    body: dict = {"status": "ok" if ready else "unavailable", "checks": checks}
    if not ready:
        body["failed"] = sorted(name for name, value in checks.items() if value != "ok")
    if replica is not None:
        body["replica"] = replica
    return ready, body


def _database() -> str:
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("readyz: database check failed (%s)", type(exc).__name__)
        return "failed"
    return "ok"


# --- migrations


class _MigrationsState:
    """Once seen "all applied", kept for the process; "pending" is asked again after a few seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._applied = False
        self._pending_until = 0.0

    def __call__(self) -> str:
        if self._applied:
            return "ok"
        if time.monotonic() < self._pending_until:
            return "pending"
        with self._lock:
            if not self._applied:
                try:
                    pending = _pending_migrations()
                except DatabaseError as exc:
                    log.warning("readyz: migration check failed (%s)", type(exc).__name__)
                    return "failed"
                if pending:
                    self._pending_until = time.monotonic() + PENDING_RECHECK_SECONDS
                    return "pending"
                self._applied = True
        return "ok"

    def forget(self) -> None:
        self._applied, self._pending_until = False, 0.0


def _pending_migrations() -> int:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


migrations_state = _MigrationsState()


# --- Redis


def redis_urls() -> dict[str, str]:
    """Every Redis this process uses, by check name: the cache's, surveillance's when it keeps its counters
    there, the job queue's when jobs go through RQ (a server named twice is asked once)."""
    wanted = [("redis_cache", settings.REDIS_URL)]
    if settings.REMPART_SURVEILLANCE_STORE == "redis":
        wanted.append(("redis_surveillance", settings.REMPART_SURVEILLANCE_REDIS_URL))
    if getattr(settings, "REMPART_TASKS_BACKEND", "") == "rq":
        wanted.append(("redis_jobs", getattr(settings, "REMPART_RQ_URL", None)))
    urls: dict[str, str] = {}
    for name, url in wanted:
        if url and url not in urls.values():
            urls[name] = url
    return urls


@cache
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def _redis(location: str) -> str:
    """PING the server. A location may list several (``url,url``): on a Redis Cluster they are seed nodes,
    and one answering is enough (the client learns the rest from it); otherwise the first is the primary."""
    import redis

    servers = [url for url in re.split("[;,]", location) if url]
    if not getattr(settings, "REMPART_REDIS_CLUSTER", False):
        servers = servers[:1]
    failure = None
    for url in servers:
        try:
            _redis_client(url).ping()
        except (redis.RedisError, OSError, ValueError) as exc:
            failure = exc
        else:
            return "ok"
    log.warning("readyz: redis check failed (%s)", type(failure).__name__)
    return "failed"


# --- the replica (shown, never failing)


def _replica() -> dict | None:
    try:
        from rempart.lib.db_routing import replica_status
    except ImportError:
        return None
    try:
        status = replica_status()
    except Exception as exc:  # a replica that cannot be asked is a replica not used: say so, stay ready
        log.warning("readyz: replica status unavailable (%s)", type(exc).__name__)
        return {"usable": False, "lag_seconds": None, "state": "unknown"}
    if status is None:
        return None
    lag = status.get("lag_seconds")
    return {
        "alias": str(status.get("alias", "")),
        "lag_seconds": None if lag is None else round(float(lag), 3),
        "usable": bool(status.get("usable")),
        "state": "in_use" if status.get("usable") else "skipped",
    }
