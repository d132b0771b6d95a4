"""A job is a row here before it is anything else: the table, not the queue, is the truth.

The task backend (django-tasks: the database backend by default, RQ in production) only carries a
job's id to a worker. Whatever the backend loses — Redis restarted, a worker killed with ``kill -9``,
an enqueue that failed after the request committed — the row still says what was asked, who asked,
how far it went and why it stopped, and the sweeper (``rempart.jobs.runner.sweep``) puts it back on
the queue or marks it failed with its reason.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("En file")
        RUNNING = "running", _("En cours")
        RETRYING = "retrying", _("Relancée")  # failed or lost once, queued again
        SUCCEEDED = "succeeded", _("Terminée")
        FAILED = "failed", _("Échouée")
        CANCELLED = "cancelled", _("Annulée")

    WAITING = (Status.QUEUED, Status.RETRYING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=80, db_index=True)
    # Ids, dates and flags only: never a NIR, an IBAN or a name (enforced by rempart.jobs.params).
    params = models.JSONField(default=dict)
    # The same key twice is the same job: a double click, a retried POST, two schedulers.
    key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    progress_note = models.CharField(max_length=200, blank=True)
    result = models.JSONField(
        null=True, blank=True
    )  # a summary for the page (counts, ids), never personal data
    failure_code = models.CharField(max_length=60, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)  # shown to the person; no traceback
    retried_from_failure = models.CharField(max_length=60, blank=True)  # why the last retry happened
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organisation_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # whose job it is
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    run_after = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)  # last hand-over to the task backend
    worker = models.CharField(max_length=120, blank=True)  # host:pid of the attempt running it
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    worker_token = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="jobs_job_status_beat")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int | None:
        if not self.progress_total:
            return 100 if self.status == self.Status.SUCCEEDED else None
        return max(0, min(100, int(100 * self.progress_done / self.progress_total)))


class WorkerBeat(models.Model):
    """One row per worker process, refreshed every few seconds: who is there to run jobs."""

    worker_id = models.CharField(max_length=120, unique=True)
    host = models.CharField(max_length=255)
    pid = models.IntegerField()
    backend = models.CharField(max_length=40)
    queues = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)
    jobs_done = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.worker_id


class ScheduledRun(models.Model):
    """A periodic job's period, taken once: the unique pair is what makes a schedule run exactly once
    however many schedulers or workers tick at the same time."""

    name = models.CharField(max_length=80)
    period = models.CharField(max_length=40)  # 2026-12-02 for a daily job, 2026-12 for a monthly one
    job = models.ForeignKey(Job, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "period"], name="jobs_schedule_once")]

    def __str__(self) -> str:
        return f"{self.name} {self.period}"
