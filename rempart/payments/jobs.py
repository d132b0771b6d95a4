"""Preparing a payment run is a job: tens of seconds at national scale, so not inside the treasurer's click.

The console checks the form at once (dates, an open run at another cut-off) and hands the rest to a worker;
the treasurer lands on the job's page and, once the run is prepared, on the run itself. The scheduler runs
the same kind every morning for the previous day's cut-off, with no preparer (any treasury member may then
approve it: the four eyes are the scheduler's rule and the approver).

Safe to retry by construction: ``prepare_run`` is one transaction (a killed worker leaves no run) and a
second preparation at the same cut-off returns the open run instead of preparing another.
"""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.jobs.kinds import JobFailure, job_kind
from rempart.jobs.queue import enqueue

KIND = "payments.prepare_run"
# Scheduled runs: these mean "nothing to do today", not a failure to show in red.
QUIET_REFUSALS = {"nothing_to_pay", "run_open"}


def enqueue_preparation(cutoff: dt.date, execution_date: dt.date, *, user):
    return enqueue(
        KIND,
        {"cutoff": cutoff.isoformat(), "execution_date": execution_date.isoformat(), "user_id": user.pk},
        user=user,
    )


def _date(value: str | None, field: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise JobFailure("bad_params", _("Date illisible : %(field)s.") % {"field": field}) from None


@job_kind(KIND, label=_("Préparation d'une campagne de paiement"), max_attempts=3, atomic=True)
def prepare_run_job(
    ctx, cutoff: str | None = None, execution_date: str | None = None, user_id: int | None = None
) -> dict:
    from rempart.accounts.models import User
    from rempart.payments import runs

    scheduled = user_id is None
    day = _date(cutoff, "cutoff") or timezone.localdate() - dt.timedelta(days=1)
    user = None
    if not scheduled:
        user = User.objects.filter(pk=user_id, is_active=True, suspended_at__isnull=True).first()
        if user is None:
            raise JobFailure("not_allowed", _("Le compte qui a demandé cette campagne n'est plus actif."))
    try:
        run = runs.prepare_run(day, user=user, execution_date=_date(execution_date, "execution_date"))
    except runs.PaymentRunError as exc:
        if scheduled and exc.code in QUIET_REFUSALS:
            return {"prepared": False, "reason": exc.code, "cutoff": day.isoformat()}
        raise JobFailure(exc.code, exc.message) from None
    return {
        "url": reverse("payments_console:detail", kwargs={"reference": run.reference}),
        "follow": True,
        "prepared": True,
        "reference": run.reference,
        "transfers": run.transfer_count,
        "total_cents": run.total_cents,
    }
