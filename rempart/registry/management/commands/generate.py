from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rempart.registry import seeding


class Command(BaseCommand):
    help = "Generate synthetic insurers, products, beneficiaries and professionals (valid identifiers, never real)."

    def add_arguments(self, parser):
        parser.add_argument("--beneficiaries", type=int, required=True, help="number of beneficiaries")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same data (default 1)")
        parser.add_argument(
            "--rights-files",
            type=Path,
            metavar="DIR",
            help="write products and rights files to DIR instead of inserting",
        )

    def handle(self, *args, beneficiaries, seed, rights_files, **options):
        if beneficiaries < 1:
            raise CommandError("--beneficiaries must be at least 1", returncode=2)
        if rights_files:
            from django.utils import timezone

            paths = seeding.write_files(rights_files, seed, beneficiaries, timezone.localdate())
            self.stdout.write(f"Wrote {len(paths)} rights files and their products files to {rights_files}")
            return
        result = seeding.populate(seed, beneficiaries)
        self.stdout.write(
            f"Generated {result.insurers} insurers, {result.beneficiaries:,} beneficiaries, "
            f"{result.professionals:,} professionals (seed {seed})."
        )
