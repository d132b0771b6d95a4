"""``rempart scheduler``: tick the periodic jobs and sweep lost ones (safe to run on several hosts)."""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from rempart.jobs.housekeeping import Housekeeper
from rempart.jobs.runner import worker_name


class Command(BaseCommand):
    help = "Start periodic jobs once per period (ledger anchoring, partitions, payment runs) and sweep lost jobs."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one tick, then exit")

    def handle(self, *args, once, **options):
        keeper = Housekeeper(
            f"scheduler:{worker_name()}",
            backend="scheduler",
            queues="",
            interval=settings.REMPART_JOB_HEARTBEAT_SECONDS,
            schedule=True,
        )
        if once:
            keeper.once()
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        keeper.start()
        self.stderr.write(f"rempart scheduler {keeper.worker_id} ticking every {keeper.interval:g} s")
        stop.wait()
        keeper.stop()
