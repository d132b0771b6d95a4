"""`rempart canaries`: plant canary beneficiaries for an insurer, or list them (counts and hits, never the sealed data)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from rempart.registry.models import Insurer
from rempart.surveillance import canaries
from rempart.surveillance.models import Canary


class Command(BaseCommand):
    help = (
        "Canary beneficiaries: `plant --insurer AMC [--count 3]` plants synthetic people in the insurer's "
        "registry (through the ordinary rights import); `list` shows how many each insurer has and when one "
        "was last presented. The sealed card data is shown only in the security console, after step-up."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("plant", "list"))
        parser.add_argument("--insurer", help="plant: the insurer's AMC number")
        parser.add_argument("--count", type=int, default=3, help="plant: how many (1 to 20, default 3)")

    def handle(self, *args, action, **options):
        if action == "plant":
            self._plant(options["insurer"], options["count"])
        else:
            self._list()

    def _plant(self, amc_number: str | None, count: int) -> None:
        if not amc_number:
            raise CommandError("--insurer AMC is required")
        insurer = Insurer.objects.filter(amc_number=amc_number.strip()).first()
        if insurer is None:
            raise CommandError(f"no insurer with AMC number {amc_number}")
        if not 1 <= count <= 20:
            raise CommandError("--count must be between 1 and 20")
        try:
            planted = canaries.plant(insurer, count)
        except (ValueError, RuntimeError) as exc:
            raise CommandError(f"canaries not planted: {exc}") from exc
        total = Canary.objects.filter(insurer=insurer, retired_at__isnull=True).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(planted)} canaries planted for {insurer.name} (AMC {insurer.amc_number}); "
                f"{total} active in all."
            )
        )

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
