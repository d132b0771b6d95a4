"""Import of an insurer's rights file: all good rows in one transaction, every bad row reported.

How it stays safe at any size:
- rows are checked and encrypted in Python, streamed into a temporary staging table
  (COPY on PostgreSQL), so memory stays bounded whatever the file size;
- checks that need the whole file (duplicates, a contract described two ways) run in SQL
  on the staging table;
- the merge into the registry is a handful of set-based statements inside the same
  transaction as the staging: a refusal, a crash or ``kill -9`` at any point leaves the
  registry exactly as it was;
- each row carries a keyed fingerprint, so re-importing a file rewrites nothing.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gc
import hashlib
import io
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.lib import csv_safe, metrics
from rempart.lib.crypto import field_cipher
from rempart.lib.progress import CountingReader, progress_bar
from rempart.registry import import_runs
from rempart.registry import rights_format as fmt
from rempart.registry.import_messages import describe, entry, to_json
from rempart.registry.models import ImportRun, Insurer
from rempart.registry.rights_staging import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    GC_THRESHOLD,
    STAGE_COLUMN_NAMES,
    STAGE_COLUMNS,
    ParallelStager,
    RowStager,
    chunked,
)

ENDED_MARK = 0  # fingerprint of a row ended by a full import: any later row differs (but with odds 2^-64)
# Files bigger than this may be checked and encrypted by worker processes while this process loads
# the staging table (see _default_workers); smaller ones always here.
PARALLEL_MIN_BYTES = 2 << 20


class FileRefused(Exception):
    """The file is wrong as a whole: nothing was changed. Carries a stable code and its parameters
    (rempart.registry.import_messages); ``str()`` is the English words, ``describe()`` the reader's."""

    def __init__(self, code: str, **params) -> None:
        super().__init__(code)
        self.code = code
        self.params = params
        self.run: ImportRun | None = None  # the run that recorded the refusal

    @property
    def message(self) -> dict:
        return entry(self.code, **self.params)

    def describe(self) -> str:
        return describe(self.message)

    def __str__(self) -> str:
        return describe(self.message, "en")


class _DryRunDone(Exception):
    pass


@dataclass
class ImportSummary:
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ended: int = 0
    contracts_ended: int = 0
    rejected: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    # A full file that would end more than the safety share: refused, unless forced; a dry run says so.
    above_threshold: bool = False
    warnings: list[dict] = field(default_factory=list)  # messages: code and parameters

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds else 0.0

    def as_text(self) -> str:
        """The summary in the active language (the command's ``--language``)."""
        rows = [
            (_("lignes lues"), f"{self.rows_read:>12,}"),
            (_("créées"), f"{self.created:>12,}"),
            (_("modifiées"), f"{self.updated:>12,}"),
            (_("inchangées"), f"{self.unchanged:>12,}"),
            (
                _("sorties"),
                f"{self.ended:>12,}  "
                + _("(bénéficiaires ; contrats clos : %(n)s)") % {"n": f"{self.contracts_ended:,}"},
            ),
            (_("rejetées"), f"{self.rejected:>12,}"),
            (
                _("durée"),
                f"{self.seconds:>12.1f} s  "
                + _("(%(rate)s lignes/s)") % {"rate": f"{self.rows_per_second:,.0f}"},
            ),
        ]
        lines = [f"{label:<16}{value}" for label, value in rows]
        if self.dry_run:
            lines.append(_("SIMULATION : rien n'a été modifié."))
        lines.extend(_("avertissement : %(text)s") % {"text": describe(w)} for w in self.warnings)
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- reading


