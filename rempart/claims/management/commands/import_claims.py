"""`rempart import-claims FILE --organisation FINESS`: load a lot of invoices received outside the API."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rempart.accounts.models import Organisation
from rempart.claims import lots
from rempart.gate import Actor
from rempart.lib import csv_safe
from rempart.lib.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Adjudicate a lot of invoices (docs/formats/claims-lot-v1.md) for a professional organisation, exactly as "
        "POST /api/v1/claims/lots would. A lot wrong as a whole is refused with nothing changed (exit status 1); "
        "otherwise each invoice gets its result (--results writes them as CSV). Sending the same lot again changes "
        "nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--organisation", required=True, help="the sender's FINESS (or SIRET)")
        parser.add_argument(
            "--results", type=Path, help="write the per-invoice results (RSP) to this CSV file"
        )

    def handle(self, *args, file: Path, organisation: str, results: Path | None, **options):
        sender = (
            Organisation.objects.filter(
                kind=Organisation.Kind.PROFESSIONAL, professional__finess=organisation
            ).first()
            or Organisation.objects.filter(
                kind=Organisation.Kind.PROFESSIONAL, professional__siret=organisation
            ).first()
        )
        if sender is None:
            raise CommandError(f"no professional organisation with FINESS or SIRET {organisation}")
        actor = dataclasses.replace(Actor.command_line(), organisation_id=sender.pk)
        try:
            handle = file.open("rb")
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        with handle, progress_bar(None, desc="invoices", unit="invoice") as bar:
            try:
                lot, replayed = lots.receive_lot(actor, sender, handle, progress=bar)
            except lots.LotRejected as exc:
                where = f" (line {exc.line})" if exc.line else ""
                raise CommandError(
                    f"{file}: lot refused, nothing changed: {exc.code}{where}: {exc.message}"
                ) from None
        if results is not None:
            with results.open("w", encoding="utf-8", newline="") as out:
                csv_safe.writer(out).writerows(lots.result_rows(lot))
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(lot.counts.items())) or "no invoice"
        prefix = "already received, unchanged: " if replayed else ""
        self.stdout.write(f"lot {lot.lot_number}: {prefix}{lot.invoice_count} invoice(s): {counts}")
