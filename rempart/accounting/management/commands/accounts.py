"""``rempart accounts check | balances | trial-balance``: the money ledger for the operator's staff and scheduler."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from rempart.accounting import books, integrity
from rempart.accounting.models import NORMAL_SIGN, AccountKind


def euros(cents: int) -> str:
    """1234567 → "12 345,67" (French notation, plain spaces so columns line up)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{rest:02d}"


class Command(BaseCommand):
    help = (
        "The money ledger: `check` verifies every transaction balances and every balance equals its postings "
        "(exit status 1 on any break); `balances [--insurer AMC] [--professional FINESS] [--at YYYY-MM-DD]` "
        "prints accounts' balances; `trial-balance [--at YYYY-MM-DD] [--format text|csv|pdf] [--output FILE]` "
        "every account, debits = credits, and the float (advanced to professionals, not yet recovered from insurers)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("check", "balances", "trial-balance", "trial_balance"))
        parser.add_argument("--insurer", metavar="AMC", help="balances: this insurer's accounts (numéro AMC)")
        parser.add_argument("--professional", metavar="FINESS", help="balances: this professional's accounts")
        parser.add_argument("--at", metavar="YYYY-MM-DD", help="postings effective on or before this date")
        parser.add_argument(
            "--format", dest="fmt", choices=("text", "csv", "pdf"), default="text",
            help="trial-balance: text (default), csv (integer cents) or pdf, with the float",
        )  # fmt: skip
        parser.add_argument(
            "--output", metavar="FILE", help="trial-balance: write the file there, not to stdout"
        )

    def handle(self, *args, action, insurer, professional, at, fmt="text", output=None, **options):
        if action == "check":
            self._check()
            return
        day = None
        if at:
            try:
                day = dt.date.fromisoformat(at)
            except ValueError:
                raise CommandError("--at: YYYY-MM-DD expected") from None
        if action == "balances":
            rows = books.balances(at=day, **self._owners(insurer, professional))
            self._table(rows, day)
        else:
            trial = self._trial_balance(day, fmt, output)
            if not trial.balanced:
                raise CommandError("the trial balance does not balance; run `rempart accounts check`")

    def _trial_balance(self, day: dt.date | None, fmt: str, output: str | None) -> books.TrialBalance:
        """Every account and the float (rempart.accounting.trial_balance_files), to stdout or ``--output``."""
        from pathlib import Path

        from rempart.accounting import trial_balance_files

        if fmt == "pdf" and not output:
            raise CommandError("--format pdf needs --output FILE")
        trial, content = trial_balance_files.render(day, fmt)
        if output:
            try:
                Path(output).write_bytes(content)
            except OSError as exc:
                raise CommandError(f"--output: cannot write {output}: {exc.strerror}") from None
            self.stdout.write(
                f"Trial balance at {day or 'today'} written to {output} ({fmt}, {len(content)} bytes)"
            )
        else:
            self.stdout.write(content.decode("utf-8").lstrip("\ufeff"), ending="")
        return trial

    def _check(self) -> None:
        report = integrity.verify()
        if report.ok:
            self.stdout.write(
                f"OK: {report.transactions:,} transactions and {report.postings:,} postings on {report.accounts:,} "
                "accounts; every transaction balances and every balance equals its postings."
            )
            return
        for problem in report.problems:
            self.stdout.write(f"BROKEN {problem}")
        raise CommandError(
            f"the money ledger is broken ({len(report.problems)} problems above); see docs/accounting.md, 'Guarantees'"
        )

    def _owners(self, amc: str | None, finess: str | None) -> dict:
        from rempart.accounts.models import Organisation
        from rempart.registry.models import Insurer

        owners = {}
        if amc:
            insurer = Insurer.objects.filter(amc_number=amc).first()
            if insurer is None:
                raise CommandError(f"--insurer: no insurer with numéro AMC {amc}")
            owners["insurer"] = insurer
        if finess:
            organisation = Organisation.objects.filter(professional__finess=finess).first()
            if organisation is None:
                raise CommandError(f"--professional: no professional organisation with FINESS {finess}")
            owners["organisation"] = organisation
        return owners

    def _table(self, rows: list[books.AccountBalance], day: dt.date | None) -> None:
        when = f"at {day:%Y-%m-%d}" if day else "today"
        self.stdout.write(f"Balances {when}, in euros (D: debit balance, C: credit balance)")
        header = f"{'account':<16} {'name':<56} {'kind':<9} {'debits':>16} {'credits':>16} {'balance':>18}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for row in rows:
            side = "D" if row.balance_cents > 0 else "C" if row.balance_cents < 0 else " "
            self.stdout.write(
                f"{row.account.code:<16} {row.account.name[:56]:<56} {row.account.kind:<9} "
                f"{euros(row.debits_cents):>16} {euros(row.credits_cents):>16} "
                f"{euros(abs(row.balance_cents)):>16} {side}"
            )
        if not rows:
            self.stdout.write("(no account)")
        by_kind = {kind: 0 for kind in AccountKind.values}
        for row in rows:
            by_kind[row.account.kind] += row.balance_cents
        summary = "  ".join(
            f"{kind} {euros(total * NORMAL_SIGN[AccountKind(kind)])}"
            for kind, total in by_kind.items()
            if total
        )
        if summary:
            self.stdout.write(f"By kind (on each kind's normal side): {summary}")
