"""Appending to the ledger's hash chains, and verifying them.

Each row's hash is an HMAC-SHA256 (key derived from the blind-index key, so an attacker who can
write to the database but does not hold the key cannot forge a consistent chain) over the previous
row's hash and the row's canonical content. Which fields the content holds is the row's
``hash_version``: rows keep the version they were written with, so old rows still verify.

Whether a verification may move the checkpoints, and what a failure leaves behind, is decided by
rempart.ledger.verification; this module only computes.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import heapq
import hmac
import json
import secrets
from dataclasses import dataclass, field
from functools import cache
from types import SimpleNamespace

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from rempart.ledger.models import CHAIN_COUNT, ChainCheckpoint, ChainHead, Disclosure
from rempart.lib import fast_insert, hot_sql, metrics

GENESIS = bytes(32)
HASHED_FIELDS_V1 = (
    "created_at", "chain", "seq", "reference", "channel", "purpose", "organisation_id", "user_id", "token_id",
    "session_ref", "ip_address", "insurer_id", "beneficiary_id", "presented_hash", "domain", "care_date",
    "outcome", "fields",
)  # fmt: skip
# Version 2 covers every column but the hashes themselves: the id (taken from the sequence in the statement that
# locks the chain, so no extra round trip) and the version, so that a row cannot be relabelled as version 1.
HASH_VERSIONS = {1: HASHED_FIELDS_V1, 2: ("id", "hash_version", *HASHED_FIELDS_V1)}
CURRENT_HASH_VERSION = 2
HASHED_FIELDS = HASH_VERSIONS[CURRENT_HASH_VERSION]


@cache
def _ledger_key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rempart-ledger-chain").derive(
        base64.b64decode(settings.REMPART_BLIND_INDEX_KEY)
    )


def _canonical(value):
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def row_hash(row, prev_hash: bytes) -> bytes:
    """The HMAC of a row (a Disclosure or any object with the hashed fields as attributes) under its version."""
    try:
        names = HASH_VERSIONS[row.hash_version]
    except KeyError:
        raise ValueError(f"unknown hash version {row.hash_version!r}") from None
    content = {name: _canonical(getattr(row, name)) for name in names}
    message = bytes(prev_hash) + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_ledger_key(), message, hashlib.sha256).digest()


def checkpoint_mac(chain_no: int, seq: int, digest: bytes, verified_at: dt.datetime) -> bytes:
    """A checkpoint is trusted only if the ledger key made it: a database writer cannot move one past a change."""
    stamp = round(verified_at.timestamp() * 1_000_000)
    message = f"checkpoint|{chain_no}|{seq}|{bytes(digest).hex()}|{stamp}".encode()
    return hmac.new(_ledger_key(), message, hashlib.sha256).digest()


def new_reference() -> str:
    """A check reference a professional can read over the phone: RC-XXXX-XXXX-XXXX (base32: A-Z and 2-7)."""
    raw = base64.b32encode(secrets.token_bytes(8)).decode().rstrip("=")[:12]
    return f"RC-{raw[0:4]}-{raw[4:8]}-{raw[8:12]}"


INSERTED_FIELDS = ("prev_hash", "row_hash", *HASHED_FIELDS)
_HEAD_COLUMNS = [
    hot_sql.field(ChainHead, "chain"),
    hot_sql.field(ChainHead, "seq"),
    hot_sql.field(ChainHead, "last_hash"),
    hot_sql.field(Disclosure, "id"),
]
# Locks a chain's head until the transaction ends (appends to one chain are serialised, others run on), advances it
# by the rows to append and takes the first new row's id in the same statement, so that the id can be hashed.
#
# PostgreSQL: the head is one that no *other* transaction holds (SKIP LOCKED), preferring the chain this connection
# used last — which a transaction that already appended holds itself, so all its rows go to that one chain. A
# transaction therefore holds at most one head and never waits for one while holding another: two long
# transactions (two lots sent at once) cannot deadlock on the heads, and a short one (a rights check) takes a
# free chain instead of waiting for a lot's commit.
_TAKE_FREE = hot_sql.Statement(
    "UPDATE ledger_chainhead h SET seq = h.seq + %s FROM ("
    "SELECT chain FROM ledger_chainhead ORDER BY (chain = %s) DESC, random() LIMIT 1 FOR UPDATE SKIP LOCKED"
    ") free WHERE h.chain = free.chain "
    "RETURNING h.chain, h.seq, h.last_hash, nextval('ledger_disclosure_id_seq')",
    _HEAD_COLUMNS,
)
_TAKE_CHAIN = {
    # Every head is taken by another transaction (or none exists yet): wait for a given one, creating it if need be.
    "postgresql": hot_sql.Statement(
        "UPDATE ledger_chainhead SET seq = seq + %s WHERE chain = %s "
        "RETURNING chain, seq, last_hash, nextval('ledger_disclosure_id_seq')",
        _HEAD_COLUMNS,
    ),
    # SQLite (development) writes under one database lock (IMMEDIATE transactions): the next id cannot be taken
    # by anyone else before this transaction ends. AUTOINCREMENT's counter, so that ids are never reused.
    "sqlite": hot_sql.Statement(
        "UPDATE ledger_chainhead SET seq = seq + %s WHERE chain = %s RETURNING chain, seq, last_hash, "
        "max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'ledger_disclosure'), 0), "
        "coalesce((SELECT max(id) FROM ledger_disclosure), 0)) + 1",
        _HEAD_COLUMNS,
    ),
}
prepare_row = hot_sql.row_preparer(Disclosure, INSERTED_FIELDS)
_PLACEHOLDERS = ", ".join(["%s"] * len(INSERTED_FIELDS))
_INSERT = f"INSERT INTO ledger_disclosure ({', '.join(INSERTED_FIELDS)}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
_SET_HEAD = "UPDATE ledger_chainhead SET last_hash = %s WHERE chain = %s"
# PostgreSQL: the row and the head's new hash in one round trip.
_INSERT_AND_SET_HEAD = f"WITH new_row AS ({_INSERT}) {_SET_HEAD}"


def _take(count: int) -> tuple[int, int, bytes, int]:
    """A locked chain head advanced by ``count``: (chain, its new last seq, its last hash, the first new row's id)."""
    head = None
    preferred = getattr(connection, "_rempart_chain", None)
    if preferred is None:
        preferred = secrets.randbelow(CHAIN_COUNT)
    if connection.vendor == "postgresql":
        head = _TAKE_FREE.first([count, preferred])
    if head is None:
        statement = _TAKE_CHAIN[connection.vendor]
        head = statement.first([count, preferred])
        if head is None:
            with transaction.atomic():  # a savepoint: a concurrent creator wins, we then lock its row
                ChainHead.objects.get_or_create(chain=preferred, defaults={"seq": 0, "last_hash": GENESIS})
            head = statement.first([count, preferred])
    connection._rempart_chain = head[0]
    return head[0], head[1], bytes(head[2]), head[3]


@metrics.timed_ledger_append("one")
def append(**values) -> Disclosure:
    """Append one row; must run inside the caller's transaction (the answer and its row commit together).

    Written with fixed prepared statements (rempart.lib.hot_sql): two round trips on PostgreSQL.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger rows are written inside the answer's transaction")
    chain_no, seq, prev_hash, row_id = _take(1)
    row = Disclosure(
        id=row_id,
        hash_version=CURRENT_HASH_VERSION,
        created_at=values.pop("created_at", None) or timezone.now(),
        chain=chain_no,
        seq=seq,
        prev_hash=prev_hash,
        reference=values.pop("reference", None) or new_reference(),
        **values,
    )
    row.row_hash = row_hash(row, prev_hash)
    params = prepare_row(row)
    if connection.vendor == "postgresql":
        hot_sql.run(_INSERT_AND_SET_HEAD, [*params, row.row_hash, chain_no])
    else:
        hot_sql.run(_INSERT, params)
        hot_sql.run(_SET_HEAD, [row.row_hash, chain_no])
    row._state.adding = False
    return row


_PG_IDS = "SELECT nextval('ledger_disclosure_id_seq') FROM generate_series(1, %s)"


@metrics.timed_ledger_append("many")
def append_many(rows_values: list[dict]) -> list[Disclosure]:
    """Append several rows to one chain, in order, in the caller's transaction (the lot path of the gate).

    The same rows as :func:`append` one by one would write, chained to each other: the head is taken and
    advanced once, the rows are inserted in one batch, the head's last hash set once.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger rows are written inside the answer's transaction")
    if not rows_values:
        return []
    count = len(rows_values)
    chain_no, last_seq, prev_hash, first_id = _take(count)
    ids = [first_id]
    if connection.vendor == "postgresql" and count > 1:
        ids += sorted(row[0] for row in hot_sql.run(_PG_IDS, [count - 1], fetch=True))
    else:
        ids = list(range(first_id, first_id + count))
    rows = []
    now = timezone.now()
    for offset, values in enumerate(rows_values):
        values = dict(values)
        row = Disclosure(
            id=ids[offset],
            hash_version=CURRENT_HASH_VERSION,
            created_at=values.pop("created_at", None) or now,
            chain=chain_no,
            seq=last_seq - count + 1 + offset,
            prev_hash=prev_hash,
            reference=values.pop("reference", None) or new_reference(),
            **values,
        )
        row.row_hash = prev_hash = row_hash(row, prev_hash)
        rows.append(row)
    fast_insert.insert(rows)  # COPY on PostgreSQL
    hot_sql.run(_SET_HEAD, [prev_hash, chain_no])
    return rows


_VERIFY_COLUMNS = tuple(dict.fromkeys((*HASHED_FIELDS, "prev_hash", "row_hash")))


def _as_row(values) -> SimpleNamespace:
    # Plain tuples, not model instances: verifying 100 M rows is bound by this loop.
    return SimpleNamespace(**dict(zip(_VERIFY_COLUMNS, values, strict=True)))


def _archive(full: bool = False):
    """The archived months (rempart.ledger.archive_read): rows that left the database still belong to the chains."""
    from rempart.ledger import archive_read

    return archive_read.load(full=full)


def _row_at(chain_no: int, seq: int, archive=None) -> SimpleNamespace | None:
    values = Disclosure.objects.filter(chain=chain_no, seq=seq).values_list(*_VERIFY_COLUMNS).first()
    if values:
        return _as_row(values)
    return (archive or _archive()).row_at(chain_no, seq)


def _with_archived(rows, archive, chain_no: int, after: int, upto: int | None, since=None):
    """The database's rows of a chain merged, in seq order, with the archived ones (a month archived while later
    rows of the same chain were appended with an earlier clock can interleave at the boundary)."""
    if not archive.manifests or archive.ends().get(chain_no, (0, b""))[0] <= after:
        return rows
    archived = archive.chain_rows(chain_no, after, upto, since)
    return heapq.merge(archived, rows, key=lambda row: row.seq)


def _intact(row: SimpleNamespace) -> bool:
    try:
        return row_hash(row, bytes(row.prev_hash)) == bytes(row.row_hash)
    except ValueError:  # an unknown hash version
        return False


@dataclass
class ChainWalk:
    """What reading one chain's rows in order found: how many, the last good one, the first broken link."""

    rows: int = 0
    last: SimpleNamespace | None = None
    broken: str | None = None


def walk(
    chain_no: int, rows, expected_seq: int | None, expected_prev: bytes | None, version: int = 1
) -> ChainWalk:
    """Check each row links to the one before (``expected_seq`` None: trust the first row's link)."""
    result = ChainWalk()
    for row in rows:
        result.rows += 1
        if expected_seq is None:
            expected_seq, expected_prev = row.seq, bytes(row.prev_hash)
        if row.seq != expected_seq:
            result.broken = f"chain {chain_no}: row(s) missing before seq {row.seq} (expected {expected_seq})"
        elif bytes(row.prev_hash) != expected_prev:
            result.broken = (
                f"chain {chain_no}: seq {row.seq} ({row.reference}) does not link to the previous row"
            )
        elif row.hash_version < version:
            result.broken = (
                f"chain {chain_no}: seq {row.seq} ({row.reference}) has hash version {row.hash_version} "
                f"after a row of version {version} (relabelled)"
            )
        elif not _intact(row):
            result.broken = f"chain {chain_no}: seq {row.seq} ({row.reference}) was altered"
        if result.broken:
            break
        expected_seq, expected_prev, version, result.last = (
            row.seq + 1,
            bytes(row.row_hash),
            row.hash_version,
            row,
        )
    return result


def rows_after(chain_no: int, seq: int, upto: int | None = None, archive=None):
    """The chain's rows after ``seq``, up to ``upto`` (the head as read when the verification began: rows appended
    while it runs are left to the next one, instead of looking like rows beyond the head); archived ones included."""
    query = Disclosure.objects.filter(chain=chain_no, seq__gt=seq).order_by("seq")
    if upto is not None:
        query = query.filter(seq__lte=upto)
    rows = (_as_row(values) for values in query.values_list(*_VERIFY_COLUMNS).iterator(chunk_size=5000))
    return _with_archived(rows, archive or _archive(), chain_no, seq, upto)


def verify_from(
    chain_no: int, seq: int, digest: bytes, head: ChainHead | None, what: str, archive=None
) -> tuple[int, str | None]:
    """From a known row (a checkpoint, an anchor) to the head: the row is there with its hash, every later row
    links, and the head is where the rows end. Returns (rows read, the problem or None)."""
    archive = archive or _archive()
    start = _row_at(chain_no, seq, archive)
    if start is None:
        return 0, f"chain {chain_no}: the row at seq {seq} ({what}) is gone"
    if bytes(start.row_hash) != bytes(digest):
        return 0, f"chain {chain_no}: the row at seq {seq} ({what}) no longer has the hash it had"
    if not _intact(start):
        return 0, f"chain {chain_no}: the row at seq {seq} ({what}) was altered"
    upto = head.seq if head is not None else None
    result = walk(
        chain_no, rows_after(chain_no, seq, upto, archive), seq + 1, bytes(digest), start.hash_version
    )
    if result.broken:
        return result.rows, result.broken
    end_seq = result.last.seq if result.last else seq
    end_hash = bytes(result.last.row_hash) if result.last else bytes(digest)
    if head is None or head.seq != end_seq or bytes(head.last_hash) != end_hash:
        head_seq = head.seq if head else "none"
        return result.rows, (
            f"chain {chain_no}: the last row(s) are missing (head at seq {head_seq}, rows end at {end_seq})"
        )
    return result.rows, None


@dataclass
class VerifyReport:
    rows: int = 0
    chains: int = 0
    broken: list[str] = field(default_factory=list)
    checkpoint_at: dt.datetime | None = None  # when started from checkpoints: the oldest one used
    complete: bool = False  # every chain read from its first row (no date, no checkpoint)
    ends: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # where each chain's verified rows end

    @property
    def ok(self) -> bool:
        return not self.broken


def check_anchors(anchors: dict[int, tuple[int, bytes]]) -> list[str]:
    """Compare saved chain heads (``rempart ledger heads`` output kept elsewhere) with the rows now stored.

    The older, unsigned form of rempart.ledger.anchors (kept for heads files saved before signed anchors).
    """
    problems = []
    archive = None
    for chain_no, (seq, digest) in sorted(anchors.items()):
        if seq == 0:
            continue
        row = Disclosure.objects.filter(chain=chain_no, seq=seq).only("row_hash").first()
        if row is None:
            archive = archive or _archive()
            row = archive.row_at(chain_no, seq)
        if row is None:
            problems.append(f"chain {chain_no}: the anchored row seq {seq} is gone")
        elif bytes(row.row_hash) != digest:
            problems.append(f"chain {chain_no}: the anchored row seq {seq} no longer has the anchored hash")
    return problems


def parse_heads(text: str) -> dict[int, tuple[int, bytes]]:
    anchors = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "chain" and parts[2] == "seq":
            anchors[int(parts[1])] = (int(parts[3].replace(",", "")), bytes.fromhex(parts[4]))
    return anchors


def trusted_checkpoints(report: VerifyReport) -> dict[int, ChainCheckpoint]:
    """The checkpoints a verification made; one whose MAC does not match is reported, one without a MAC
    (saved before checkpoints were signed) is ignored: its chain is read from its first row."""
    trusted = {}
    for checkpoint in ChainCheckpoint.objects.all():
        if not checkpoint.mac:
            continue
        expected = checkpoint_mac(
            checkpoint.chain, checkpoint.seq, checkpoint.row_hash, checkpoint.verified_at
        )
        if hmac.compare_digest(bytes(checkpoint.mac), expected):
            trusted[checkpoint.chain] = checkpoint
        else:
            report.broken.append(
                f"chain {checkpoint.chain}: its checkpoint was changed outside a verification"
            )
    return trusted


def verify(since: dt.datetime | None = None, *, from_checkpoints: bool = False) -> VerifyReport:
    """Recompute every chain and report the first broken link of each.

    ``since``: only rows from that time (the first row's link is trusted). ``from_checkpoints``: start each
    chain after the last row a passing verification found intact (that row must still carry the same hash),
    so that a routine check reads only what is new. Saving checkpoints is rempart.ledger.verification's call.
    """
    report = VerifyReport(complete=since is None)
    heads = {head.chain: head for head in ChainHead.objects.all()}
    # A complete run re-reads every archive file (SHA-256, contents); the others check manifests and sizes.
    archive = _archive(full=since is None and not from_checkpoints)
    report.broken += archive.problems
    checkpoints = trusted_checkpoints(report) if from_checkpoints else {}
    for chain_no in range(CHAIN_COUNT):
        report.chains += 1
        head = heads.get(chain_no)
        checkpoint = checkpoints.get(chain_no)
        if checkpoint is not None:
            report.complete = False
            report.checkpoint_at = min(filter(None, [report.checkpoint_at, checkpoint.verified_at]))
            what = f"verified on {timezone.localtime(checkpoint.verified_at):%Y-%m-%d %H:%M}"
            rows, broken = verify_from(chain_no, checkpoint.seq, checkpoint.row_hash, head, what, archive)
            report.rows += rows
            if broken:
                report.broken.append(broken)
            else:
                report.ends[chain_no] = (head.seq, bytes(head.last_hash))
            continue
        query = Disclosure.objects.filter(chain=chain_no).order_by("seq")
        if head is not None:  # the head as read at the start: rows appended meanwhile wait for the next run
            query = query.filter(seq__lte=head.seq)
        if since is not None:
            query = query.filter(created_at__gte=since)
        rows = (_as_row(values) for values in query.values_list(*_VERIFY_COLUMNS).iterator(chunk_size=5000))
        rows = _with_archived(rows, archive, chain_no, 0, head.seq if head else None, since)
        if since is None:  # the whole chain: it must start at 1 from the genesis hash
            result = walk(chain_no, rows, 1, GENESIS)
        else:  # from a date: trust the first row's link, check everything after it
            result = walk(chain_no, rows, None, None)
        report.rows += result.rows
        broken = result.broken
        last = result.last
        end_seq, end_hash = (last.seq, bytes(last.row_hash)) if last else (0, GENESIS)
        if broken is None and head is not None and last is not None:
            if head.seq != end_seq or bytes(head.last_hash) != end_hash:
                broken = f"chain {chain_no}: the last row(s) are missing (head at seq {head.seq}, rows end at {end_seq})"
        if broken is None and head is not None and last is None and head.seq and since is None:
            broken = f"chain {chain_no}: all {head.seq} row(s) are missing"
        if broken:
            report.broken.append(broken)
        elif since is None:
            report.ends[chain_no] = (end_seq, end_hash)
    return report


def save_checkpoints(ends: dict[int, tuple[int, bytes]]) -> None:
    """Remember where each chain's verified rows end (only ever called for a run whose every check passed)."""
    now = timezone.now()
    for chain_no, (seq, digest) in ends.items():
        if seq:
            ChainCheckpoint.objects.update_or_create(
                chain=chain_no,
                defaults={
                    "seq": seq,
                    "row_hash": digest,
                    "verified_at": now,
                    "mac": checkpoint_mac(chain_no, seq, digest, now),
                },
            )


def check_rows(rows) -> list[str]:
    """Re-hash given rows against their own link (content check only), e.g. the rows of an incident's scope."""
    problems = []
    for values in rows.values_list(*_VERIFY_COLUMNS).iterator(chunk_size=5000):
        row = _as_row(values)
        if not _intact(row):
            problems.append(f"chain {row.chain}: seq {row.seq} ({row.reference}) was altered")
            if len(problems) >= 20:
                break
    return problems
