"""Issuing the insurers' statements of a closed period, and writing their detail files, as a job.

The scheduler runs it every morning for whatever periods closed overnight: yesterday for daily contracts,
last ISO week on Mondays, last month on the 1st (``closed_periods``). ``prepare_statements`` is one
transaction and a replay returns the statements already issued, and the detail files are written a group
at a time with their digests (``detail.write_details``: a group that fails names no file and is written
again next time), so a worker killed anywhere leaves either nothing or whole statements, and the retry
finishes the work. It is ``atomic=False`` for that reason: the detail files' groups commit one by one (each
with the gate's ledger rows for the adherent numbers it lists).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.jobs.kinds import JobFailure, job_kind

KIND = "billing.prepare"


def closed_periods(today: dt.date) -> list[str]:
    """The billing periods that ended yesterday (a day; a week on Mondays; a month on the 1st)."""
    yesterday = today - dt.timedelta(days=1)
    periods = [yesterday.isoformat()]
    if today.weekday() == 0:
        year, week, _day = yesterday.isocalendar()
        periods.append(f"{year}-W{week:02d}")
    if today.day == 1:
        periods.append(f"{yesterday:%Y-%m}")
    return periods


@job_kind(KIND, label=_("Émission des relevés des assureurs"), max_attempts=3, atomic=False)
def prepare_job(ctx, period: str = "", details: bool = True) -> dict:
    """``period`` given: that period (every insurer of its periodicity); empty: the periods just closed."""
    from rempart.billing import detail, periods, statements

    wanted = [period] if period else closed_periods(timezone.localdate())
    issued_total, files_total, rows_total = 0, 0, 0
    done = []
    for index, text in enumerate(wanted):
        ctx.progress(index, len(wanted), text)
        try:
            start, end, _kind = periods.parse(text)
            issued = statements.prepare_statements(start, end)
        except (periods.PeriodError, statements.StatementError) as exc:
            raise JobFailure(getattr(exc, "code", "bad_period"), str(exc)) from None
        issued_total += len(issued)
        waiting = [s for s in issued if not s.detail_sha256]
        if details and waiting:
            files = detail.write_details(waiting)
            files_total += len(files)
            rows_total += sum(f.rows for f in files.values())
        done.append(text)
    ctx.progress(len(wanted), len(wanted), "")
    return {
        "periods": done,
        "statements": issued_total,
        "detail_files": files_total,
        "detail_rows": rows_total,
    }
