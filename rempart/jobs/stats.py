"""Counts for /metrics, the console and ``rempart check-deploy``: the queue's depth and who works it."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count
from django.utils import timezone

from rempart.jobs.models import Job, WorkerBeat


def snapshot() -> dict[str, int]:
    """Jobs by status (every status present, zeros included)."""
    counts = {status: 0 for status in Job.Status.values}
    for row in Job.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def live_workers(max_age_seconds: int = 60) -> list[dict]:
    """Workers seen in the last ``max_age_seconds``."""
    since = timezone.now() - dt.timedelta(seconds=max_age_seconds)
    return list(
        WorkerBeat.objects.filter(seen_at__gte=since)
        .order_by("worker_id")
        .values("worker_id", "host", "pid", "backend", "queues", "started_at", "seen_at", "jobs_done")
    )