class RightsFileReader:
    """Yields (line number, fields) for data rows; refuses a file wrong as a whole."""

    def __init__(self, stream: BinaryIO, amc_number: str, on_bytes=None) -> None:
        raw = CountingReader(stream, on_bytes or (lambda n: None))
        self._text = io.TextIOWrapper(io.BufferedReader(raw, 1 << 20), encoding="utf-8-sig", newline="")
        self._amc = amc_number
        self.data_rows = 0

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(self._text, delimiter=fmt.DELIMITER, strict=True)
        try:
            yield from self._rows(reader)
        except UnicodeDecodeError:
            raise FileRefused("not_utf8", line=reader.line_num + 1) from None
        except csv.Error:
            raise FileRefused("unreadable_csv", line=reader.line_num) from None

    def _rows(self, reader) -> Iterator[tuple[int, list[str]]]:
        magic = next(reader, None)
        if not magic or magic[0] != fmt.MAGIC:
            raise FileRefused("not_rights_file", expected=fmt.magic_line(self._amc))
        if len(magic) < 3 or magic[1] != fmt.VERSION:
            raise FileRefused("unsupported_version", version=fmt.VERSION)
        if magic[2] != self._amc:
            raise FileRefused("other_insurer")
        header = next(reader, None)
        if header is None or [name.strip() for name in header] != list(fmt.COLUMNS):
            raise FileRefused("wrong_header", expected=fmt.header_line())
        trailer: list[str] | None = None
        for fields in reader:
            if trailer is not None:
                if any(f.strip() for f in fields):
                    raise FileRefused("data_after_trailer", line=reader.line_num, trailer=fmt.TRAILER)
                continue
            if not fields or (not fields[0].strip() and not any(f.strip() for f in fields)):
                continue
            if fields[0] == fmt.TRAILER:
                trailer = fields
                continue
            self.data_rows += 1
            yield reader.line_num, fields
        if trailer is None:
            raise FileRefused("no_trailer", trailer=fmt.TRAILER)
        announced = trailer[1].strip() if len(trailer) > 1 else ""
        if not (announced.isascii() and announced.isdigit()) or int(announced) != self.data_rows:
            raise FileRefused(
                "trailer_count", trailer=fmt.TRAILER, announced=_announced(announced), found=self.data_rows
            )


# ---------------------------------------------------------------------------------------------- staging


class Staging:
    """A temporary table holding the file's rows for set-based checks and the merge."""

    def __init__(self) -> None:
        self.vendor = connection.vendor
        self.cursor = connection.cursor()
        blob = "bytea" if self.vendor == "postgresql" else "blob"
        columns = ", ".join(f"{name} {kind.replace('bytea', blob)}" for name, kind in STAGE_COLUMNS)
        names = ", ".join(STAGE_COLUMN_NAMES)
        self._copy = None
        self._copy_stack = contextlib.ExitStack()
        if self.vendor == "postgresql":
            self._tune_postgresql()
            self.cursor.execute("DROP TABLE IF EXISTS rempart_stage")
            self.cursor.execute(f"CREATE TEMP TABLE rempart_stage ({columns}) ON COMMIT DROP")
            self._copy_sql = f"COPY rempart_stage ({names}) FROM STDIN (FORMAT BINARY)"
        else:
            self.cursor.execute("DROP TABLE IF EXISTS rempart_stage")
            self.cursor.execute(f"CREATE TEMP TABLE rempart_stage ({columns})")
            marks = ", ".join(["%s"] * len(STAGE_COLUMNS))
            self._insert_sql = f"INSERT INTO rempart_stage ({names}) VALUES ({marks})"  # noqa: S608

    def _tune_postgresql(self) -> None:
        """Memory for this transaction's sorts, hashes and staging table (defaults are tiny)."""
        self.cursor.execute("SET LOCAL work_mem = '64MB'")
        self.cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        try:  # possible only before the session's first use of a temporary table
            with transaction.atomic():
                self.cursor.execute("SET LOCAL temp_buffers = '256MB'")
        except DatabaseError:
            pass

    @property
    def binary(self) -> bool:
        """Whether the stager should encode rows as PostgreSQL binary COPY data."""
        return self.vendor == "postgresql"

    def add_chunk(self, payload) -> None:
        """Load one chunk encoded by the RowStager (binary COPY data, or tuples for SQLite).

        PostgreSQL: one COPY for the whole file, so the server stores a chunk while the next one is
        being checked, instead of making this process wait for it.
        """
        if self.vendor == "postgresql":
            if self._copy is None:
                self._copy = self._copy_stack.enter_context(self.cursor.cursor.copy(self._copy_sql))
                self._copy.write(COPY_SIGNATURE)
            self._copy.write(payload)
        elif payload:
            self.cursor.executemany(self._insert_sql, payload)

    def end_copy(self, aborted: bool = False) -> None:
        """Close the COPY (PostgreSQL): complete it, or make the server discard it."""
        if self._copy is None:
            return
        copy, self._copy = self._copy, None
        if aborted:
            error = RuntimeError("import aborted")
            self._copy_stack.__exit__(RuntimeError, error, None)  # the server is told the COPY failed
        else:
            copy.write(COPY_TRAILER)
            self._copy_stack.close()

    def finish_loading(self, hash_plans: bool = False) -> None:
        """Index and describe the loaded rows. ``hash_plans``: the file is big next to what the registry
        holds for the insurer, so PostgreSQL is told to join by hashing (see _plan_for_size); it then
        has no use for an index on the staging table."""
        if self.vendor == "postgresql":
            self.cursor.execute("ANALYZE rempart_stage (row_no, adherent, member, rejected, contract_fp)")
            if hash_plans:
                self.cursor.execute("SET LOCAL enable_nestloop = off")
                return
        self.cursor.execute("CREATE INDEX rempart_stage_key ON rempart_stage (adherent, member)")

    def drop(self) -> None:
        if self.vendor != "postgresql":
            self.cursor.execute("DROP TABLE IF EXISTS rempart_stage")

    def fetch(self, sql: str, params: Iterable = ()) -> list[tuple]:
        self.cursor.execute(sql, list(params))
        return self.cursor.fetchall()

    def execute(self, sql: str, params: Iterable = ()) -> int:
        self.cursor.execute(sql, list(params))
        return self.cursor.rowcount


