"""``rempart payments prepare | list | show | import-status``: payment runs for the scheduler and the treasury.

Preparing from here is the scheduler's way (the run's preparer is then nobody, and any treasury member may
approve it in the console). Approval is not offered here on purpose: it needs a person's fresh second factor.
IBANs are printed masked only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rempart.accounting.management.commands.accounts import euros
from rempart.payments import runs
from rempart.payments.models import Payment, PaymentRun

ACTIONS = ("prepare", "list", "show", "import-status", "import_status")


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: YYYY-MM-DD expected, not {text[:20]!r}") from None


class Command(BaseCommand):
    help = (
        "Payment runs: `prepare --cutoff YYYY-MM-DD [--execution-date YYYY-MM-DD]` prepares the run paying every "
        "balance due at the cut-off (a second person approves it in the console); `list` the runs; `show REF` "
        "one run, its held organisations and its transfers; `import-status FILE` a bank's pain.002 or camt.054."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=ACTIONS)
        parser.add_argument("target", nargs="?", help="show: the run's reference; import-status: the file")
        parser.add_argument("--cutoff", metavar="YYYY-MM-DD", help="prepare: pay what is due on this date")
        parser.add_argument(
            "--execution-date",
            metavar="YYYY-MM-DD",
            help="prepare: the day the bank executes (default: next business day)",
        )
        parser.add_argument("--limit", type=int, default=0, help="show: at most this many transfers (0: all)")

    def handle(self, *args, action, target, cutoff, execution_date, limit, **options):
        if action == "prepare":
            self._prepare(cutoff, execution_date)
        elif action == "list":
            self._list()
        elif action == "show":
            if not target:
                raise CommandError("show: give the run's reference, e.g. PR-20261130-001")
            self._show(target, limit)
        else:
            if not target:
                raise CommandError("import-status: give the bank file to import")
            self._import_status(Path(target))

    def _prepare(self, cutoff_text: str | None, execution_text: str | None) -> None:
        if not cutoff_text:
            raise CommandError("prepare: --cutoff YYYY-MM-DD is required")
        cutoff, execution = _date(cutoff_text, "--cutoff"), _date(execution_text, "--execution-date")
        existing = PaymentRun.objects.filter(status=PaymentRun.Status.PREPARED, cutoff=cutoff).first()
        try:
            run = runs.prepare_run(cutoff, execution_date=execution)
        except runs.PaymentRunError as exc:
            raise CommandError(exc.message) from None
        if existing is not None and existing.pk == run.pk:
            self.stdout.write(f"Already prepared, waiting for approval: {run.reference}")
        else:
            self.stdout.write(f"Prepared {run.reference}")
        self._summary(run)
        self.stdout.write(
            "A second person of the treasury approves it in the console (/operateur/paiements/)."
        )

    def _summary(self, run: PaymentRun) -> None:
        held = runs.held_payments(run)
        self.stdout.write(
            f"  {run.reference}  {run.get_status_display()}  cut-off {run.cutoff:%Y-%m-%d}  execution "
            f"{run.execution_date:%Y-%m-%d}  {run.transfer_count} transfers  {euros(run.total_cents)} EUR  "
            f"{held.count()} held"
        )

    def _list(self) -> None:
        found = False
        for run in PaymentRun.objects.order_by("-prepared_at"):
            found = True
            self.stdout.write(
                f"{run.reference}\t{run.status}\t{run.cutoff:%Y-%m-%d}\t{run.execution_date:%Y-%m-%d}\t"
                f"{run.transfer_count}\t{euros(run.total_cents)}"
            )
        if not found:
            self.stdout.write("No payment run yet.")

    def _show(self, reference: str, limit: int) -> None:
        run = PaymentRun.objects.filter(reference=reference).first()
        if run is None:
            raise CommandError(f"no payment run {reference[:40]!r}")
        self._summary(run)
        if run.prepared_by_id:
            self.stdout.write(f"  prepared by {run.prepared_by.email} at {run.prepared_at:%Y-%m-%d %H:%M}")
        if run.approved_by_id:
            self.stdout.write(f"  approved by {run.approved_by.email} at {run.approved_at:%Y-%m-%d %H:%M}")
            self.stdout.write(f"  file {run.file_name}  sha256 {run.file_sha256}")
        if run.cancelled_at:
            self.stdout.write(f"  cancelled at {run.cancelled_at:%Y-%m-%d %H:%M}: {run.cancel_reason}")
        for payment in runs.held_payments(run):
            self.stdout.write(
                f"  HELD {payment.organisation.name} ({euros(payment.amount_cents)} EUR waiting): "
                f"{payment.held_reason}"
            )
        payments = (
            run.payments.exclude(status=Payment.Status.HELD).select_related("organisation").order_by("pk")
        )
        if limit > 0:
            payments = payments[:limit]
        for payment in payments:
            self.stdout.write(
                f"  {payment.reference}\t{payment.organisation.name}\t{payment.iban_masked}\t"
                f"{euros(payment.amount_cents)}\t{payment.status}"
            )

    def _import_status(self, path: Path) -> None:
        from rempart.payments.returns import (
            BankFileRefused,
            import_bank_file,
        )  # written alongside: imported late

        try:
            content = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        try:
            result = import_bank_file(content, user=None)
        except BankFileRefused as exc:
            raise CommandError(str(exc)) from None
        summary = getattr(result, "summary", {}) or {}
        self.stdout.write(
            f"Imported {path.name}: " + ", ".join(f"{key} {value}" for key, value in summary.items())
        )
