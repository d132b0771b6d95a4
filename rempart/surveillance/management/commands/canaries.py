"""`rempart canaries`: plant canary beneficiaries for an insurer (or every insurer), or list them (counts and
hits, never the sealed data). Planting fewer than asked fails the command (non-zero exit)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from rempart.registry.models import Contract, Insurer
from rempart.surveillance import canaries
from rempart.surveillance.models import Canary


class Command(BaseCommand):
    help = (
        "Canary beneficiaries: `plant --insurer AMC [--count 3]` plants synthetic families drawn from the "
        "insurer's own people in its registry, through the ordinary rights import (with `--with-file FILE`, "
        "inside one of the insurer's own files, imported as usual); `plant --all` tops every insurer up to "
        "--count; `list` shows how many each insurer has and when one was last presented. The sealed card "
        "data is shown only in the security console, after step-up."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("plant", "list"))
        parser.add_argument("--insurer", help="plant: the insurer's AMC number")
        parser.add_argument("--all", action="store_true", help="plant: every active insurer with contracts")
        parser.add_argument(
            "--count",
            type=int,
            default=3,
            help="plant: at least how many (1 to 20, default 3; whole families)",
        )
        parser.add_argument(
            "--with-file",
            type=Path,
            help="plant: the insurer's own rights file to import with the canaries in it",
        )
        parser.add_argument(
            "--mode", choices=("delta", "full"), default="delta", help="with --with-file: its mode"
        )

    def handle(self, *args, action, **options):
        if action == "list":
            self._list()
            return
        count = options["count"]
        if not 1 <= count <= canaries.MAX_PER_PLANTING:
            raise CommandError(f"--count must be between 1 and {canaries.MAX_PER_PLANTING}")
        if options["all"]:
            if options["insurer"] or options["with_file"]:
                raise CommandError(
                    "--all plants in every insurer's registry: no --insurer or --with-file with it"
                )
            self._plant_all(count)
            return
        if not options["insurer"]:
            raise CommandError("--insurer AMC (or --all) is required")
        insurer = Insurer.objects.filter(amc_number=options["insurer"].strip()).first()
        if insurer is None:
            raise CommandError(f"no insurer with AMC number {options['insurer']}")
        carrier = options["with_file"]
        if carrier is not None and not carrier.is_file():
            raise CommandError(f"no such file: {carrier}")
        self._plant(insurer, count, carrier, options["mode"])

    def _plant(self, insurer: Insurer, count: int, carrier: Path | None = None, mode: str = "delta") -> int:
        try:
            planting = canaries.plant_in_import(insurer, count, carrier=carrier, mode=mode)
        except (ValueError, RuntimeError) as exc:
            raise CommandError(
                f"canaries not planted for {insurer.name} (AMC {insurer.amc_number}): {exc}"
            ) from exc
        if carrier is not None:
            self.stdout.write(planting.summary.as_text())
            if planting.summary.rejected:
                self.stdout.write(
                    f"rejected rows of the insurer's file: {planting.run.report_dir}/errors.csv"
                )
        for warning in planting.warnings:
            self.stderr.write(f"warning: {warning}")
        total = Canary.objects.filter(insurer=insurer, retired_at__isnull=True).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(planting.canaries)} canaries planted for {insurer.name} (AMC {insurer.amc_number}) "
                f"in {planting.families} families; {total} active in all."
            )
        )
        return len(planting.canaries)

    def _plant_all(self, count: int) -> None:
        """Every active insurer with contracts gets canaries up to ``count``; any shortfall fails the command."""
        failures = []
        for insurer in Insurer.objects.filter(status=Insurer.Status.ACTIVE).order_by("amc_number"):
            if not Contract.objects.filter(insurer=insurer).exists():
                self.stdout.write(
                    f"{insurer.name} (AMC {insurer.amc_number}): no contracts yet, nothing to plant"
                )
                continue
            live = Canary.objects.filter(insurer=insurer, retired_at__isnull=True).count()
            if live >= count:
                self.stdout.write(f"{insurer.name} (AMC {insurer.amc_number}): {live} active already")
                continue
            try:
                self._plant(insurer, count - live)
            except CommandError as exc:
                failures.append(str(exc))
                self.stderr.write(str(exc))
        if failures:
            raise CommandError(f"{len(failures)} insurer(s) did not get their canaries (see above)")

    def _list(self) -> None:
        live = Q(retired_at__isnull=True)
        rows = (
            Canary.objects.values("insurer__amc_number", "insurer__name")
            .annotate(
                active=Count("id", filter=live),
                retired=Count("id", filter=~live),
                hit=Count("id", filter=Q(last_hit_at__isnull=False)),
                first=Min("created_at"),
                last_hit=Max("last_hit_at"),
            )
            .order_by("insurer__name")
        )
        if not rows:
            self.stdout.write("no canaries planted")
            return
        self.stdout.write(
            f"{'AMC':9s}  {'active':>6s}  {'retired':>7s}  {'hit':>3s}  {'planted since':13s}  last hit  insurer"
        )
        for row in rows:
            first = timezone.localtime(row["first"]).strftime("%Y-%m-%d") if row["first"] else "-"
            last_hit = (
                timezone.localtime(row["last_hit"]).strftime("%Y-%m-%d %H:%M") if row["last_hit"] else "never"
            )
            self.stdout.write(
                f"{row['insurer__amc_number']:9s}  {row['active']:6d}  {row['retired']:7d}  {row['hit']:3d}  "
                f"{first:13s}  {last_hit:8s}  {row['insurer__name']}"
            )
