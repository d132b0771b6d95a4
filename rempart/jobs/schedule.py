"""Periodic jobs, each run once per period however many schedulers or workers tick.

Each tick, for every entry whose time has come in the current period, a ``ScheduledRun(name, period)``
row is inserted together with its job in one transaction; the unique constraint on the pair lets one
ticker win and the others see an IntegrityError, so the job exists once. A scheduler that was down at
the due time runs the job when it comes back, within the same period (no backfill of older periods:
anchoring and partitions cover everything up to now anyway).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from rempart.jobs.kinds import get_kind
from rempart.jobs.models import ScheduledRun


@dataclass(frozen=True)
class Periodic:
    name: str
    kind: str
    every: str  # "hourly", "daily" or "monthly"
    at: dt.time = dt.time(0, 0)  # local time of day (daily, monthly)
    day: int = 1  # day of month (monthly)
    params: tuple[tuple[str, object], ...] = ()

    def period(self, now: dt.datetime) -> str | None:
        """The period ``now`` falls in, if this entry is due in it by then; else None."""
        local = timezone.localtime(now)
        if self.every == "hourly":
            return local.strftime("%Y-%m-%dT%H")
        if self.every == "daily":
            return local.strftime("%Y-%m-%d") if local.time() >= self.at else None
        if self.every == "monthly":
            due = (local.day, local.time()) >= (self.day, self.at)
            return local.strftime("%Y-%m") if due else None
        raise ValueError(f"unknown period {self.every!r}")


def default_schedule() -> list[Periodic]:
    """What production runs; each app's job is named by kind, so this module imports no business app."""
    entries = [
        Periodic("ledger-anchor", "ledger.anchor", "daily", at=dt.time(2, 0)),
        Periodic("ledger-verify", "ledger.verify", "daily", at=dt.time(3, 0)),
        Periodic("ledger-partitions", "ledger.partitions", "monthly", day=1, at=dt.time(1, 0)),
        Periodic("billing-prepare", "billing.prepare", "daily", at=dt.time(4, 0)),
        Periodic("payments-run", "payments.prepare_run", "daily", at=dt.time(6, 0)),
    ]
    disabled = set(settings.REMPART_SCHEDULE_DISABLED)
    return [entry for entry in entries if entry.name not in disabled]


def tick(now: dt.datetime | None = None, schedule: list[Periodic] | None = None) -> list[str]:
    """Enqueue every entry due now and not yet run in this period; return the names enqueued."""
    from rempart.jobs.queue import enqueue

    now = now or timezone.now()
    started = []
    for entry in default_schedule() if schedule is None else schedule:
        period = entry.period(now)
        if period is None or get_kind(entry.kind) is None:
            continue
        if ScheduledRun.objects.filter(name=entry.name, period=period).exists():
            continue
        try:
            with transaction.atomic():
                run = ScheduledRun.objects.create(name=entry.name, period=period)
                job = enqueue(entry.kind, dict(entry.params), key=f"schedule:{entry.name}:{period}")
                run.job = job
                run.save(update_fields=["job"])
        except IntegrityError:
            continue  # another ticker took this period
        started.append(entry.name)
    return started
