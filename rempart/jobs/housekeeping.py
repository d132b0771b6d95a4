"""What every worker and scheduler process does beside running jobs: say it is alive, put lost jobs back,
and tick the schedule. A thread of its own, so a long job does not stop the beats."""

from __future__ import annotations

import logging
import os
import threading

from django.db import DatabaseError, connections
from django.utils import timezone

from rempart.jobs.models import WorkerBeat
from rempart.lib.processes import this_host

logger = logging.getLogger("rempart.jobs")


class Housekeeper:
    def __init__(self, worker_id: str, *, backend: str, queues: str, interval: float, schedule: bool) -> None:
        self.worker_id, self.backend, self.queues = worker_id, backend, queues
        self.interval, self.schedule = interval, schedule
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rempart-jobs-housekeeping", daemon=True)
        self.started_at = timezone.now()

    def start(self) -> Housekeeper:
        self.once()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            WorkerBeat.objects.filter(worker_id=self.worker_id).delete()
        except DatabaseError:
            pass

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.once()
        finally:
            connections.close_all()

    def once(self) -> None:
        from rempart.jobs.runner import sweep
        from rempart.jobs.schedule import tick

        try:
            WorkerBeat.objects.update_or_create(
                worker_id=self.worker_id,
                defaults={
                    "host": this_host(),
                    "pid": os.getpid(),
                    "backend": self.backend[:40],
                    "queues": self.queues[:200],
                    "started_at": self.started_at,
                    "seen_at": timezone.now(),
                },
            )
            swept = sweep()
            if swept["lost"] or swept["requeued"]:
                logger.info("jobs swept: %s lost, %s handed over again", swept["lost"], swept["requeued"])
            if self.schedule:
                started = tick()
                if started:
                    logger.info("scheduled jobs started: %s", ", ".join(started))
        except DatabaseError as error:  # the database restarting: the next round tries again
            logger.warning("jobs housekeeping skipped a round (%s)", type(error).__name__)
            connections.close_all()
