"""Whether an import run is still going: its process, on this host, or its heartbeat, from another.

An import killed (``kill -9``, an out-of-memory kill, a power cut, a web worker recycled mid-request) never
gets to write its outcome, and its ``ImportRun`` would say ``running`` forever. The run records which
process runs it (host, pid and a start token, so that a recycled pid is not taken for it) and, on
PostgreSQL, a heartbeat; the history shows a ``running`` run whose process is gone as ``interrupted``.
See docs/registry.md, section 5.
"""

from __future__ import annotations

import datetime as dt
import os
import threading

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from rempart.lib.processes import process_alive, process_token, this_host

__all__ = ["Heartbeat", "process_alive", "process_fields", "process_token", "still_running", "this_host"]


def still_running(run, now: dt.datetime | None = None) -> bool:
    """For a run recorded as ``running``: whether its process may still be at work.

    On this host the process itself is looked up. On another host (or for a run recorded before the
    process was noted) only time tells: the last heartbeat, or the start if there was none, must be
    younger than ``REMPART_IMPORT_STALE_SECONDS``.
    """
    if run.pid and run.host == this_host():
        return process_alive(run.pid, run.process_token)
    now = now or timezone.now()
    last_sign = run.heartbeat_at or run.started_at
    return last_sign is not None and now - last_sign < dt.timedelta(
        seconds=settings.REMPART_IMPORT_STALE_SECONDS
    )


def process_fields() -> dict:
    """The fields of a new run that name the process running it."""
    return {"host": this_host(), "pid": os.getpid(), "process_token": process_token()}


class Heartbeat:
    """Every ``REMPART_IMPORT_HEARTBEAT_SECONDS``, note in the run that its process is alive.

    PostgreSQL only: the beat is written from a thread of its own (its own connection, outside the
    import's transaction, so it is seen at once). On SQLite every process shares one host, where the
    process lookup is exact, and a second writer would wait on the import's write lock.
    """

    def __init__(self, run) -> None:
        self.run_pk = run.pk
        self._runs = type(run).objects.filter(pk=run.pk, status=run.Status.RUNNING)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if connection.vendor == "postgresql" and settings.REMPART_IMPORT_HEARTBEAT_SECONDS > 0:
            self._thread = threading.Thread(
                target=self._beat, name=f"import-{self.run_pk}-heartbeat", daemon=True
            )
            self._thread.start()
        return self

    def _beat(self) -> None:
        from django.db import connections

        try:
            while not self._stop.wait(settings.REMPART_IMPORT_HEARTBEAT_SECONDS):
                try:
                    self._runs.update(heartbeat_at=timezone.now())
                except DatabaseError:
                    pass  # the next beat tries again; a missed one only makes the run look older
        finally:
            connections.close_all()  # this thread's connections only

    def stop(self) -> None:
        """End the beats (before the run's own row is written in the import's transaction)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __exit__(self, *exc) -> None:
        self.stop()
