"""Reading the ledger archive with DuckDB: chain rows for verification, and scope answers over Parquet files.

Nothing is read from a month whose manifest does not verify: :func:`load` checks every signature (and every
file's size; with ``full`` its SHA-256 too) and keeps only the months that pass, with a problem for each other,
so that a verification reports them and a scope refuses (:func:`for_scope`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import duckdb

from rempart.ledger import archive_manifest as am
from rempart.ledger.archive_manifest import ArchiveError, Manifest

# The columns a row's hash is recomputed from (rempart.ledger.chain._VERIFY_COLUMNS), in the same order.
VERIFY_COLUMNS = (
    "id", "hash_version", "created_at", "chain", "seq", "reference", "channel", "purpose", "organisation_id",
    "user_id", "token_id", "session_ref", "ip_address", "insurer_id", "beneficiary_id", "presented_hash",
    "domain", "care_date", "outcome", "fields", "prev_hash", "row_hash",
)  # fmt: skip
BATCH_ROWS = 20_000


def connect() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def _quoted(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def batches(db: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    """An Arrow batch reader over a query's result (streamed: memory stays bounded at any size)."""
    cursor = db.cursor()  # its own: a streamed result holds its connection until read to the end
    cursor.execute("SET TimeZone = 'UTC'")  # per connection; the row hash covers the UTC time's ISO form
    relation = cursor.sql(sql, params=params or None)
    reader = (
        relation.to_arrow_reader(BATCH_ROWS)  # DuckDB ≥ 1.4
        if hasattr(relation, "to_arrow_reader")
        else relation.fetch_record_batch(BATCH_ROWS)
    )
    try:
        yield from reader
    finally:
        cursor.close()


