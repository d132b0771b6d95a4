"""Appending to the ledger's hash chains, and verifying them.

Each row's hash is an HMAC-SHA256 (key derived from the blind-index key, so an attacker who can
write to the database but does not hold the key cannot forge a consistent chain) over the previous
row's hash and the row's canonical content.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
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
from rempart.lib import hot_sql

GENESIS = bytes(32)
HASHED_FIELDS = (
    "created_at", "chain", "seq", "reference", "channel", "purpose", "organisation_id", "user_id", "token_id",
    "session_ref", "ip_address", "insurer_id", "beneficiary_id", "presented_hash", "domain", "care_date",
    "outcome", "fields",
)  # fmt: skip


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
    """The HMAC of a row (a Disclosure or any object with the hashed fields as attributes)."""
    content = {name: _canonical(getattr(row, name)) for name in HASHED_FIELDS}
    message = bytes(prev_hash) + json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_ledger_key(), message, hashlib.sha256).digest()


def new_reference() -> str:
    """A check reference a professional can read over the phone: RC-XXXX-XXXX-XXXX (base32: A-Z and 2-7)."""
    raw = base64.b32encode(secrets.token_bytes(8)).decode().rstrip("=")[:12]
    return f"RC-{raw[0:4]}-{raw[4:8]}-{raw[8:12]}"


INSERTED_FIELDS = ("prev_hash", "row_hash", *HASHED_FIELDS)
_TAKE_SEQ = hot_sql.Statement(
    # Locks the chain's head until the transaction ends: appends to one chain are serialised, others run on.
    "UPDATE ledger_chainhead SET seq = seq + 1 WHERE chain = %s RETURNING seq, last_hash",
    [hot_sql.field(ChainHead, "seq"), hot_sql.field(ChainHead, "last_hash")],
)
_PLACEHOLDERS = ", ".join(["%s"] * len(INSERTED_FIELDS))
_INSERT = (
    f"INSERT INTO ledger_disclosure ({', '.join(INSERTED_FIELDS)}) VALUES ({_PLACEHOLDERS}) RETURNING id"  # noqa: S608
)
_SET_HEAD = "UPDATE ledger_chainhead SET last_hash = %s WHERE chain = %s"
# PostgreSQL: the row and the head's new hash in one round trip.
_INSERT_AND_SET_HEAD = f"WITH new_row AS ({_INSERT}) {_SET_HEAD} RETURNING (SELECT id FROM new_row)"  # noqa: S608


def _take_seq(chain_no: int) -> tuple[int, bytes]:
    """The chain's next sequence number and its last hash, its head locked; the head is created if missing."""
    head = _TAKE_SEQ.first([chain_no])
    if head is None:
        with transaction.atomic():  # a savepoint: a concurrent creator wins, we then lock its row
            ChainHead.objects.get_or_create(chain=chain_no, defaults={"seq": 0, "last_hash": GENESIS})
        head = _TAKE_SEQ.first([chain_no])
    return head[0], bytes(head[1])


