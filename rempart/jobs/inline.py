"""Run waiting jobs in this process, as a worker would: ``rempart jobs run`` and the tests use it."""

from __future__ import annotations

from django.utils import timezone

from rempart.jobs.models import Job
from rempart.jobs.runner import _due, execute


def run_waiting(limit: int | None = None, kinds: list[str] | None = None) -> list[tuple[str, str]]:
    """Run every job waiting now (oldest first, including those queued by the jobs it runs)."""
    ran: list[tuple[str, str]] = []
    while limit is None or len(ran) < limit:
        waiting = (
            Job.objects.filter(status__in=Job.WAITING).filter(_due(timezone.now())).order_by("created_at")
        )
        if kinds:
            waiting = waiting.filter(kind__in=kinds)
        job_id = waiting.values_list("pk", flat=True).first()
        if job_id is None:
            break
        status = execute(str(job_id))
        ran.append((str(job_id), status))
        if status == "skipped":
            break  # someone else claimed it meanwhile; do not spin
    return ran
