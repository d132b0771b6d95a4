import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rempart.ledger import anchors, chain, verification
from rempart.ledger.models import ChainHead, VerificationRun


class Command(BaseCommand):
    help = (
        "The disclosure ledger: `verify [--since YYYY-MM-DD | --incremental] [--against-published [PATH …]]` "
        "recomputes its hash chains (a failure moves no checkpoint and is recorded); `anchor` signs every chain's "
        "head into the anchor directory (run it at least daily); `public-key` prints the anchors' key; `heads` "
        "prints the heads; `partitions [--months-ahead N]` creates the coming monthly partitions (PostgreSQL); "
        "`archive --month YYYY-MM [--dir D] [--dry-run]` moves a closed month to signed Parquet files "
        "(docs/ledger-archive.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "action", choices=("verify", "anchor", "public-key", "heads", "partitions", "archive")
        )
        parser.add_argument(
            "--months-ahead", type=int, default=12, help="partitions: months to create ahead (12)"
        )
        parser.add_argument("--since", help="verify only rows from this date (YYYY-MM-DD)")
        parser.add_argument("--month", help="archive: the closed month to archive (YYYY-MM)")
        parser.add_argument(
            "--dir", type=Path, help="archive: the archive directory (default REMPART_LEDGER_ARCHIVE_DIR)"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="archive: check and count, write and remove nothing"
        )
        parser.add_argument(
            "--incremental", action="store_true",
            help="verify: start each chain at the last checkpoint of a passing verification (fast, routine)",
        )  # fmt: skip
        parser.add_argument(
            "--against-published", nargs="*", metavar="PATH", type=Path,
            help="verify: also against signed anchors (files or directories; none given: the anchor directory), "
            "e.g. the copies an insurer kept",
        )  # fmt: skip
        parser.add_argument(
            "--public-key", action="append", default=[], type=Path, metavar="PEM",
            help="verify: also trust anchors signed by this key (a previous key, after a rotation)",
        )  # fmt: skip
        parser.add_argument(
            "--anchors", help="verify: a file saved from `rempart ledger heads` (unsigned, older form)"
        )
        parser.add_argument(
            "--accept-break", default="", metavar="REASON",
            help="anchor: sign even though the heads contradict the last anchor (the reason is signed with it)",
        )  # fmt: skip

    def handle(self, *args, action, since, **options):
        if action == "partitions":
            self._partitions(options["months_ahead"])
            return
        if action == "heads":
            for head in ChainHead.objects.order_by("chain"):
                self.stdout.write(
                    f"chain {head.chain:2d}  seq {head.seq:>12,}  {bytes(head.last_hash).hex()}"
                )
            self.stdout.write(
                "Signed anchors (`rempart ledger anchor`) are what to keep outside the platform."
            )
            return
        if action == "public-key":
            self.stdout.write(anchors.public_key_pem().rstrip())
            self.stdout.write(f"key id {anchors.key_id(anchors.public_key())}")
            return
        if action == "anchor":
            self._anchor(options["accept_break"])
            return
        if action == "archive":
            self._archive(options["month"], options["dir"], options["dry_run"])
            return
        self._verify(since, options["anchors"], options)

    def _anchor(self, accepted_break: str) -> None:
        try:
            anchor, path = anchors.sign_heads("command", accepted_break=accepted_break)
        except anchors.AnchorRefused as exc:
            for line in exc.problems:
                self.stdout.write(f"BROKEN {line}")
            raise CommandError(
                "anchor refused: the heads contradict what was anchored or verified before; nothing signed "
                "(the refusal is recorded). See docs/incident-response.md, 'Anchors'."
            ) from None
        except OSError as exc:
            raise CommandError(
                f"cannot write the anchor ({exc.__class__.__name__}: {exc.strerror})"
            ) from None
        rows = sum(head["seq"] for head in json.loads(anchor.document)["chains"])
        self.stdout.write(f"Anchor #{anchor.number} signed: {rows:,} rows in 16 chains; written to {path}")

    def _verify(self, since: str | None, heads_file: str | None, options) -> None:
        start = None
        if since:
            try:
                start = timezone.make_aware(dt.datetime.combine(dt.date.fromisoformat(since), dt.time.min))
            except ValueError:
                raise CommandError("--since: YYYY-MM-DD expected") from None
        saved = None
        if heads_file:
            try:
                saved = chain.parse_heads(Path(heads_file).read_text())
            except (OSError, ValueError) as exc:
                raise CommandError(f"--anchors: unreadable file ({exc.__class__.__name__})") from None
        try:
            keys = [anchors.read_public_key(path) for path in options["public_key"]]
        except (OSError, ValueError) as exc:
            raise CommandError(
                f"--public-key: not an Ed25519 public key in PEM ({exc.__class__.__name__})"
            ) from None
        incremental = options["incremental"] and start is None
        kind = VerificationRun.Kind.SINCE if start else (
            VerificationRun.Kind.INCREMENTAL if incremental else VerificationRun.Kind.FULL
        )  # fmt: skip
        outcome = verification.run(
            kind,
            since=start,
            from_checkpoints=incremental,
            published=options["against_published"],
            extra_keys=keys,
            heads=saved,
        )
        report = outcome.report
        if outcome.ok:
            since_checkpoint = (
                f" since the checkpoints of {timezone.localtime(report.checkpoint_at):%Y-%m-%d %H:%M}"
                if report.checkpoint_at
                else ""
            )
            self.stdout.write(
                f"OK: {report.rows:,} rows in {report.chains} chains verified{since_checkpoint}."
            )
            if outcome.newest_anchor:
                self.stdout.write(
                    f"Anchors: {outcome.anchors_checked} checked, up to {outcome.newest_anchor.label}: nothing "
                    "anchored was removed."
                )
            if outcome.cleared:
                self.stdout.write(
                    f"The failure found on {timezone.localtime(outcome.cleared.finished_at):%Y-%m-%d %H:%M} is "
                    "cleared: this complete verification passed."
                )
            return
        for line in outcome.all_problems:
            self.stdout.write(f"BROKEN {line}")
        self.stdout.write(
            f"Nothing saved: every checkpoint stays where it was; the failure is recorded (verification run "
            f"{outcome.run.pk}) and the ledger counts as altered until a complete verification passes."
        )
        raise CommandError(
            f"{len(outcome.all_problems)} problem(s) in {report.chains} chains; {outcome.run.rows:,} rows read"
        )

    def _archive(self, month: str | None, directory: Path | None, dry_run: bool) -> None:
        from rempart.ledger.archive import ArchiveError, archive_month
        from rempart.lib.progress import progress_bar

        if not month:
            raise CommandError("archive: --month YYYY-MM is required")
        with progress_bar(total=None, desc="rows", unit="rows") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                result = archive_month(month, directory=directory, dry_run=dry_run, progress=progress)
            except ArchiveError as exc:
                raise CommandError(f"archive refused: {exc}") from None
        if result.already:
            self.stdout.write(f"{result.month} is already archived in {result.directory}: nothing to do.")
        elif result.dry_run:
            self.stdout.write(
                f"Dry run: {result.rows:,} rows of {result.month} can be archived to {result.directory}; "
                "nothing written or removed."
            )
        else:
            self.stdout.write(
                f"Archived {result.month}: {result.rows:,} rows in {result.files} file(s), "
                f"{result.bytes / 1e6:,.1f} MB, in {result.directory} ({result.seconds:.1f} s); "
                "the month's rows left the database."
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
