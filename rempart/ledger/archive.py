"""Archiving a closed month of the disclosure ledger to Parquet (``rempart ledger archive``, docs/ledger-archive.md).

Order of the steps, so that a crash anywhere leaves the ledger whole: the month's rows are read in chain order and
written to a scratch directory (one file per chain segment, sorted for scopes), fsynced, signed into a manifest,
re-read and checked row by row (every hash recomputed) against what the database returned; the directory then
takes the month's name; only then do the rows leave the database, in one transaction (PostgreSQL: the month's
partition is detached and dropped by the table's owner; SQLite: one DELETE). A crash before that commit leaves the
rows in place and the next run rewrites the files: archiving is idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from rempart.ledger import archive_manifest as am
from rempart.ledger import archive_read, chain
from rempart.ledger.archive_manifest import ArchiveError
from rempart.ledger.models import Disclosure
from rempart.ledger.partitions import partition_name

# The columns read from the database: the chain file's, with prev_hash (checked, then left to the manifest).
READ_COLUMNS = ("prev_hash", *am.SCHEMA.names)
Progress = Callable[[int, int], None]
COPY_MEMORY = "2GB"  # DuckDB's memory for sorting a month into its scope copies (it spills beyond)


@dataclass
class ArchiveResult:
    month: str
    rows: int
    files: int = 0
    bytes: int = 0
    directory: Path | None = None
    removed: bool = False  # the rows left the database
    dry_run: bool = False
    already: bool = False  # archived before: nothing to do
    seconds: float = 0.0


def parse_month(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise ArchiveError("--month: YYYY-MM expected") from None


def bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


# --- files


def segment_entry(table: pa.Table, first_prev_hash: bytes) -> dict:
    """A chain file's manifest entry from its rows in seq order (one chain): endpoints and checkpoints."""
    seqs = table.column("seq").to_pylist()
    hashes = table.column("row_hash")
    checkpoints = [
        [seqs[i], hashes[i].as_py().hex()]
        for i in range(am.CHECKPOINT_EVERY - 1, len(seqs) - 1, am.CHECKPOINT_EVERY)
    ]
    created = table.column("created_at")
    return {
        "chain": int(table.column("chain")[0].as_py()),
        "rows": table.num_rows,
        "first_seq": seqs[0],
        "first_prev_hash": bytes(first_prev_hash).hex(),
        "last_seq": seqs[-1],
        "last_hash": hashes[-1].as_py().hex(),
        "min_created_at": pc.min(created).as_py().isoformat(),
        "max_created_at": pc.max(created).as_py().isoformat(),
        "checkpoints": checkpoints,
    }


def ip_keys(addresses: pa.ChunkedArray | pa.Array) -> pa.Array:
    """ip_key of each address, computed once per distinct address (a file holds few)."""
    encoded = pc.dictionary_encode(addresses)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    keys = pa.array([am.ip_key(a) for a in encoded.dictionary.to_pylist()], pa.binary())
    return keys.take(encoded.indices)


def write_segment(directory: Path, name: str, table: pa.Table, first_prev_hash: bytes) -> dict:
    """Write one chain segment (rows in seq order, am.SCHEMA; ``first_prev_hash``: what its first row links to) as
    it is, fsynced, and stage its scope columns for the month's copies. Returns its manifest entry."""
    entry = segment_entry(table, first_prev_hash)
    path = directory / name
    pq.write_table(
        table,
        path,
        row_group_size=am.ROW_GROUP_ROWS,
        compression="zstd",
        write_statistics=True,
        use_dictionary=[
            n for n in am.SCHEMA.names if n not in am.DELTA_COLUMNS and n not in am.PLAIN_COLUMNS
        ],
        column_encoding={**dict.fromkeys(am.DELTA_COLUMNS, "DELTA_BINARY_PACKED"), **am.PLAIN_COLUMNS},
        dictionary_pagesize_limit=64 << 20,
    )
    am.fsync_path(path)
    stage = directory / am.STAGE
    stage.mkdir(exist_ok=True)
    columns = {
        n: ip_keys(table.column("ip_address")) if n == "ip_key" else table.column(n)
        for n in am.SCOPE_SCHEMA.names
    }
    pq.write_table(pa.table(columns, schema=am.SCOPE_SCHEMA), stage / name, compression="zstd")
    return {"name": name, "bytes": path.stat().st_size, "sha256": am.sha256_of(path), **entry}


