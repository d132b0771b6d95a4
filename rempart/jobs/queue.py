"""Putting work on the queue: a job row first, then its id handed to the task backend after commit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from rempart.jobs.kinds import get_kind
from rempart.jobs.models import Job
from rempart.jobs.params import check_params
from rempart.jobs.runner import hand_over


def enqueue(
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    user=None,
    organisation_id: int | None = None,
    run_after: dt.datetime | None = None,
) -> Job:
    """Record a job of ``kind`` and queue it once the current transaction commits.

    ``key`` makes it idempotent: a second enqueue with the same key returns the first job (a double
    click, a retried request, two schedulers racing) instead of doing the work twice.
    """
    registered = get_kind(kind)
    if registered is None:
        raise LookupError(f"unknown job kind {kind!r}")
    params = check_params(dict(params or {}))
    if key is not None:
        existing = Job.objects.filter(key=key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind,
                params=params,
                key=key,
                max_attempts=registered.max_attempts,
                created_by=user if getattr(user, "is_authenticated", False) else None,
                organisation_id=organisation_id,
                run_after=run_after,
            )
    except IntegrityError:
        if key is None:
            raise
        return Job.objects.get(key=key)
    transaction.on_commit(lambda: hand_over(job.pk, run_after=run_after))
    return job


def cancel(job: Job) -> bool:
    """Cancel a job that has not started (a running job finishes or fails on its own)."""
    return bool(
        Job.objects.filter(pk=job.pk, status__in=Job.WAITING).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now()
        )
    )


def retry(job: Job) -> bool:
    """Queue a failed job again, its attempts counted afresh (an operator's decision, recorded by the caller)."""
    updated = Job.objects.filter(pk=job.pk, status=Job.Status.FAILED).update(
        status=Job.Status.RETRYING,
        attempts=0,
        run_after=None,
        finished_at=None,
        retried_from_failure=job.failure_code[:60],
        failure_code="",
        failure_message="",
    )
    if updated:
        transaction.on_commit(lambda: hand_over(job.pk, run_after=None))
    return bool(updated)
