import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rempart.registry import seeding


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError("--reference-date: YYYY-MM-DD expected") from None


class Command(BaseCommand):
    help = (
        "Generate synthetic insurers, products, beneficiaries and professionals (valid identifiers, never real). "
        "The same seed and reference date give the same data."
    )

    def add_arguments(self, parser):
        parser.add_argument("--beneficiaries", type=int, required=True, help="number of beneficiaries")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same data (default 1)")
        parser.add_argument(
            "--reference-date",
            help="the 'today' that ages, contract dates and coverage are computed from (default: today)",
        )
        parser.add_argument(
            "--rights-files",
            type=Path,
            metavar="DIR",
            help="write products and rights files to DIR instead of inserting",
        )

    def handle(self, *args, beneficiaries, seed, reference_date, rights_files, **options):
        if beneficiaries < 1:
            raise CommandError("--beneficiaries must be at least 1", returncode=2)
        today = _date(reference_date) if reference_date else timezone.localdate()
        if rights_files:
            paths = seeding.write_files(rights_files, seed, beneficiaries, today)
            self.stdout.write(f"Wrote {len(paths)} rights files and their products files to {rights_files}")
            return
        result = seeding.populate(seed, beneficiaries, today=today)
        self.stdout.write(
            f"Generated {result.insurers} insurers, {result.beneficiaries:,} beneficiaries, "
            f"{result.professionals:,} professionals (seed {seed}, reference date {today})."
        )
