"""What the insurer's portal pages need beyond the imports themselves: the uploaded file on disk, a recorded run
of a products file, the rejected rows read back (a page of them, or all in the reader's language), and the
registry's state in counts.

Rules only, no HTTP: rempart.registry.views calls these.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.lib import csv_safe
from rempart.registry import import_runs
from rempart.registry.import_messages import describe, from_csv
from rempart.registry.models import Beneficiary, Contract, ImportRun, Insurer
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import ErrorReport, FileRefused

ERRORS_PAGE_SIZE = 50


@contextlib.contextmanager
def saved_upload(uploaded, prefix: str) -> Iterator[Path]:
    """The uploaded file written to a private temporary file under VAR_DIR, removed afterwards."""
    upload_dir = Path(settings.VAR_DIR) / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=upload_dir, prefix=prefix, suffix=".csv") as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
        handle.flush()
        yield Path(handle.name)


def import_products_file(path: Path, insurer: Insurer, *, file_name: str, dry_run: bool = False) -> ImportRun:
    """A products file loaded from the portal, recorded as an import run (``kind="products"``) like a rights
    file: its counts, its refusal or its rejected rows (errors.csv), listed under the uploaded name.

    Raises FileRefused after recording the refusal.
    """
    run = ImportRun.objects.create(
        insurer=insurer, kind="products", mode="", file_name=file_name[:255], **import_runs.process_fields()
    )
    report_dir = Path(settings.VAR_DIR) / "imports" / f"{run.pk:06d}-products-{insurer.amc_number}"
    run.report_dir = str(report_dir)
    try:
        summary = import_products(path, insurer, dry_run=dry_run)
    except FileRefused as exc:
        run.status, run.notes = ImportRun.Status.REFUSED, [exc.message]
        exc.run = run
        raise
    except Exception:
        run.status = ImportRun.Status.FAILED
        raise
    else:
        report = ErrorReport(report_dir / "errors.csv")
        try:
            for line, column, message in summary.errors:
                report.add(line, column, message)
        finally:
            report.close()
        run.status = ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.SUCCEEDED
        run.counts = {
            "rows_read": summary.rows_read,
            "products_created": summary.products_created,
            "guarantees_written": summary.guarantees_written,
            "unchanged": summary.unchanged,
            "rejected": len(summary.errors),
        }
    finally:
        run.finished_at = timezone.now()
        run.save()
    return run


# ---------------------------------------------------------------------------------------------- rejected rows


def _errors_path(run: ImportRun) -> Path | None:
    if not run.report_dir:
        return None
    path = Path(run.report_dir) / "errors.csv"
    return path if path.is_file() else None


def has_rejected_rows(run: ImportRun) -> bool:
    return bool(run.rejected) and _errors_path(run) is not None


def _worded(rows) -> Iterator[tuple[str, str, str]]:
    """(line, column, reason in the active language) of errors.csv rows; an older report (line, column,
    English reason) keeps its words."""
    for row in rows:
        if len(row) >= 5:
            yield row[0], row[1], describe(from_csv(row[3], row[4]))
        elif len(row) >= 3:
            yield row[0], row[1], row[2]


@dataclass
class ErrorsPage:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    number: int = 1
    pages: int = 1
    total: int = 0

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def errors_page(run: ImportRun, number: int, size: int = ERRORS_PAGE_SIZE) -> ErrorsPage:
    """One page of the run's rejected rows, read from errors.csv (the file is read up to that page only)."""
    path = _errors_path(run)
    total = run.rejected
    pages = max(1, -(-total // size))
    number = min(max(number, 1), pages)
    if path is None:
        return ErrorsPage(number=1, pages=1, total=0)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader, None)  # the header
        start = (number - 1) * size
        rows = list(_worded(itertools.islice(reader, start, start + size)))
    return ErrorsPage(rows=rows, number=number, pages=pages, total=total)


class _Echo:
    def write(self, value: str) -> str:
        return value


def worded_errors_csv(run: ImportRun) -> Iterator[str]:
    """The rejected rows as a CSV in the reader's language (line, column, reason), streamed."""
    path = _errors_path(run)
    writer = csv_safe.writer(_Echo())
    yield writer.writerow([_("ligne"), _("colonne"), _("motif")])
    if path is None:
        return
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader, None)
        for row in _worded(reader):
            yield writer.writerow(row)


# ---------------------------------------------------------------------------------------------- state


@dataclass
class RegistryState:
    contracts: list[tuple[str, int]]
    contracts_total: int
    beneficiaries: list[tuple[str, int]]
    beneficiaries_total: int
    last_import: ImportRun | None
    last_rights_import: ImportRun | None
    canaries: int


def registry_state(insurer: Insurer, today: dt.date | None = None) -> RegistryState:
    """The insurer's registry in counts: contracts by status, beneficiaries by coverage on ``today``, the last
    imports, the canaries planted.

    Counts only, so this reads no one's personal data and goes through no gate (rempart.gate records reads
    of a person's fields; a number of rows is nobody's). The canaries are counted, never told apart: their
    number says the registry is watched, not who the canaries are.
    """
    from rempart.surveillance.models import Canary

    today = today or timezone.localdate()
    by_status = {
        row["status"]: row["n"]
        for row in Contract.objects.filter(insurer=insurer).values("status").annotate(n=Count("id"))
    }
    contracts = [(str(label), by_status.get(value, 0)) for value, label in Contract.Status.choices]
    covered = Q(coverage_start__lte=today) & (Q(coverage_end__isnull=True) | Q(coverage_end__gte=today))
    counts = Beneficiary.objects.filter(contract__insurer=insurer).aggregate(
        covered=Count("id", filter=covered),
        future=Count("id", filter=Q(coverage_start__gt=today)),
        ended=Count("id", filter=Q(coverage_end__lt=today)),
    )
    beneficiaries = [
        (_("Couverts aujourd'hui"), counts["covered"]),
        (_("Couverture à venir"), counts["future"]),
        (_("Couverture terminée"), counts["ended"]),
    ]
    runs = ImportRun.objects.filter(insurer=insurer).exclude(status=ImportRun.Status.DRY_RUN)
    return RegistryState(
        contracts=contracts,
        contracts_total=sum(n for _label, n in contracts),
        beneficiaries=beneficiaries,
        beneficiaries_total=sum(n for _label, n in beneficiaries),
        last_import=runs.order_by("-started_at", "-pk").first(),
        last_rights_import=runs.filter(kind="rights").order_by("-started_at", "-pk").first(),
        canaries=Canary.objects.filter(insurer=insurer, retired_at__isnull=True).count(),
    )
