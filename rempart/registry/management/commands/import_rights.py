from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from rempart.registry.models import Insurer
from rempart.registry.rights_import import FileRefused, import_rights


class Command(BaseCommand):
    help = "Import an insurer's rights file (docs/formats/rights-v1.md). Good rows go in atomically; bad rows are reported."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--insurer", required=True, metavar="AMC_NUMBER")
        parser.add_argument("--mode", choices=("full", "delta"), default="delta")
        parser.add_argument("--dry-run", action="store_true", help="check and count, change nothing")
        parser.add_argument(
            "--force", action="store_true", help="full mode: allow ending more than the safety share"
        )
        parser.add_argument("--report-dir", type=Path, help="where to write summary.txt and errors.csv")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="language of the output, summary.txt and the reasons in errors.csv (default: %(default)s)",
        )

    def handle(self, *args, file, insurer, mode, dry_run, force, report_dir, language, **options):
        with translation.override(language):
            self._import(file, insurer, mode, dry_run, force, report_dir)

    def _import(self, file, insurer, mode, dry_run, force, report_dir):
        try:
            amc = Insurer.objects.get(amc_number=insurer)
        except Insurer.DoesNotExist:
            raise CommandError(f"no insurer with AMC number {insurer!r}") from None
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            run, summary = import_rights(
                file, amc, mode=mode, dry_run=dry_run, force=force, report_dir=report_dir
            )
        except FileRefused as exc:
            raise CommandError(
                _("fichier refusé, rien n'a été modifié : %(reason)s") % {"reason": exc.describe()}
            ) from None
        self.stdout.write(summary.as_text())
        if summary.rejected:
            self.stdout.write(_("Lignes rejetées : %(path)s") % {"path": Path(run.report_dir) / "errors.csv"})
        self.stdout.write(_("Rapport : %(path)s") % {"path": Path(run.report_dir) / "summary.txt"})
