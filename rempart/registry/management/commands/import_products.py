from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from rempart.registry.models import Insurer
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import FileRefused


class Command(BaseCommand):
    help = "Import an insurer's products file (docs/formats/products-v1.md)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--insurer", required=True, metavar="AMC_NUMBER")
        parser.add_argument("--dry-run", action="store_true", help="check and count, change nothing")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="language of the output (default: %(default)s)",
        )

    def handle(self, *args, file, insurer, dry_run, language, **options):
        with translation.override(language):
            try:
                amc = Insurer.objects.get(amc_number=insurer)
            except Insurer.DoesNotExist:
                raise CommandError(f"no insurer with AMC number {insurer!r}") from None
            if not file.is_file():
                raise CommandError(f"no such file: {file}")
            try:
                summary = import_products(file, amc, dry_run=dry_run)
            except FileRefused as exc:
                raise CommandError(
                    _("fichier refusé, rien n'a été modifié : %(reason)s") % {"reason": exc.describe()}
                ) from None
            self.stdout.write(summary.as_text())
            if dry_run:
                self.stdout.write(_("SIMULATION : rien n'a été modifié."))