# ---------------------------------------------------------------------------------------------- errors


ERROR_COLUMNS = ("line", "column", "reason", "code", "params")


def _announced(text: str) -> str:
    """What a trailer announces, as shown in a refusal: digits, or a mark that it is not a count."""
    return text[:12] if text.isascii() and text.isdigit() else "?"


class ErrorReport:
    """Bad rows, written as they are found: line, column, reason in the import's language, and the reason's
    code and parameters (never the value), from which the portal words it again in its reader's language."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._handle = None
        self._writer = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = path.open("w", encoding="utf-8", newline="")
            self._writer = csv_safe.writer(self._handle)
            self._writer.writerow(ERROR_COLUMNS)

    def add(self, line: int, column: str, message: dict) -> None:
        self.count += 1
        if self._writer is not None:
            self._writer.writerow([line, column, describe(message), message["code"], to_json(message)])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


# ---------------------------------------------------------------------------------------------- the import


def import_rights(
    source: Path | BinaryIO,
    insurer: Insurer,
    *,
    mode: str = "delta",
    dry_run: bool = False,
    force: bool = False,
    report_dir: Path | None = None,
    show_progress: bool | None = None,
    today: dt.date | None = None,
    workers: int | None = None,
    file_name: str | None = None,
    on_progress=None,
) -> tuple[ImportRun, ImportSummary]:
    """Import a rights file for one insurer. Returns the recorded run and its summary.

        Raises FileRefused (after recording it) when the file is wrong as a whole. ``workers``: processes
        checking and encrypting rows (0: this process only; default: by file size and CPUs). ``file_name``: the
        name the run is listed under (the portal's uploaded name; by default the file's own). ``on_progress(done,
    total)``: bytes read so far, fed from the same place as the terminal's bar (the portal's job page). A dry run of a full
        file above the safety share goes on and says what it would do (``summary.above_threshold``).
    """
    if mode not in ("full", "delta"):
        raise ValueError("mode must be 'full' or 'delta'")
    today = today or timezone.localdate()
    name = file_name or (source.name if isinstance(source, Path) else getattr(source, "name", "<stream>"))
    run = ImportRun.objects.create(
        insurer=insurer, kind="rights", mode=mode, file_name=str(name)[:255], **import_runs.process_fields()
    )
    report_dir = (
        report_dir or Path(settings.VAR_DIR) / "imports" / f"{run.pk:06d}-rights-{insurer.amc_number}"
    )
    report = ErrorReport(report_dir / "errors.csv")
    summary = ImportSummary(dry_run=dry_run)
    started = time.monotonic()
    digest = hashlib.sha256()
    status, refusal = ImportRun.Status.FAILED, None
    handle = source.open("rb") if isinstance(source, Path) else source
    try:
        total = source.stat().st_size if isinstance(source, Path) else None
        if workers is None:
            workers = _default_workers(total)
        with progress_bar(total, f"import {insurer.amc_number}", enabled=show_progress) as bar:
            read = [0]  # counted here: a disabled tqdm bar does not count

            def on_bytes(size: int) -> None:
                bar.update(size)
                if on_progress is not None:
                    read[0] += size
                    on_progress(read[0], total)

            reader = RightsFileReader(_Hashing(handle, digest), insurer.amc_number, on_bytes)
            try:
                with import_runs.Heartbeat(run) as heartbeat, transaction.atomic():
                    _import_in_transaction(
                        reader, insurer, mode, force, today, report, summary, workers, dry_run=dry_run
                    )
                    if dry_run:
                        raise _DryRunDone
                    heartbeat.stop()
                    _mark_done_in_transaction(run, summary, digest, report_dir, started)
            except _DryRunDone:
                pass
        status = ImportRun.Status.DRY_RUN if dry_run else ImportRun.Status.SUCCEEDED
        if not dry_run:
            metrics.record_import("rights", summary.rows_read - summary.rejected, summary.rejected)
    except FileRefused as exc:
        status, refusal = ImportRun.Status.REFUSED, exc.message
        exc.run = run
        raise
    finally:
        report.close()
        if isinstance(source, Path):
            handle.close()
        summary.seconds = time.monotonic() - started
        run.status, run.message = status, ""
        run.notes = [refusal] if refusal else list(summary.warnings)
        run.file_sha256 = digest.hexdigest()
        run.counts = _counts(summary)
        run.finished_at = timezone.now()
        run.report_dir = str(report_dir)
        run.save(
            update_fields=["status", "message", "notes", "file_sha256", "counts", "finished_at", "report_dir"]
        )
        (report_dir / "summary.txt").write_text(
            f"#{run.pk} — {insurer} — {mode} — {status}\n{describe(refusal)}\n{summary.as_text()}\n",
            encoding="utf-8",
        )
    return run, summary


def _mark_done_in_transaction(
    run: ImportRun, summary: ImportSummary, digest, report_dir: Path, started: float
) -> None:
    """The run's outcome, written in the merge's own transaction: a committed merge carries its "done"
    mark, even if the process is killed before it writes the rest (docs/registry.md, section 5)."""
    counts = _counts(summary)
    counts["seconds"] = time.monotonic() - started
    ImportRun.objects.filter(pk=run.pk).update(
        status=ImportRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        counts=counts,
        file_sha256=digest.hexdigest(),
        report_dir=str(report_dir),
        message="",
        notes=list(summary.warnings),
    )


def _counts(summary: ImportSummary) -> dict:
    counts = {k: v for k, v in asdict(summary).items() if k not in ("warnings", "dry_run", "above_threshold")}
    if summary.above_threshold:
        counts["above_threshold"] = True
    return counts


class _Hashing:
    """Hash the file's bytes as they are read (the run keeps the file's SHA-256)."""

    def __init__(self, raw: BinaryIO, digest) -> None:
        self._raw, self._digest = raw, digest

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._digest.update(data)
        return data


def _default_workers(size: int | None) -> int:
    """Worker processes for a file: REMPART_IMPORT_WORKERS if set, else none for small files or on
    machines with 2 CPUs or fewer (the database needs one: measured slower there, see
    docs/benchmarks.md), else one per spare CPU, at most 4."""
    configured = getattr(settings, "REMPART_IMPORT_WORKERS", None) or os.environ.get("REMPART_IMPORT_WORKERS")
    if configured not in (None, ""):
        return int(configured)
    cpus = os.cpu_count() or 1
    if size is None or size < PARALLEL_MIN_BYTES or cpus <= 2:
        return 0
    return min(cpus - 1, 4)


def _import_in_transaction(
    reader, insurer, mode, force, today, report, summary, workers=0, *, dry_run: bool = False
) -> None:
    products = dict(insurer.products.values_list("code", "id"))
    stage = Staging()
    stager = RowStager(insurer.amc_number, products, field_cipher(), binary=stage.binary)
    parallel = ParallelStager(stager, workers) if workers > 0 else None
    # Millions of short-lived lists and tuples: collecting cycles every 700 allocations (the default)
    # would cost a fifth of the time, and none are made here.
    gc_thresholds = gc.get_threshold()
    gc.set_threshold(max(gc_thresholds[0], GC_THRESHOLD), *gc_thresholds[1:])
    try:
        chunks = chunked(_counted(reader.rows(), summary))
        results = parallel.stage(chunks) if parallel else map(stager.stage, chunks)
        for errors, payload in results:
            for row_no, column, reason in errors:
                report.add(row_no, column, reason)
            stage.add_chunk(payload)
        stage.end_copy()
        gc.set_threshold(*gc_thresholds)
        stage.finish_loading(hash_plans=_plan_for_size(stage, insurer, summary.rows_read))
        _reject_whole_file_conflicts(stage, report)
        summary.rejected = report.count
        if mode == "full":
            _end_absent(stage, insurer, force, today, summary, dry_run=dry_run)
        _merge(stage, insurer, summary)
    finally:
        gc.set_threshold(*gc_thresholds)
        if parallel is not None:
            parallel.close()
        stage.end_copy(aborted=True)  # only if still open: an error while loading
        stage.drop()


def _plan_for_size(stage: Staging, insurer: Insurer, rows: int) -> bool:
    """Whether the file is big next to the insurer's part of the registry (a first load, a full file).

    The statements below then touch most of the insurer's rows, which hash joins do best; but right
    after big loads the registry's statistics are stale and PostgreSQL would pick nested loops of
    index probes, tens of times slower. Small files (deltas) keep the planner's own choice.
    """
    if rows < 5000:
        return False
    ids = _contract_ids(stage, insurer)
    return ids is None or rows * 2 >= ids[1] - ids[0] + 1


def _counted(
    rows: Iterator[tuple[int, list[str]]], summary: ImportSummary
) -> Iterator[tuple[int, list[str]]]:
    for row in rows:
        summary.rows_read += 1
        yield row


def _reject_whole_file_conflicts(stage: Staging, report: ErrorReport) -> None:
    """Duplicated beneficiaries and contracts described two ways: found in SQL, reported per row."""
    duplicates = stage.fetch(
        """SELECT s.row_no, f.first_row FROM rempart_stage s
           JOIN (SELECT adherent, member, MIN(row_no) AS first_row FROM rempart_stage
                 WHERE rejected = 0 GROUP BY adherent, member HAVING COUNT(*) > 1) f
             ON f.adherent = s.adherent AND f.member = s.member
           WHERE s.rejected = 0 AND s.row_no <> f.first_row ORDER BY s.row_no"""
    )
    for row_no, first_row in duplicates:
        report.add(row_no, "member_number", entry("duplicate_member", first=first_row))
    if duplicates:
        stage.execute(
            """UPDATE rempart_stage SET rejected = 1 WHERE rejected = 0 AND row_no NOT IN (
                   SELECT MIN(row_no) FROM rempart_stage WHERE rejected = 0 GROUP BY adherent, member)"""
        )
    # The contract's fields are all in its fingerprint: rows that describe it differently differ there.
    # MIN <> MAX finds them in one hashed pass (COUNT(DISTINCT ...) would sort the whole file).
    conflicts = stage.fetch(
        """SELECT s.row_no, f.first_row FROM rempart_stage s
           JOIN (SELECT adherent, MIN(row_no) AS first_row FROM rempart_stage WHERE rejected = 0
                 GROUP BY adherent HAVING MIN(contract_fp) <> MAX(contract_fp)) f ON f.adherent = s.adherent
           WHERE s.rejected = 0 ORDER BY s.row_no"""
    )
    for row_no, first_row in conflicts:
        report.add(row_no, "adherent_number", entry("contract_conflict", first=first_row))
    if conflicts:
        stage.execute(
            """UPDATE rempart_stage SET rejected = 1 WHERE rejected = 0 AND adherent IN (
                   SELECT adherent FROM rempart_stage WHERE rejected = 0
                   GROUP BY adherent HAVING MIN(contract_fp) <> MAX(contract_fp))"""
        )


def _contract_ids(stage: Staging, insurer: Insurer) -> tuple[int, int] | None:
    """The range of the insurer's contract ids: lets the database read only that part of the
    beneficiary table (its unique index starts with the contract id), never the whole registry."""
    # PostgreSQL: OFFSET 0 makes it read the insurer's contracts by index, not the whole table by id.
    fence = " OFFSET 0" if stage.vendor == "postgresql" else ""
    [(low, high)] = stage.fetch(
        f"SELECT MIN(id), MAX(id) FROM (SELECT id FROM registry_contract WHERE insurer_id = %s{fence}) c",  # noqa: S608 - constant SQL
        [insurer.pk],
    )
    return None if low is None else (low, high)


def _end_absent(
    stage: Staging,
    insurer: Insurer,
    force: bool,
    today: dt.date,
    summary: ImportSummary,
    *,
    dry_run: bool = False,
) -> None:
    """Full import: end what the file no longer lists — unless that is suspiciously much. A dry run goes
    past the safety share (nothing is kept) to say what the file would do, forced."""
    [(unreadable,)] = stage.fetch("SELECT COUNT(*) FROM rempart_stage WHERE adherent = ''")
    if unreadable:
        summary.warnings.append(entry("unreadable_adherents", count=unreadable))
        return
    ids = _contract_ids(stage, insurer)
    if ids is None:
        return  # nothing to end
    [(open_contracts, to_end)] = stage.fetch(
        """SELECT COUNT(*), COALESCE(SUM(CASE WHEN s.adherent IS NULL THEN 1 ELSE 0 END), 0)
           FROM registry_contract c LEFT JOIN (SELECT DISTINCT adherent FROM rempart_stage) s
             ON s.adherent = c.adherent_number
           WHERE c.insurer_id = %s AND c.status <> 'terminated'""",
        [insurer.pk],
    )
    limit = settings.REMPART_FULL_IMPORT_MAX_END_SHARE
    if open_contracts and to_end / open_contracts > limit:
        summary.above_threshold = True
        shares = {
            "to_end": to_end,
            "open": open_contracts,
            "share": round(100 * to_end / open_contracts),
            "limit": round(100 * limit),
        }
        if dry_run and not force:
            summary.warnings.append(entry("above_threshold_dry_run", **shares))
        elif not force:
            raise FileRefused("above_threshold", **shares)
        else:
            summary.warnings.append(entry("forced"))
    yesterday = today - dt.timedelta(days=1)
    # Ended: the insurer's beneficiaries whose (adherent, member) the file does not list, unless a
    # rejected row names their contract without a readable member number.
    if stage.vendor == "postgresql":
        ended_sql = """UPDATE registry_beneficiary b SET fingerprint = %s,
               coverage_end = CASE WHEN coverage_end IS NULL OR coverage_end > %s THEN %s ELSE coverage_end END
           FROM registry_contract c
           WHERE b.fingerprint <> %s AND b.contract_id BETWEEN %s AND %s
             AND c.id = b.contract_id AND c.insurer_id = %s
             AND NOT EXISTS (SELECT 1 FROM rempart_stage s
                             WHERE s.adherent = c.adherent_number AND s.member = b.member_number)
             AND NOT EXISTS (SELECT 1 FROM rempart_stage s WHERE s.adherent = c.adherent_number AND s.member IS NULL)"""
        ended_params = [ENDED_MARK, yesterday, yesterday, ENDED_MARK, *ids, insurer.pk]
    else:
        ended_sql = """UPDATE registry_beneficiary SET fingerprint = %s,
               coverage_end = CASE WHEN coverage_end IS NULL OR coverage_end > %s THEN %s ELSE coverage_end END
           WHERE fingerprint <> %s AND contract_id BETWEEN %s AND %s
             AND contract_id IN (SELECT id FROM registry_contract WHERE insurer_id = %s)
             AND NOT EXISTS (
               SELECT 1 FROM rempart_stage s JOIN registry_contract c ON c.adherent_number = s.adherent
               WHERE c.id = registry_beneficiary.contract_id AND c.insurer_id = %s
                 AND s.member = registry_beneficiary.member_number)
             AND NOT EXISTS (
               SELECT 1 FROM rempart_stage s JOIN registry_contract c ON c.adherent_number = s.adherent
               WHERE c.id = registry_beneficiary.contract_id AND c.insurer_id = %s AND s.member IS NULL)"""
        ended_params = [
            ENDED_MARK,
            yesterday,
            yesterday,
            ENDED_MARK,
            *ids,
            insurer.pk,
            insurer.pk,
            insurer.pk,
        ]
    summary.ended = stage.execute(ended_sql, ended_params)
    if to_end:
        summary.contracts_ended = stage.execute(
            """UPDATE registry_contract SET status = 'terminated', fingerprint = %s,
                   end_date = CASE WHEN end_date IS NULL OR end_date > %s THEN %s ELSE end_date END
               WHERE insurer_id = %s AND status <> 'terminated'
                 AND NOT EXISTS (SELECT 1 FROM rempart_stage s WHERE s.adherent = registry_contract.adherent_number)""",
            [ENDED_MARK, yesterday, yesterday, insurer.pk],
        )


# One row per contract, the first of the file: contracts are created in file order, so their ids and
# their beneficiaries' (contract, member) index entries grow with the file (compact indexes).
_FIRST_ROW_OF_CONTRACT = (
    """row_no IN (SELECT MIN(row_no) FROM rempart_stage WHERE rejected = 0 GROUP BY adherent)"""
)
_COPIED = (
    "quality", "last_name", "first_name", "sex", "birth_year", "birth_month", "birth_day", "birth_rank",
    "nir_cipher", "nir_index", "od_nir_cipher", "od_nir_index", "coverage_start", "coverage_end",
)  # fmt: skip
_BENEFICIARY_COLUMNS = ", ".join(_COPIED)
_STAGED_COLUMNS = ", ".join(f"s.{name}" for name in _COPIED)


def _merge(stage: Staging, insurer: Insurer, summary: ImportSummary) -> None:
    """Write the file's good rows: new ones inserted, changed ones updated, unchanged ones untouched."""
    if stage.vendor == "postgresql":
        _merge_postgresql(stage, insurer, summary)
        return
    _count_changes(stage, insurer, summary)
    stage.execute(
        f"""INSERT INTO registry_contract
               (insurer_id, adherent_number, product_id, start_date, end_date, status, fingerprint)
           SELECT %s, adherent, product_id, contract_start, contract_end, contract_status, contract_fp
           FROM rempart_stage WHERE {_FIRST_ROW_OF_CONTRACT}
           ON CONFLICT (insurer_id, adherent_number) DO UPDATE SET
               product_id = excluded.product_id, start_date = excluded.start_date,
               end_date = excluded.end_date, status = excluded.status, fingerprint = excluded.fingerprint
           WHERE registry_contract.fingerprint <> excluded.fingerprint""",  # noqa: S608 - constant SQL
        [insurer.pk],
    )
    stage.execute(
        f"""INSERT INTO registry_beneficiary (contract_id, member_number, {_BENEFICIARY_COLUMNS}, fingerprint)
           SELECT c.id, s.member, {_STAGED_COLUMNS}, s.fp
           FROM rempart_stage s JOIN registry_contract c ON c.insurer_id = %s AND c.adherent_number = s.adherent
           WHERE s.rejected = 0
           ON CONFLICT (contract_id, member_number) DO UPDATE SET
               quality = excluded.quality, last_name = excluded.last_name, first_name = excluded.first_name,
               sex = excluded.sex, birth_year = excluded.birth_year, birth_month = excluded.birth_month,
               birth_day = excluded.birth_day, birth_rank = excluded.birth_rank,
               nir_cipher = excluded.nir_cipher, nir_index = excluded.nir_index,
               od_nir_cipher = excluded.od_nir_cipher, od_nir_index = excluded.od_nir_index,
               coverage_start = excluded.coverage_start, coverage_end = excluded.coverage_end,
               fingerprint = excluded.fingerprint
           WHERE registry_beneficiary.fingerprint <> excluded.fingerprint""",  # noqa: S608 - constant SQL
        [insurer.pk],
    )