def append(**values) -> Disclosure:
    """Append one row; must run inside the caller's transaction (the answer and its row commit together).

    Written with fixed prepared statements (rempart.lib.hot_sql): two round trips on PostgreSQL.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger rows are written inside the answer's transaction")
    chain_no = secrets.randbelow(CHAIN_COUNT)
    seq, prev_hash = _take_seq(chain_no)
    row = Disclosure(
        created_at=values.pop("created_at", None) or timezone.now(),
        chain=chain_no,
        seq=seq,
        prev_hash=prev_hash,
        reference=values.pop("reference", None) or new_reference(),
        **values,
    )
    row.row_hash = row_hash(row, prev_hash)
    params = [hot_sql.prepare_value(Disclosure, name, getattr(row, name)) for name in INSERTED_FIELDS]
    if connection.vendor == "postgresql":
        (row.id,) = hot_sql.run(_INSERT_AND_SET_HEAD, [*params, row.row_hash, chain_no], fetch=True)[0]
    else:
        (row.id,) = hot_sql.run(_INSERT, params, fetch=True)[0]
        hot_sql.run(_SET_HEAD, [row.row_hash, chain_no])
    row._state.adding = False
    return row


_VERIFY_COLUMNS = (*HASHED_FIELDS, "prev_hash", "row_hash")


@dataclass
class VerifyReport:
    rows: int = 0
    chains: int = 0
    broken: list[str] = field(default_factory=list)
    checkpoint_at: dt.datetime | None = None  # when started from checkpoints: the oldest one used

    @property
    def ok(self) -> bool:
        return not self.broken


def check_anchors(anchors: dict[int, tuple[int, bytes]]) -> list[str]:
    """Compare saved chain heads (``rempart ledger heads`` output kept elsewhere) with the rows now stored.

    Catches the one change the chain alone cannot: the newest rows cut and the head rewound.
    """
    problems = []
    for chain_no, (seq, digest) in sorted(anchors.items()):
        if seq == 0:
            continue
        row = Disclosure.objects.filter(chain=chain_no, seq=seq).only("row_hash").first()
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


def verify(
    since: dt.datetime | None = None, *, from_checkpoints: bool = False, save_checkpoints: bool = False
) -> VerifyReport:
    """Recompute every chain and report the first broken link of each.

    ``since``: only rows from that time (the first row's link is trusted). ``from_checkpoints``: start each
    chain after the last row a complete verification found intact (that row must still carry the same hash),
    so that a routine check reads only what is new. ``save_checkpoints``: when every chain is intact from its
    start (or from its checkpoint), remember where each one ends.
    """
    report = VerifyReport()
    heads = {head.chain: head for head in ChainHead.objects.all()}
    checkpoints = {cp.chain: cp for cp in ChainCheckpoint.objects.all()} if from_checkpoints else {}
    ends = {}
    for chain in range(CHAIN_COUNT):
        rows = Disclosure.objects.filter(chain=chain).order_by("seq")
        checkpoint = checkpoints.get(chain)
        expected_seq, expected_prev = None, None
        broken = None
        if checkpoint is not None:
            values = (
                Disclosure.objects.filter(chain=chain, seq=checkpoint.seq)
                .values_list(*_VERIFY_COLUMNS)
                .first()
            )
            anchor = SimpleNamespace(**dict(zip(_VERIFY_COLUMNS, values, strict=True))) if values else None
            if (
                anchor is None
                or bytes(anchor.row_hash) != bytes(checkpoint.row_hash)
                or row_hash(anchor, bytes(anchor.prev_hash)) != bytes(anchor.row_hash)
            ):
                broken = (
                    f"chain {chain}: the row verified at seq {checkpoint.seq} was altered or removed since"
                )
            rows = rows.filter(seq__gt=checkpoint.seq)
            expected_seq, expected_prev = checkpoint.seq + 1, bytes(checkpoint.row_hash)
            report.checkpoint_at = min(filter(None, [report.checkpoint_at, checkpoint.verified_at]))
        elif since is not None:
            rows = rows.filter(created_at__gte=since)
        # Plain tuples, not model instances: verifying 100 M rows is bound by this loop.
        rows = (
            SimpleNamespace(**dict(zip(_VERIFY_COLUMNS, values, strict=True)))
            for values in rows.values_list(*_VERIFY_COLUMNS).iterator(chunk_size=5000)
        )
        last = None
        for row in [] if broken else rows:
            report.rows += 1
            if expected_seq is None:
                if since is None:  # the whole chain: it must start at 1 from the genesis hash
                    expected_seq, expected_prev = 1, GENESIS
                else:  # from a date: trust the first row's link, check everything after it
                    expected_seq, expected_prev = row.seq, bytes(row.prev_hash)
            if row.seq != expected_seq:
                broken = f"chain {chain}: row(s) missing before seq {row.seq} (expected {expected_seq})"
                break
            if bytes(row.prev_hash) != expected_prev:
                broken = f"chain {chain}: seq {row.seq} ({row.reference}) does not link to the previous row"
                break
            if row_hash(row, expected_prev) != bytes(row.row_hash):
                broken = f"chain {chain}: seq {row.seq} ({row.reference}) was altered"
                break
            expected_seq, expected_prev, last = row.seq + 1, bytes(row.row_hash), row
        head = heads.get(chain)
        end_seq = last.seq if last else (checkpoint.seq if checkpoint else 0)
        end_hash = bytes(last.row_hash) if last else (bytes(checkpoint.row_hash) if checkpoint else GENESIS)
        if broken is None and head is not None and (last is not None or checkpoint is not None):
            if head.seq != end_seq or bytes(head.last_hash) != end_hash:
                broken = f"chain {chain}: the last row(s) are missing (head at seq {head.seq}, rows end at {end_seq})"
        if (
            broken is None
            and head is not None
            and last is None
            and checkpoint is None
            and head.seq
            and since is None
        ):
            broken = f"chain {chain}: all {head.seq} row(s) are missing"
        if broken:
            report.broken.append(broken)
        ends[chain] = (end_seq, end_hash)
        report.chains += 1
    if save_checkpoints and report.ok and (since is None or from_checkpoints):
        now = timezone.now()
        for chain, (seq, digest) in ends.items():
            if seq:
                ChainCheckpoint.objects.update_or_create(
                    chain=chain, defaults={"seq": seq, "row_hash": digest, "verified_at": now}
                )
    return report


def check_rows(rows) -> list[str]:
    """Re-hash given rows against their own link (content check only), e.g. the rows of an incident's scope."""
    problems = []
    for values in rows.values_list(*_VERIFY_COLUMNS).iterator(chunk_size=5000):
        row = SimpleNamespace(**dict(zip(_VERIFY_COLUMNS, values, strict=True)))
        if row_hash(row, bytes(row.prev_hash)) != bytes(row.row_hash):
            problems.append(f"chain {row.chain}: seq {row.seq} ({row.reference}) was altered")
            if len(problems) >= 20:
                break
    return problems