def _enum(db, source: str, column: str) -> str:
    """A DuckDB ENUM of a low-cardinality text column (sorted as small integers, written back as text), or the
    column as it is when it has too many values."""
    sql = f"SELECT DISTINCT {column} FROM {source} WHERE {column} IS NOT NULL LIMIT 10001"  # noqa: S608
    values = sorted(v for (v,) in db.execute(sql).fetchall())
    if not values or len(values) > 10_000:
        return column
    members = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"CAST({column} AS ENUM({members})) AS {column}"


def write_scope_copies(directory: Path) -> dict[str, dict]:
    """Sort the month's staged rows into its scope copies, fsynced; the stage is removed. DuckDB sorts (bounded
    memory, spilling to the scratch directory) and streams the sorted rows to pyarrow, which writes them with a
    page index. Returns the copies' manifest entries."""
    stage = directory / am.STAGE
    db = archive_read.connect()
    db.execute(f"SET memory_limit = '{COPY_MEMORY}'")
    db.execute("SET temp_directory = ?", [str(stage / "spill")])
    source = f"read_parquet({archive_read._quoted(sorted(stage.glob('*.parquet')))})"
    enums = {n: _enum(db, source, n) for n in ("channel", "purpose", "outcome", "fields")}
    entries = {}
    try:
        for copy, keys in am.SCOPE_COPIES.items():
            names = am.SCOPE_COPY_COLUMNS[copy]
            schema = pa.schema([am.SCOPE_SCHEMA.field(n) for n in names])
            select = ", ".join(enums.get(n, n) for n in names)
            order = ", ".join(f"{k} ASC NULLS LAST" for k in keys)
            path = directory / am.scope_file(copy)
            sql = f"SELECT {select} FROM {source} ORDER BY {order}"  # noqa: S608
            with pq.ParquetWriter(
                path,
                schema,
                compression="zstd",
                write_statistics=True,
                write_page_index=True,
                max_rows_per_page=am.SCOPE_PAGE_ROWS,
                data_page_version="2.0",
                use_dictionary=[n for n in names if n not in am.SCOPE_DELTA_COLUMNS],
                column_encoding=dict.fromkeys(am.SCOPE_DELTA_COLUMNS, "DELTA_BINARY_PACKED"),
                sorting_columns=[pq.SortingColumn(names.index(k), nulls_first=False) for k in keys],
            ) as writer:
                rows = _write_groups(writer, schema, archive_read.batches(db, sql, size=65_536))
            am.fsync_path(path)
            entries[copy] = {"name": path.name, "bytes": path.stat().st_size, "sha256": am.sha256_of(path),
                             "rows": rows, "sort": list(keys)}  # fmt: skip
    finally:
        db.close()
    shutil.rmtree(stage)
    return entries


def _write_groups(writer: pq.ParquetWriter, schema: pa.Schema, batches) -> int:
    """Stream batches into row groups of exactly SCOPE_ROW_GROUP_ROWS rows (the last one shorter)."""
    size, pending, rows = am.SCOPE_ROW_GROUP_ROWS, [], 0
    for batch in batches:
        pending.append(pa.Table.from_batches([batch]).cast(schema))
        rows += batch.num_rows
        if sum(t.num_rows for t in pending) >= size:
            table = pa.concat_tables(pending)
            while table.num_rows >= size:
                writer.write_table(table.slice(0, size), row_group_size=size)
                table = table.slice(size)
            pending = [table]
    if pending and sum(t.num_rows for t in pending):
        writer.write_table(pa.concat_tables(pending), row_group_size=size)
    return rows


def write_manifest(
    directory: Path,
    month: str,
    start: dt.datetime,
    end: dt.datetime,
    entries: list[dict],
    scope_entries: dict[str, dict],
) -> dict:
    document = am.sign(
        {
            "month": month,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "archived_at": timezone.now().astimezone(dt.UTC).isoformat(),
            "rows": sum(e["rows"] for e in entries),
            "sort": ["seq"],
            "row_group_rows": am.ROW_GROUP_ROWS,
            "files": entries,
            "scope_files": scope_entries,
            "scope_row_group_rows": am.SCOPE_ROW_GROUP_ROWS,
        }
    )
    path = directory / am.MANIFEST
    path.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    am.fsync_path(path)
    am.fsync_path(directory)
    return document