def _count_changes(stage: Staging, insurer: Insurer, summary: ImportSummary) -> None:
    [(created, unchanged, updated)] = stage.fetch(
        """SELECT
             COALESCE(SUM(CASE WHEN b.id IS NULL THEN 1 ELSE 0 END), 0),
             COALESCE(SUM(CASE WHEN b.id IS NOT NULL AND b.fingerprint = s.fp THEN 1 ELSE 0 END), 0),
             COALESCE(SUM(CASE WHEN b.id IS NOT NULL AND b.fingerprint <> s.fp THEN 1 ELSE 0 END), 0)
           FROM rempart_stage s
           LEFT JOIN registry_contract c ON c.insurer_id = %s AND c.adherent_number = s.adherent
           LEFT JOIN registry_beneficiary b ON b.contract_id = c.id AND b.member_number = s.member
           WHERE s.rejected = 0""",
        [insurer.pk],
    )
    summary.created, summary.unchanged, summary.updated = int(created), int(unchanged), int(updated)


def _merge_postgresql(stage: Staging, insurer: Insurer, summary: ImportSummary) -> None:
    """Plain UPDATE and INSERT rather than INSERT ... ON CONFLICT, which locks (so rewrites) every
    existing row it meets, even unchanged ones, and costs a speculative insertion per new row."""
    stage.execute(
        f"""UPDATE registry_contract c SET product_id = s.product_id, start_date = s.contract_start,
               end_date = s.contract_end, status = s.contract_status, fingerprint = s.contract_fp
           FROM rempart_stage s
           WHERE c.insurer_id = %s AND c.adherent_number = s.adherent AND c.fingerprint <> s.contract_fp
             AND s.{_FIRST_ROW_OF_CONTRACT}""",  # noqa: S608 - constant SQL
        [insurer.pk],
    )
    stage.execute(
        f"""INSERT INTO registry_contract
               (insurer_id, adherent_number, product_id, start_date, end_date, status, fingerprint)
           SELECT %s, adherent, product_id, contract_start, contract_end, contract_status, contract_fp
           FROM rempart_stage s WHERE s.{_FIRST_ROW_OF_CONTRACT}
             AND NOT EXISTS (SELECT 1 FROM registry_contract c
                             WHERE c.insurer_id = %s AND c.adherent_number = s.adherent)""",  # noqa: S608
        [insurer.pk, insurer.pk],
    )
    ids = _contract_ids(stage, insurer)
    if ids is None:
        return
    summary.updated = stage.execute(
        f"""UPDATE registry_beneficiary b SET
               ({_BENEFICIARY_COLUMNS}, fingerprint) = ({_STAGED_COLUMNS}, s.fp)
           FROM rempart_stage s JOIN registry_contract c ON c.insurer_id = %s AND c.adherent_number = s.adherent
           WHERE s.rejected = 0 AND b.contract_id BETWEEN %s AND %s AND b.contract_id = c.id
             AND b.member_number = s.member AND b.fingerprint <> s.fp""",  # noqa: S608 - constant SQL
        [insurer.pk, *ids],
    )
    summary.created = stage.execute(
        f"""INSERT INTO registry_beneficiary (contract_id, member_number, {_BENEFICIARY_COLUMNS}, fingerprint)
           SELECT c.id, s.member, {_STAGED_COLUMNS}, s.fp
           FROM rempart_stage s JOIN registry_contract c ON c.insurer_id = %s AND c.adherent_number = s.adherent
           WHERE s.rejected = 0 AND NOT EXISTS (
               SELECT 1 FROM registry_beneficiary b WHERE b.contract_id BETWEEN %s AND %s
                 AND b.contract_id = c.id AND b.member_number = s.member)""",  # noqa: S608 - constant SQL
        [insurer.pk, *ids],
    )
    ok_rows = summary.rows_read - summary.rejected
    summary.unchanged = ok_rows - summary.created - summary.updated
