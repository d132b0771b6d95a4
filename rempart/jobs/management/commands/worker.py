"""``rempart worker``: run background jobs (the database queue by default, RQ when configured)."""

from __future__ import annotations

import logging
import signal
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, close_old_connections

from rempart.jobs.housekeeping import Housekeeper
from rempart.jobs.runner import worker_name


class Command(BaseCommand):
    help = "Run background jobs: imports, notices, ledger anchoring, payment and billing preparation."

    def add_arguments(self, parser):
        parser.add_argument(
            "--queues", default="default", help="comma-separated queue names (default: default)"
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between polls of an empty queue"
        )
        parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
        parser.add_argument("--max-jobs", type=int, default=None, help="exit after this many jobs")
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="do not tick the schedule (a separate scheduler runs it)",
        )

    def handle(self, *args, queues, interval, batch, max_jobs, no_scheduler, **options):
        logging.getLogger("rempart.jobs").setLevel(logging.INFO)
        backend_path = settings.TASKS["default"]["BACKEND"]
        worker_id = worker_name()
        keeper = Housekeeper(
            worker_id,
            backend=backend_path.rsplit(".", 1)[-1],
            queues=queues,
            interval=settings.REMPART_JOB_HEARTBEAT_SECONDS,
            schedule=not no_scheduler,
        ).start()
        self.stderr.write(f"rempart worker {worker_id}: {backend_path} queues={queues}")
        from rempart.ops.worker_metrics import start_from_settings

        metrics_server = start_from_settings()  # its own /metrics when REMPART_WORKER_METRICS_BIND is set
        try:
            if backend_path.endswith("DatabaseBackend"):
                self._database_worker(worker_id, queues, interval, batch, max_jobs)
            elif backend_path.endswith("RQBackend"):
                self._rq_worker(worker_id, queues, batch, max_jobs)
            else:
                raise CommandError(
                    f"the task backend {backend_path} runs jobs in the web process; no worker is needed"
                )
        finally:
            keeper.stop()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()

    def _database_worker(self, worker_id: str, queues: str, interval: float, batch: bool, max_jobs) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        worker = Worker(
            queue_names=queues.split(","),
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=not batch,
            max_tasks=max_jobs,
            worker_id=worker_id[:64],
            excluded_queue_names=[],
        )
        worker.configure_signals()
        try:
            while True:
                try:
                    worker.run()
                    return
                except (OperationalError, InterfaceError) as error:
                    # The database restarting (a failover, a restart for maintenance): wait and go on, rather
                    # than leave the host without a worker until someone notices.
                    if not worker.running:
                        return
                    self.stderr.write(f"database unavailable ({type(error).__name__}); retrying in 2 s")
                    close_old_connections()
                    from django.db import connections

                    connections.close_all()
                    time.sleep(2)
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _rq_worker(self, worker_id: str, queues: str, batch: bool, max_jobs) -> None:
        import django_rq
        from django_tasks_rq.backend import Job as TaskJob

        worker = django_rq.get_worker(
            *queues.split(","), job_class=TaskJob, name=worker_id.replace(":", "-")[:60]
        )
        ok = worker.work(burst=batch, max_jobs=max_jobs, with_scheduler=True)
        if not ok and batch:
            sys.exit(0)
