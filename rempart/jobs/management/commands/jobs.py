"""``rempart jobs list|run|sweep|tick``: look at the queue and act on it from the command line."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.jobs.runner import sweep
from rempart.jobs.schedule import tick
from rempart.jobs.stats import live_workers, snapshot


class Command(BaseCommand):
    help = "Background jobs: list the latest, run the waiting ones here, sweep lost ones, tick the schedule."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "run", "sweep", "tick"])
        parser.add_argument("--status", choices=Job.Status.values, default=None)
        parser.add_argument("--limit", type=int, default=30)

    def handle(self, *args, action, status, limit, **options):
        if action == "list":
            counts = snapshot()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            self.stdout.write(f"workers={len(live_workers())}")
            jobs = Job.objects.order_by("-created_at")
            if status:
                jobs = jobs.filter(status=status)
            for job in jobs[:limit]:
                reason = f" {job.failure_code}: {job.failure_message}" if job.failure_code else ""
                self.stdout.write(
                    f"{job.pk} {job.kind} {job.status} {job.attempts}/{job.max_attempts} "
                    f"{job.created_at:%Y-%m-%d %H:%M:%S}{reason}"
                )
        elif action == "run":
            for job_id, outcome in run_waiting(limit=None):
                self.stdout.write(f"{job_id} {outcome}")
        elif action == "sweep":
            counts = sweep()
            self.stdout.write(f"lost={counts['lost']} requeued={counts['requeued']}")
        else:
            started = tick()
            self.stdout.write("started: " + (", ".join(started) if started else "nothing due"))
