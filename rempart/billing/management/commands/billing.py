"""``rempart billing prepare | list | show | collect | import-receipts | overdue``: insurer billing for the
operator's staff and scheduler.

- ``prepare --period 2026-11 [--insurer AMC] [--as-of DATE]``: issue the period's statements (a month, an ISO
  week ``2026-W47`` or a day ``2026-11-30``) for every insurer whose contract has that periodicity; a replay
  prints the statements already issued and bills nothing.
- ``list [--insurer AMC] [--period …]`` and ``show NUMBER``: the statements, their totals and fees;
  ``correct NUMBER --reason …``: a correction statement of that statement's period.
- ``collect`` (rempart.billing.collection), ``import-receipts FILE`` (rempart.billing.receipts) and
  ``overdue [--at DATE]`` (rempart.billing.overdue: alerts on late insurers, for a daily scheduler) belong to
  their own modules; this command only calls them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from rempart.billing.models import Statement


def euros(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{rest:02d}"


def _date(value: str | None, option: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option}: YYYY-MM-DD expected") from None


class Command(BaseCommand):
    help = "Insurer billing: prepare, list, show statements; collect (pain.008); import-receipts (camt.054)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        prepare = sub.add_parser("prepare", help="issue the statements of a period")
        prepare.add_argument(
            "--period", required=True, help="2026-11 (month), 2026-W47 (ISO week), 2026-11-30"
        )
        prepare.add_argument("--insurer", metavar="AMC", help="only this insurer (numéro AMC)")
        prepare.add_argument(
            "--no-detail", dest="no_detail", action="store_true",
            help="do not write the detail files now (the first download writes each)",
        )  # fmt: skip
        prepare.add_argument(
            "--as-of", dest="as_of", metavar="YYYY-MM-DD", help="today, for the period check"
        )
        listing = sub.add_parser("list", help="the statements issued")
        listing.add_argument("--insurer", metavar="AMC")
        listing.add_argument("--period", help="only this period")
        show = sub.add_parser("show", help="one statement")
        show.add_argument("number")
        correct = sub.add_parser("correct", help="issue a correction statement of NUMBER's period")
        correct.add_argument("number")
        correct.add_argument("--reason", required=True)
        collect = sub.add_parser("collect", help="write the SEPA direct-debit file (pain.008)")
        collect.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="collection date")
        collect.add_argument("--out", metavar="FILE", help="also write the file there")
        receipts = sub.add_parser("import-receipts", help="record the credits of a camt.054 file")
        receipts.add_argument("file")
        late = sub.add_parser("overdue", help="alert on insurers overdue beyond their contract's limit")
        late.add_argument("--at", metavar="YYYY-MM-DD", help="as of this date (default today)")

    def handle(self, *args, action, **options):
        getattr(self, "_" + action.replace("-", "_"))(**options)

    # --- mine

    def _insurer(self, amc: str | None):
        if not amc:
            return None
        from rempart.registry.models import Insurer

        insurer = Insurer.objects.filter(amc_number=amc).first()
        if insurer is None:
            raise CommandError(f"no insurer with AMC number {amc}")
        return insurer

    def _prepare(self, *, period, insurer, as_of, no_detail=False, **_options):
        from rempart.billing import detail, periods, statements

        try:
            start, end, _kind = periods.parse(period)
            issued = statements.prepare_statements(
                start, end, insurer=self._insurer(insurer), as_of=_date(as_of, "--as-of")
            )
        except (periods.PeriodError, statements.StatementError) as exc:
            raise CommandError(str(exc)) from None
        for statement in issued:
            self._line(statement)
        self.stdout.write(f"{len(issued)} statement(s) for {start.isoformat()} .. {end.isoformat()}")
        waiting = [s for s in issued if not s.detail_sha256]
        if waiting and not no_detail:
            self.stdout.write(
                f"writing {len(waiting)} detail file(s) (adherent numbers recorded in the ledger) …"
            )
            files = detail.write_details(waiting)
            rows = sum(f.rows for f in files.values())
            self.stdout.write(
                f"{len(files)} detail file(s), {rows} row(s), in {settings.REMPART_BILLING_DIR}"
            )
        if insurer is None:
            missing = [i.amc_number for i in statements.insurers_without_contract()]
            if missing:
                self.stdout.write(f"not billed, no billing contract: {', '.join(missing)}")

    def _list(self, *, insurer, period, **_options):
        rows = Statement.objects.select_related("insurer").order_by("period_end", "number")
        if insurer:
            rows = rows.filter(insurer=self._insurer(insurer))
        if period:
            from rempart.billing import periods

            try:
                start, end, _kind = periods.parse(period)
            except periods.PeriodError as exc:
                raise CommandError(str(exc)) from None
            rows = rows.filter(period_start=start, period_end=end)
        for statement in rows:
            self._line(statement)

    def _show(self, *, number, **_options):
        statement = Statement.objects.select_related("insurer", "corrects").filter(number=number).first()
        if statement is None:
            raise CommandError(f"no statement {number}")
        self._line(statement)
        fees = statement.summary.get("fees", {})
        w = self.stdout.write
        w(f"  period {statement.period_start} .. {statement.period_end}, due {statement.due_date}")
        if statement.corrects_id:
            w(f"  corrects {statement.corrects.number}: {statement.summary.get('reason', '')}")
        w(f"  paid {euros(statement.paid_cents)}  reversals {euros(statement.reversals_cents)}  "
          f"fees {euros(statement.fees_cents)}  total {euros(statement.total_cents)}")  # fmt: skip
        for key in ("by_domain", "by_category"):
            for name, row in (statement.summary.get(key) or {}).items():
                w(f"  {key[3:]} {name}: {row['lines']} lines, paid {euros(row['paid_cents'])}, "
                  f"reversals {euros(row['reversals_cents'])}")  # fmt: skip
        if fees:
            w(f"  fees: {fees['rights_checks']} rights checks {euros(fees['rights_check_cents'])}, "
              f"{fees['pecs']} PEC {euros(fees['pec_cents'])}, {fees['invoices']} invoices "
              f"{euros(fees['invoice_cents'])}, share {euros(fees['share_cents'])}")  # fmt: skip
        w(f"  PDF sha256 {statement.pdf_sha256}")

    def _correct(self, *, number, reason, **_options):
        from rempart.billing import statements

        statement = Statement.objects.filter(number=number).first()
        if statement is None:
            raise CommandError(f"no statement {number}")
        try:
            correction = statements.issue_correction(statement, user=None, reason=reason)
        except statements.StatementError as exc:
            raise CommandError(str(exc)) from None
        self._line(correction)

    def _line(self, statement: Statement) -> None:
        self.stdout.write(
            f"{statement.number}  {statement.get_kind_display()}  {statement.insurer.amc_number}  "
            f"{statement.detail_rows} lines  total {euros(statement.total_cents)}  due {statement.due_date}"
        )

    # --- the other billing modules' (called, not implemented here)

    def _collect(self, *, date, out, **_options):
        from rempart.billing import collection

        try:
            made = collection.make_collection_file(collection_date=_date(date, "--date"))
        except collection.CollectionError as exc:
            raise CommandError(str(exc)) from None
        if out:
            Path(out).write_bytes(bytes(made.file_content))
        self.stdout.write(f"{made.reference}: {euros(made.total_cents)} sha256 {made.file_sha256}")

    def _overdue(self, *, at, **_options):
        from rempart.billing import overdue

        day = _date(at, "--at")
        for late in overdue.overdue_insurers(day):
            flag = "ALERT" if late.beyond_limit else "late"
            self.stdout.write(
                f"{flag:<5} {late.amc_number}  {late.days} days (limit {late.limit_days})  statement "
                f"{late.statement_number} due {late.due_date}  unpaid {euros(late.unpaid_cents)}"
            )
        raised = overdue.raise_alerts(day)
        self.stdout.write(f"{len(raised)} new alert(s)")

    def _import_receipts(self, *, file, **_options):
        from rempart.billing import receipts

        try:
            result = receipts.import_camt054(Path(file).read_bytes())
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except receipts.ReceiptError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{len(result.receipts)} receipt(s), {euros(result.total_cents)}")
