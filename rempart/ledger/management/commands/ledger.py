import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rempart.ledger.chain import check_anchors, parse_heads, verify
from rempart.ledger.models import ChainHead


class Command(BaseCommand):
    help = (
        "The disclosure ledger: `verify [--since YYYY-MM-DD]` recomputes its hash chains; `heads` prints them; "
        "`verify --incremental` starts from the checkpoints a complete verification saved; "
        "`partitions [--months-ahead N]` creates the coming monthly partitions (PostgreSQL) and lists them."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("verify", "heads", "partitions"))
        parser.add_argument(
            "--months-ahead", type=int, default=12, help="partitions: months to create ahead (12)"
        )
        parser.add_argument("--since", help="verify only rows from this date (YYYY-MM-DD)")
        parser.add_argument(
            "--incremental", action="store_true",
            help="verify: start each chain at the last checkpoint of a complete verification (fast, routine)",
        )  # fmt: skip
        parser.add_argument(
            "--anchors", help="a file saved from `rempart ledger heads`: check those rows are intact"
        )

    def handle(self, *args, action, since, anchors, **options):
        if action == "partitions":
            self._partitions(options["months_ahead"])
            return
        if action == "heads":
            for head in ChainHead.objects.order_by("chain"):
                self.stdout.write(
                    f"chain {head.chain:2d}  seq {head.seq:>12,}  {bytes(head.last_hash).hex()}"
                )
            self.stdout.write("Keep a copy of these lines outside the platform: they anchor the chains.")
            return
        start = None
        if since:
            try:
                start = timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(since), dt.time.min))
            except ValueError:
                raise CommandError("--since: YYYY-MM-DD expected") from None
        report = verify(start, from_checkpoints=options["incremental"], save_checkpoints=start is None)
        if anchors:
            try:
                saved = parse_heads(Path(anchors).read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"--anchors: unreadable file ({exc.__class__.__name__})") from None
            report.broken.extend(check_anchors(saved))
        if report.ok:
            since_checkpoint = (
                f" since the checkpoints of {report.checkpoint_at:%Y-%m-%d %H:%M}"
                if report.checkpoint_at
                else ""
            )
            self.stdout.write(
                f"OK: {report.rows:,} rows in {report.chains} chains verified{since_checkpoint}."
            )
            return
        for line in report.broken:
            self.stdout.write(f"BROKEN {line}")
        raise CommandError(
            f"{len(report.broken)} chain(s) broken out of {report.chains}; {report.rows:,} rows read"
        )

    def _partitions(self, months_ahead: int) -> None:
        from django.db import connection

        from rempart.ledger.partitions import ensure_partitions, partition_sizes

        if connection.vendor != "postgresql":
            self.stdout.write("SQLite: the ledger is one table (partitions are a PostgreSQL feature).")
            return
        from django.db import DatabaseError

        try:
            created, skipped = ensure_partitions(months_ahead=months_ahead)
        except DatabaseError as exc:
            raise CommandError(
                f"cannot create partitions ({exc.__class__.__name__}): run this as the ledger table's owner"
            ) from None
        for name in created:
            self.stdout.write(f"created {name}")
        for name in skipped:
            self.stdout.write(
                f"SKIPPED {name}: rows for that month are in the default partition "
                "(see docs/incident-response.md, Ledger storage)"
            )
        for name, rows, size in partition_sizes():
            self.stdout.write(f"{name:32s} {rows:>14,} rows (estimate) {size / 1e6:>10,.1f} MB")
        if skipped:
            raise CommandError(f"{len(skipped)} month(s) skipped: their rows are in the default partition")