def _table(rows: list[tuple]) -> tuple[pa.Table, bytes]:
    """Database rows (READ_COLUMNS) as a chain file's table, and the first row's prev_hash. Each row's prev_hash
    must be the row before's row_hash: the file keeps only the first one (in the manifest)."""
    columns = {name: [] for name in READ_COLUMNS}
    for values in rows:
        for name, value in zip(READ_COLUMNS, values, strict=True):
            columns[name].append(bytes(value) if isinstance(value, memoryview) else value)
    prev, hashes = columns.pop("prev_hash"), columns["row_hash"]
    for i in range(1, len(hashes)):
        if prev[i] != hashes[i - 1]:
            raise ArchiveError(
                f"chain {columns['chain'][i]}: seq {columns['seq'][i]} does not link to the row before"
            )
    columns["fields"] = [json.dumps(v) for v in columns["fields"]]
    try:
        return pa.table(columns, schema=am.SCHEMA), prev[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a row_hash that is not 32 bytes
        raise ArchiveError(
            "a row does not have the ledger's form (altered): the month is not archived"
        ) from None


def _write_month(
    scratch: Path, rows_of_month, total: int, progress: Progress | None
) -> tuple[list[dict], str]:
    """Stream the month in chain order into files; returns the entries and a digest of (chain, seq, hash)."""
    entries, pending, done = [], [], 0
    digest = hashlib.sha256()
    current = None  # (chain, part)
    parts: dict[int, int] = {}
    seq_at = READ_COLUMNS.index("seq")

    def flush():
        nonlocal pending
        if pending:
            table, first_prev = _table(pending)
            entries.append(
                write_segment(scratch, f"chain-{current[0]:02d}-{current[1]:03d}.parquet", table, first_prev)
            )
            pending = []

    chain_at, hash_at = READ_COLUMNS.index("chain"), READ_COLUMNS.index("row_hash")
    for values in rows_of_month:
        chain_no, seq, row_hash = values[chain_at], values[seq_at], bytes(values[hash_at])
        # A file is one contiguous run of a chain: a gap (a row of this chain dated in another month, clocks
        # apart) starts a new file, whose first link the manifest then carries.
        if (
            current is None
            or current[0] != chain_no
            or len(pending) >= am.MAX_FILE_ROWS
            or pending[-1][seq_at] != seq - 1
        ):
            flush()
            parts[chain_no] = parts.get(chain_no, -1) + 1
            current = (chain_no, parts[chain_no])
        digest.update(f"{chain_no}|{seq}|".encode() + row_hash)
        pending.append(values)
        done += 1
        if progress and done % archive_read.BATCH_ROWS == 0:
            progress(done, total)
    flush()
    if progress:
        progress(done, total)
    return entries, digest.hexdigest()


def _reread(manifest: am.Manifest, digest: str, total: int) -> None:
    """The files as written hold exactly the rows read (same digest in chain order), each row's hash recomputed
    with the row before's (the manifest's at each file's start), and the scope copies hold the same rows."""
    archive = archive_read.Archive(manifests=[manifest])
    problems = am.check_files(manifest, full=True) or archive.content_problems(manifest)
    if problems:
        raise ArchiveError("; ".join(problems[:3]))
    again, count = hashlib.sha256(), 0
    for chain_no in sorted({e["chain"] for e in manifest.files}):
        for row in archive.chain_rows(chain_no):
            if not chain._intact(row):
                raise ArchiveError(
                    f"chain {row.chain}: seq {row.seq} ({row.reference}) was altered: the month is not archived"
                )
            again.update(f"{row.chain}|{row.seq}|".encode() + bytes(row.row_hash))
            count += 1
    if count != total or again.hexdigest() != digest:
        raise ArchiveError("the files re-read do not hold the rows read from the database: nothing removed")


# --- the month's rows


def _month_rows(start: dt.datetime, end: dt.datetime):
    return Disclosure.objects.filter(created_at__gte=start, created_at__lt=end)


def _chain_stats(queryset) -> dict[int, tuple[int, int, int]]:
    return {
        row["chain"]: (row["rows"], row["low"], row["high"])
        for row in queryset.values("chain")
        .annotate(rows=Count("id"), low=Min("seq"), high=Max("seq"))
        .order_by()
    }


def _manifest_stats(manifest: am.Manifest) -> dict[int, tuple[int, int, int]]:
    stats: dict[int, tuple[int, int, int]] = {}
    for e in manifest.files:
        rows, low, high = stats.get(e["chain"], (0, e["first_seq"], e["last_seq"]))
        stats[e["chain"]] = (rows + e["rows"], min(low, e["first_seq"]), max(high, e["last_seq"]))
    return stats


def _check_archivable(month: dt.date, start: dt.datetime, end: dt.datetime) -> None:
    grace = dt.timedelta(days=settings.REMPART_LEDGER_ARCHIVE_GRACE_DAYS)
    if end + grace > timezone.now():
        raise ArchiveError(
            f"{month:%Y-%m} is not closed: a month can be archived {grace.days} day(s) after it ends "
            f"(REMPART_LEDGER_ARCHIVE_GRACE_DAYS), from {(end + grace).date().isoformat()}"
        )
    if Disclosure.objects.filter(created_at__lt=start).exists():
        raise ArchiveError(
            f"older months are still in the database: archive them first (oldest first) before {month:%Y-%m}"
        )
    if connection.vendor == "postgresql":
        name = partition_name("ledger_disclosure", month)
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            exists = cursor.fetchone()[0]
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM ledger_disclosure_default WHERE created_at >= %s AND created_at < %s)",
                [start, end],
            )
            in_default = cursor.fetchone()[0]
        if in_default or not exists:
            raise ArchiveError(
                f"rows of {month:%Y-%m} are in the default partition, not in {name}: move them first "
                "(docs/incident-response.md, Ledger storage)"
            )


