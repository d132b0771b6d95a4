from django.core.management.base import BaseCommand, CommandError

from rempart.registry.models import ImportRun, Insurer


class Command(BaseCommand):
    help = (
        "List the latest rights imports and their outcome. A run whose process is gone shows as "
        "'interrupted' (nothing was changed), never as 'running'."
    )

    def add_arguments(self, parser):
        parser.add_argument("--insurer", metavar="AMC_NUMBER", help="only this insurer's imports")
        parser.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")

    def handle(self, *args, insurer, limit, **options):
        runs = ImportRun.objects.select_related("insurer")
        if insurer:
            if not Insurer.objects.filter(amc_number=insurer).exists():
                raise CommandError(f"no insurer with AMC number {insurer!r}")
            runs = runs.filter(insurer__amc_number=insurer)
        self.stdout.write(
            f"{'#':>6}  {'started':16}  {'insurer':9}  {'mode':5}  {'status':11}  {'rows':>9}  file"
        )
        for run in runs[: max(limit, 0)]:
            rows = run.counts.get("rows_read", "")
            self.stdout.write(
                f"{run.pk:>6}  {run.started_at:%Y-%m-%d %H:%M}  {run.insurer.amc_number if run.insurer else '':9}  "
                f"{run.mode:5}  {run.current_status():11}  {rows!s:>9}  {run.file_name}"
            )
