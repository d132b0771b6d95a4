from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rempart.registry.models import Insurer
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import FileRefused


class Command(BaseCommand):
    help = "Import an insurer's products file (docs/formats/products-v1.md)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--insurer", required=True, metavar="AMC_NUMBER")

    def handle(self, *args, file, insurer, **options):
        try:
            amc = Insurer.objects.get(amc_number=insurer)
        except Insurer.DoesNotExist:
            raise CommandError(f"no insurer with AMC number {insurer!r}") from None
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        try:
            summary = import_products(file, amc)
        except FileRefused as exc:
            raise CommandError(f"file refused, nothing was changed: {exc}") from None
        self.stdout.write(summary.as_text())