def _remove_rows(month: dt.date, start: dt.datetime, end: dt.datetime, manifest: am.Manifest) -> None:
    """In one transaction: check the rows are still exactly those archived, then remove them."""
    expected = _manifest_stats(manifest)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            name = partition_name("ledger_disclosure", month)
            with connection.cursor() as cursor:
                # DETACH locks the partition: nothing is appended to it between the check and the DROP.
                cursor.execute(f"ALTER TABLE ledger_disclosure DETACH PARTITION {name}")
                cursor.execute(f"SELECT chain, count(*), min(seq), max(seq) FROM {name} GROUP BY chain")  # noqa: S608
                found = {row[0]: tuple(row[1:]) for row in cursor.fetchall()}
                if found != expected:
                    raise ArchiveError("the month's rows changed while it was archived: nothing removed")
                cursor.execute(f"DROP TABLE {name}")
        else:
            rows = _month_rows(start, end)
            if _chain_stats(rows) != expected:
                raise ArchiveError("the month's rows changed while it was archived: nothing removed")
            # SQLite has no partitions: one DELETE of exactly the archived month, the only one the ledger allows
            # (the model and its queryset refuse any; docs/ledger-archive.md).
            select_sql, params = rows.values("id").query.sql_with_params()
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM ledger_disclosure WHERE id IN ({select_sql})", params)  # noqa: S608


def archive_month(
    month: str, *, directory: Path | None = None, dry_run: bool = False, progress: Progress | None = None
) -> ArchiveResult:
    """Archive a closed month (``YYYY-MM``); safe to run again after a crash or on an archived month."""
    started = time.monotonic()
    day = parse_month(month)
    start, end = bounds(day)
    label = f"{day:%Y-%m}"
    root = Path(directory or am.archive_dir())
    manifests, problems = am.load_all(root)
    problems += [
        p for m in manifests for p in am.check_files(m, full=False)
    ]  # `ledger verify` reads every byte
    if problems:
        raise ArchiveError("the archive fails its checks, fix it first: " + "; ".join(problems[:3]))
    rows = _month_rows(start, end)
    total = rows.count()
    final = root / label
    if total == 0:
        if any(m.month == label for m in manifests):
            return ArchiveResult(label, 0, directory=final, already=True)
        raise ArchiveError(f"no ledger rows in {label}")
    _check_archivable(day, start, end)
    if dry_run:
        return ArchiveResult(label, total, directory=final, dry_run=True, seconds=time.monotonic() - started)
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".{label}.tmp-{secrets.token_hex(4)}"
    scratch.mkdir()
    try:
        ordered = (
            rows.order_by("chain", "seq")
            .values_list(*READ_COLUMNS)
            .iterator(chunk_size=archive_read.BATCH_ROWS)
        )
        entries, digest = _write_month(scratch, ordered, total, progress)
        write_manifest(scratch, label, start, end, entries, write_scope_copies(scratch))
        manifest = am.parse((scratch / am.MANIFEST).read_text(encoding="utf-8"), scratch.with_name(label))
        manifest = am.Manifest(label, scratch, manifest.document)
        _reread(manifest, digest, total)
        if final.exists():  # a run that crashed before removing the rows: its files are replaced
            stale = root / f".{label}.old-{secrets.token_hex(4)}"
            final.rename(stale)
            shutil.rmtree(stale)
        scratch.rename(final)
        am.fsync_path(root)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    manifest = am.Manifest(label, final, manifest.document)
    try:
        _remove_rows(day, start, end, manifest)
    except DatabaseError as exc:
        raise ArchiveError(
            f"the files are written and verified but the rows could not be removed ({exc.__class__.__name__}): "
            "run this as the ledger table's owner; the next run rewrites the files"
        ) from None
    size = sum(e["bytes"] for e in entries)
    return ArchiveResult(
        label, total, len(entries), size, final, removed=True, seconds=time.monotonic() - started
    )