def one(db: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple:
    return db.execute(sql, params or []).fetchall()[0]


def as_rows(reader) -> Iterator[SimpleNamespace]:
    """Rows of an Arrow batch reader as the verification's plain objects (``fields`` back to a list)."""
    for batch in reader:
        for values in batch.to_pylist():
            values["fields"] = json.loads(values["fields"]) if values["fields"] is not None else []
            values["created_at"] = _utc(values["created_at"])
            yield SimpleNamespace(**values)


@dataclass
class Archive:
    """The months of the archive whose manifest verified, and what failed to."""

    manifests: list[Manifest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _connection: duckdb.DuckDBPyConnection | None = None

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            self._connection = connect()
        return self._connection

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.manifests)

    def chain_files(self, chain_no: int, after: int = 0) -> list[Path]:
        return [
            m.path(entry)
            for m in self.manifests
            for entry in m.files
            if entry["chain"] == chain_no and entry["last_seq"] > after
        ]

    def ends(self) -> dict[int, tuple[int, bytes]]:
        """Each chain's last archived row: (seq, hash)."""
        ends: dict[int, tuple[int, bytes]] = {}
        for manifest in self.manifests:
            for entry in manifest.files:
                if entry["last_seq"] > ends.get(entry["chain"], (0, b""))[0]:
                    ends[entry["chain"]] = (entry["last_seq"], bytes.fromhex(entry["last_hash"]))
        return ends

    def chain_rows(
        self, chain_no: int, after: int = 0, upto: int | None = None, since: dt.datetime | None = None
    ) -> Iterator[SimpleNamespace]:
        """The chain's archived rows after ``after`` (to ``upto``, from ``since``), in seq order."""
        files = self.chain_files(chain_no, after)
        if not files:
            return iter(())
        sql = (
            f"SELECT {', '.join(VERIFY_COLUMNS)} FROM read_parquet({_quoted(files)}) "  # noqa: S608
            "WHERE chain = ? AND seq > ?"
        )
        params: list = [chain_no, after]
        if upto is not None:
            sql += " AND seq <= ?"
            params.append(upto)
        if since is not None:
            sql += " AND created_at >= ?"
            params.append(since)
        return as_rows(batches(self.db, sql + " ORDER BY seq", params))

    def hashes(self, chain_no: int, seqs: list[int]) -> dict[int, bytes]:
        """The archived ``row_hash`` of given rows of a chain (those archived)."""
        files = [
            m.path(e)
            for m in self.manifests
            for e in m.files
            if e["chain"] == chain_no and any(e["first_seq"] <= s <= e["last_seq"] for s in seqs)
        ]
        if not files or not seqs:
            return {}
        placeholders = ", ".join("?" * len(seqs))
        found = self.db.execute(
            f"SELECT seq, row_hash FROM read_parquet({_quoted(files)}) WHERE seq IN ({placeholders})",  # noqa: S608
            list(seqs),
        ).fetchall()
        return {seq: bytes(digest) for seq, digest in found}

    def row_at(self, chain_no: int, seq: int) -> SimpleNamespace | None:
        return next(iter(self.chain_rows(chain_no, seq - 1, seq)), None)

    def content_problems(self, manifest: Manifest) -> list[str]:
        """Each file holds what its manifest entry says: one chain, its row count, first and last seq with their
        hashes, and every checkpoint row with its hash (the chain links themselves are walked by verification)."""
        problems = []
        for entry in manifest.files:
            where = f"archive {manifest.month}: {entry['name']}"
            path = _quoted([manifest.path(entry)])
            try:
                count, low, high = one(
                    self.db,
                    f"SELECT count(*), min(seq), max(seq) FROM read_parquet({path}) WHERE chain = ?",  # noqa: S608
                    [entry["chain"]],
                )
                (total,) = one(self.db, f"SELECT count(*) FROM read_parquet({path})")  # noqa: S608
                wanted = [entry["first_seq"], entry["last_seq"], *(s for s, _h in entry["checkpoints"])]
                found = dict(
                    self.db.execute(
                        f"SELECT seq, row_hash FROM read_parquet({path}) WHERE seq IN ({', '.join('?' * len(wanted))})",  # noqa: S608
                        wanted,
                    ).fetchall()
                )
                first_prev = self.db.execute(
                    f"SELECT prev_hash FROM read_parquet({path}) WHERE seq = ?",  # noqa: S608
                    [entry["first_seq"]],
                ).fetchall()
                first_prev = first_prev[0] if first_prev else None
            except duckdb.Error as exc:
                problems.append(f"{where}: unreadable ({exc.__class__.__name__})")
                continue
            if (count, total, low, high) != (
                entry["rows"],
                entry["rows"],
                entry["first_seq"],
                entry["last_seq"],
            ):
                problems.append(f"{where}: its rows are not those of the manifest (altered)")
                continue
            expected = {entry["last_seq"]: entry["last_hash"], **dict(entry["checkpoints"])}
            if any(bytes(found.get(seq, b"")).hex() != digest for seq, digest in expected.items()):
                problems.append(f"{where}: a checkpoint row does not have the manifest's hash (altered)")
            elif first_prev is None or bytes(first_prev[0]).hex() != entry["first_prev_hash"]:
                problems.append(f"{where}: its first row does not link as the manifest says (altered)")
        return problems


def still_in_database(manifest: Manifest) -> bool:
    """An archive run wrote the month but did not remove its rows (it crashed, or the removal was refused): the
    database's rows are the ones read, the files are rewritten by the next run."""
    from rempart.ledger.models import Disclosure

    return Disclosure.objects.filter(created_at__gte=manifest.start, created_at__lt=manifest.end).exists()


def load(root: Path | None = None, *, full: bool = False) -> Archive:
    """The archive's verified months (signature and file sizes; ``full``: SHA-256 and contents too)."""
    manifests, problems = am.load_all(root)
    archive = Archive(problems=problems)
    for manifest in manifests:
        if still_in_database(manifest):
            continue
        found = am.check_files(manifest, full=full)
        if full and not found:
            found = archive.content_problems(manifest)
        if found:
            archive.problems += found
        else:
            archive.manifests.append(manifest)
    return archive


# --- scopes


def for_scope(
    since: dt.datetime | None, until: dt.datetime | None, root: Path | None = None
) -> Archive | None:
    """The archived months a scope's window reaches, checked (None: no such month). Refuses, with the reason, if
    any archived month fails its check: a scope must not silently miss rows."""
    manifests, problems = am.load_all(root)
    if problems:
        raise ArchiveError("; ".join(problems[:3]))
    wanted = [
        m
        for m in manifests
        if (since is None or m.end > since)
        and (until is None or m.start < until)
        and not still_in_database(m)
    ]
    if not wanted:
        return None
    for manifest in wanted:
        found = am.check_files(manifest, full=False)
        if found:
            raise ArchiveError("; ".join(found[:3]))
    return Archive(manifests=wanted)


def _in(column: str, values, params: list) -> str:
    params.extend(int(v) for v in values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def scope_sql(archive: Archive, criteria, columns: str) -> tuple[str, list]:
    """SELECT ``columns`` of the archived rows a scope selects (``criteria``: rempart.incidents.scope.ScopeCriteria,
    read by attribute: the ledger does not import incidents).

    Actors are alternatives; each becomes its own branch of a UNION ALL (excluding rows an earlier branch took), so
    that each branch filters on one sorted column and DuckDB prunes row groups by their statistics."""
    files = _quoted([m.path(e) for m in archive.manifests for e in m.files])
    narrow, narrow_params = [], []
    if criteria.networks:
        ranges = []
        for network in criteria.networks:
            low, high = am.network_range(network)
            ranges.append("(ip_key BETWEEN ? AND ?)")
            narrow_params += [low, high]
        narrow.append("(" + " OR ".join(ranges) + ")")
    if criteria.channels:
        narrow.append(f"channel IN ({', '.join('?' * len(criteria.channels))})")
        narrow_params += list(criteria.channels)
    if criteria.purposes:
        narrow.append(f"purpose IN ({', '.join('?' * len(criteria.purposes))})")
        narrow_params += list(criteria.purposes)
    if criteria.since:
        narrow.append("created_at >= ?")
        narrow_params.append(criteria.since)
    if criteria.until:
        narrow.append("created_at < ?")
        narrow_params.append(criteria.until)
    actors = [
        (column, ids)
        for column, ids in (
            ("user_id", criteria.user_ids),
            ("token_id", criteria.token_ids),
            ("organisation_id", criteria.organisation_ids),
        )
        if ids
    ]
    branches, params = [], []
    for n, (column, ids) in enumerate(actors or [(None, ())]):
        conditions = []
        if column:
            conditions.append(_in(column, ids, params))
        for earlier, earlier_ids in actors[:n]:
            conditions.append(f"coalesce(NOT {_in(earlier, earlier_ids, params)}, true)")
        conditions += narrow
        params += narrow_params
        where = " AND ".join(conditions) or "true"
        branches.append(f"SELECT {columns} FROM read_parquet({files}) WHERE {where}")  # noqa: S608
    return " UNION ALL ".join(branches), params


SCOPE_COLUMNS = (
    "id, insurer_id, beneficiary_id, organisation_id, user_id, token_id, fields, created_at, outcome"
)


def scoped(archive: Archive, criteria) -> str:
    """A temporary table of the scope's archived rows (the few columns scopes read), built once per archive
    and criteria: totals, people and entries then read it instead of scanning the files again each."""
    tables = archive.__dict__.setdefault("_scoped", {})
    key = repr(sorted(vars(criteria).items()) if not hasattr(criteria, "to_json") else criteria.to_json())
    if key not in tables:
        name = f"scope_{len(tables)}"
        sql, params = scope_sql(archive, criteria, SCOPE_COLUMNS)
        archive.db.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)
        tables[key] = name
    return tables[key]


def scope_totals(archive: Archive, criteria) -> dict[int | None, tuple[int, int]]:
    """Per insurer: (disclosures, misses) of the archived rows a scope selects."""
    found = archive.db.execute(
        f"SELECT insurer_id, count(beneficiary_id), count(*) FILTER (WHERE outcome = 'no_match') "  # noqa: S608
        f"FROM {scoped(archive, criteria)} GROUP BY insurer_id"
    ).fetchall()
    return {insurer: (disclosures, misses) for insurer, disclosures, misses in found}


def scope_people(archive: Archive, criteria):
    """The distinct (insurer_id, beneficiary_id) pairs of a scope's archived disclosures, as two numpy arrays."""
    found = archive.db.execute(
        f"SELECT DISTINCT insurer_id, beneficiary_id FROM {scoped(archive, criteria)} "  # noqa: S608
        "WHERE beneficiary_id IS NOT NULL"
    ).fetchnumpy()
    return found["insurer_id"], found["beneficiary_id"]


def scope_entries(archive: Archive, criteria) -> list[tuple]:
    """The scope's archived rows grouped as rempart.incidents.scope.grouped_entries groups them:
    (insurer, beneficiary, organisation, user, token, fields, disclosures, first_at, last_at)."""
    found = archive.db.execute(
        "SELECT insurer_id, beneficiary_id, organisation_id, user_id, token_id, fields, count(*), "  # noqa: S608
        f"min(created_at), max(created_at) FROM {scoped(archive, criteria)} WHERE beneficiary_id IS NOT NULL "
        "GROUP BY ALL"
    ).fetchall()
    lists: dict[str, list] = {}  # a handful of distinct field sets: each parsed once

    def fields(text: str) -> list:
        if text not in lists:
            lists[text] = json.loads(text)
        return list(lists[text])

    return [(*row[:5], fields(row[5]), row[6], _utc(row[7]), _utc(row[8])) for row in found]


def scope_count(archive: Archive, criteria) -> int:
    return one(archive.db, f"SELECT count(*) FROM {scoped(archive, criteria)}")[0]  # noqa: S608


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
