"""`rempart import-lpp FILE`: check an LPP catalogue file and install it as the catalogue in force."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rempart.authorizations.catalogue import CatalogueError, installed_path, load_catalogue


class Command(BaseCommand):
    help = (
        "Check an LPP catalogue (format of rempart/authorizations/data/lpp-catalogue-v1.csv) and install it as the "
        "catalogue in force. A file with any problem is refused whole, with every problem (line, column, reason). "
        "Restart the server processes afterwards (each loads the catalogue once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="check only")

    def handle(self, *args, file: Path, dry_run: bool, **options):
        try:
            catalogue = load_catalogue(file)
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file") from None
        except CatalogueError as exc:
            for line, column, reason in exc.problems[:50]:
                self.stderr.write(f"line {line}, {column}: {reason}")
            raise CommandError(
                f"{file}: refused ({len(exc.problems)} problem(s)); nothing installed"
            ) from None
        self.stdout.write(
            f"{file}: valid, {len(catalogue._by_code)} code(s), data version {catalogue.data_version[:16]}…"
        )
        if dry_run:
            return
        target = installed_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as handle,
            file.open("rb") as source,
        ):
            shutil.copyfileobj(source, handle)
        Path(handle.name).replace(target)  # atomic: a reader sees the old file or the new one
        self.stdout.write(f"installed as {target}; restart the server processes to use it")
