"""Reading the ledger archive with DuckDB: chain rows for verification, and scope answers over Parquet files.

Nothing is read from a month whose manifest does not verify: :func:`load` checks every signature (and every
file's size; with ``full`` its SHA-256 too) and keeps only the months that pass, with a problem for each other,
so that a verification reports them and a scope refuses (:func:`for_scope`).
"""

from __future__ import annotations

import datetime as dt
import itertools
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


def quote_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _quoted(paths: list[Path]) -> str:
    return "[" + ", ".join(f"'{quote_path(p)}'" for p in paths) + "]"


def batches(db: duckdb.DuckDBPyConnection, sql: str, params: list | None = None, size: int = 0):
    """An Arrow batch reader over a query's result (streamed: memory stays bounded at any size)."""
    cursor = db.cursor()  # its own: a streamed result holds its connection until read to the end
    cursor.execute("SET TimeZone = 'UTC'")  # per connection; the row hash covers the UTC time's ISO form
    relation = cursor.sql(sql, params=params or None)
    reader = (
        relation.to_arrow_reader(size or BATCH_ROWS)  # DuckDB ≥ 1.4
        if hasattr(relation, "to_arrow_reader")
        else relation.fetch_record_batch(size or BATCH_ROWS)
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
        return [m.path(entry) for m, entry in self._chain_entries(chain_no, after)]

    def _chain_entries(self, chain_no: int, after: int = 0) -> list[tuple[Manifest, dict]]:
        return [
            (m, entry)
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
        """The chain's archived rows after ``after`` (to ``upto``, from ``since``), in seq order, each with its
        prev_hash (version 2 files do not store it: it is the row before's hash, the manifest's at a file's start)."""
        entries = self._chain_entries(chain_no, after)
        if not entries:
            return iter(())
        stored = any(m.version == 1 for m, _e in entries)  # version 1 files store prev_hash
        columns = [c if c != "prev_hash" or stored else "NULL::BLOB AS prev_hash" for c in VERIFY_COLUMNS]
        files = _quoted([m.path(e) for m, e in entries])
        sql = (
            f"SELECT {', '.join(columns)} FROM read_parquet({files}, union_by_name = true) "  # noqa: S608
            "WHERE chain = ? AND seq > ?"
        )
        params: list = [chain_no, after]
        if upto is not None:
            sql += " AND seq <= ?"
            params.append(upto)
        if since is not None:
            sql += " AND created_at >= ?"
            params.append(since)
        starts = {e["first_seq"]: bytes.fromhex(e["first_prev_hash"]) for m, e in entries if m.version > 1}
        return self._linked(chain_no, as_rows(batches(self.db, sql + " ORDER BY seq", params)), starts)

    def _linked(self, chain_no: int, rows, starts: dict[int, bytes]) -> Iterator[SimpleNamespace]:
        previous: tuple[int, bytes] | None = None
        for row in rows:
            if row.prev_hash is None:
                if row.seq in starts:
                    row.prev_hash = starts[row.seq]
                elif previous is not None and previous[0] == row.seq - 1:
                    row.prev_hash = previous[1]
                else:  # the first row read (or after a row left out by ``since``): the row before, wherever it is
                    row.prev_hash = self._hash_before(chain_no, row.seq)
            previous = (row.seq, bytes(row.row_hash))
            yield row

    def _hash_before(self, chain_no: int, seq: int) -> bytes:
        """The row_hash of the row before ``seq`` (database or archive); empty if it is gone (the walk then
        reports the broken link)."""
        from rempart.ledger.models import Disclosure

        found = (
            Disclosure.objects.filter(chain=chain_no, seq=seq - 1).values_list("row_hash", flat=True).first()
        )
        if found is not None:
            return bytes(found)
        return self.hashes(chain_no, [seq - 1]).get(seq - 1, b"")

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
                first_prev = (
                    self.db.execute(
                        f"SELECT prev_hash FROM read_parquet({path}) WHERE seq = ?",  # noqa: S608
                        [entry["first_seq"]],
                    ).fetchall()
                    if manifest.version == 1
                    else [(bytes.fromhex(entry["first_prev_hash"]),)]  # version 2: the manifest's, walked
                )
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
        if manifest.version > 1 and not problems:
            problems += self.copy_problems(manifest)
        return problems

    def copy_problems(self, manifest: Manifest) -> list[str]:
        """The address copy holds exactly the chain files' rows (same count, same order-free digest of the columns
        scopes read), each address with the ip_key derived from it, and the actor copy exactly the address copy's
        rows. The copies are signed like the chain files; this catches a copy written wrong, which a scope would
        otherwise trust."""
        where = f"archive {manifest.month}: scope copy"
        missing = [copy for copy in am.SCOPE_COPIES if copy not in manifest.scope_files]
        if missing:
            return [f"{where} {', '.join(missing)} is not in the manifest"]
        chain_files = _quoted([manifest.path(e) for e in manifest.files])
        ip_copy, actor_copy = (_quoted([manifest.scope_path(c)]) for c in ("ip", "actor"))
        plain = [c for c in am.SCOPE_SCHEMA.names if c != "ip_key"]
        keyed = list(am.SCOPE_COPY_COLUMNS["actor"])
        sql = "SELECT count(*), sum(hash({})::HUGEINT) FROM read_parquet({})"
        try:
            against_chain = (one(self.db, sql.format(", ".join(plain), f)) for f in (chain_files, ip_copy))
            against_ip = (one(self.db, sql.format(", ".join(keyed), f)) for f in (ip_copy, actor_copy))
            pairs_sql = f"SELECT DISTINCT ip_address, ip_key FROM read_parquet({ip_copy})"  # noqa: S608
            pairs = self.db.execute(pairs_sql).fetchall()
            chain_digest, ip_digest = against_chain
            ip_keyed, actor_keyed = against_ip
        except duckdb.Error as exc:
            return [f"{where}: unreadable ({exc.__class__.__name__})"]
        problems = []
        if ip_digest != chain_digest or ip_digest[0] != manifest.scope_files["ip"]["rows"]:
            problems.append(f"{where} ip: its rows are not those of the chain files (altered)")
        elif any(am.ip_key(a) != (bytes(k) if k is not None else None) for a, k in pairs):
            problems.append(f"{where} ip: an address's ip_key is wrong (altered)")
        if actor_keyed != ip_keyed or actor_keyed[0] != manifest.scope_files["actor"]["rows"]:
            problems.append(f"{where} actor: its rows are not those of the chain files (altered)")
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


def _sources(archive: Archive, copy: str) -> list[str]:
    """What a scope branch reads: version 2 months' scope copy ``copy`` (sorted for it), version 1 months' chain
    files (sorted by actor within each file)."""
    copies = [m.scope_path(copy) for m in archive.manifests if m.version > 1]
    old = [m.path(e) for m in archive.manifests if m.version == 1 for e in m.files]
    return [f"read_parquet({_quoted(paths)})" for paths in (copies, old) if paths]


def scope_sql(archive: Archive, criteria, columns: str) -> tuple[str, list]:
    """SELECT ``columns`` of the archived rows a scope selects (``criteria``: rempart.incidents.scope.ScopeCriteria,
    read by attribute: the ledger does not import incidents).

    Actors are alternatives; each becomes its own branch of a UNION ALL (excluding rows an earlier branch took), so
    that each branch filters on one sorted column and DuckDB prunes row groups by their statistics: actor branches
    read the actor copy, a scope by networks alone the address copy."""
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
        copy = "actor" if column or not criteria.networks else "ip"
        for source in _sources(archive, copy):
            conditions = []
            if column:
                conditions.append(_in(column, ids, params))
            for earlier, earlier_ids in actors[:n]:
                conditions.append(f"coalesce(NOT {_in(earlier, earlier_ids, params)}, true)")
            conditions += narrow
            params += narrow_params
            where = " AND ".join(conditions) or "true"
            branches.append(f"SELECT {columns} FROM {source} WHERE {where}")  # noqa: S608
    return " UNION ALL ".join(branches), params


SCOPE_COLUMNS = "insurer_id, beneficiary_id, organisation_id, user_id, token_id, fields, created_at, outcome"


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


def scope_people(archive: Archive, criteria) -> tuple[list, list]:
    """The distinct (insurer_id, beneficiary_id) pairs of a scope's archived disclosures, as two lists."""
    found = archive.db.execute(
        f"SELECT DISTINCT insurer_id, beneficiary_id FROM {scoped(archive, criteria)} "  # noqa: S608
        "WHERE beneficiary_id IS NOT NULL"
    ).fetchall()
    return [insurer for insurer, _b in found], [beneficiary for _i, beneficiary in found]


def scope_people_counts(archive: Archive, criteria) -> dict[int | None, int]:
    """Distinct people per insurer among a scope's archived disclosures (counted in DuckDB: no pairs to Python)."""
    found = archive.db.execute(
        f"SELECT insurer_id, count(DISTINCT beneficiary_id) FROM {scoped(archive, criteria)} "  # noqa: S608
        "WHERE beneficiary_id IS NOT NULL GROUP BY insurer_id"
    ).fetchall()
    return dict(found)


def scope_entries(archive: Archive, criteria) -> list[tuple]:
    """The scope's archived rows grouped as rempart.incidents.scope.grouped_entries groups them:
    (insurer, beneficiary, organisation, user, token, fields, disclosures, first_at, last_at).

    Only integers cross into Python (fields as the index of its distinct value, times as microseconds): DuckDB's
    conversion of each text and time zone-aware time would otherwise take most of a large scope's time."""
    table = scoped(archive, criteria)
    texts = [
        text
        for (text,) in archive.db.execute(
            f"SELECT DISTINCT fields FROM {table} WHERE beneficiary_id IS NOT NULL ORDER BY fields"  # noqa: S608
        ).fetchall()
    ]
    if not texts:
        return []
    found = archive.db.execute(
        "SELECT insurer_id, beneficiary_id, organisation_id, user_id, token_id, list_position(?, fields) - 1, "  # noqa: S608
        f"count(*), epoch_us(min(created_at)), epoch_us(max(created_at)) FROM {table} "
        "WHERE beneficiary_id IS NOT NULL GROUP BY ALL",
        [texts],
    ).fetchall()
    if not found:
        return []
    lists = [json.loads(text) if text is not None else [] for text in texts]  # a handful: each parsed once
    # Column by column with C-level loops: at 500,000 entries the times are most of a scope's time.
    insurer, beneficiary, organisation, user, token, field_index, count, first, last = zip(
        *found, strict=True
    )
    fields = map(_copy, map(lists.__getitem__, field_index))
    return list(
        zip(
            insurer,
            beneficiary,
            organisation,
            user,
            token,
            fields,
            count,
            _times(first),
            _times(last),
            strict=True,
        )
    )


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _times(microseconds) -> Iterator[dt.datetime]:
    """UTC times from microseconds since the epoch, exactly (integers added, no float)."""
    zeros = itertools.repeat(0)
    return map(EPOCH.__add__, map(dt.timedelta, zeros, zeros, microseconds))


def _copy(fields):
    return list(fields) if isinstance(fields, list) else fields


def scope_count(archive: Archive, criteria) -> int:
    return one(archive.db, f"SELECT count(*) FROM {scoped(archive, criteria)}")[0]  # noqa: S608


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
