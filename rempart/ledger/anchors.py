"""Signed anchors: every chain's head, signed with Ed25519 and kept outside the database.

The chains prove that no row was changed or removed *between* two rows; they cannot prove that the newest
rows were not cut off with the heads rewound, or a whole chain wiped with its head reset, because the heads
are ordinary rows the application must update. An anchor is a statement "at this time, chain c ended at
seq s with hash h", signed with a key the database does not hold, written to an append-only directory
(one file per anchor, never overwritten) and published to every insurer, who keep their copies. A later
verification against any anchor finds the anchored row gone, or the head behind it.

Format (``rempart-ledger-anchor/1``): a JSON object with ``format``, ``number``, ``anchored_at`` (ISO 8601,
UTC), ``trigger``, ``key_id``, ``chains`` (a list of ``{"chain", "seq", "hash"}``, every chain), optionally
``accepted_break``, and ``signature``: base64 Ed25519 over the object without ``signature`` serialised as
canonical JSON (sorted keys, no spaces, ASCII). docs/incident-response.md shows how to check one by hand.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from rempart.ledger import chain
from rempart.ledger.models import CHAIN_COUNT, ChainHead, Disclosure, LedgerAnchor, VerificationRun

FORMAT = "rempart-ledger-anchor/1"
logger = logging.getLogger(__name__)


class AnchorRefused(Exception):
    """The heads contradict what was anchored or verified before: signing them would bless a cut ledger."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- keys


@cache
def signing_key() -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(settings.REMPART_LEDGER_SIGNING_KEY, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError:
        raise ImproperlyConfigured("REMPART_LEDGER_SIGNING_KEY: base64 of 32 bytes expected") from None


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of the SHA-256 of its 32 raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(key: Ed25519PublicKey | None = None) -> str:
    key = key or public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def read_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def canonical(payload: dict) -> bytes:
    unsigned = {name: value for name, value in payload.items() if name != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# --- reading anchors


@dataclass(frozen=True)
class Anchor:
    number: int
    anchored_at: dt.datetime
    trigger: str
    key_id: str
    chains: dict[int, tuple[int, bytes]]
    source: str
    document: dict = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"anchor #{self.number} of {timezone.localtime(self.anchored_at):%Y-%m-%d %H:%M}"


def parse(document: dict, source: str, keys: dict[str, Ed25519PublicKey]) -> Anchor:
    """A checked anchor, or ValueError saying what is wrong with it (the signature above all)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{source}: not a Rempart ledger anchor ({FORMAT})")
    key = keys.get(str(document.get("key_id")))
    if key is None:
        raise ValueError(f"{source}: signed with an unknown key ({str(document.get('key_id'))[:20]})")
    try:
        key.verify(base64.b64decode(str(document.get("signature", "")), validate=True), canonical(document))
    except (InvalidSignature, ValueError):
        raise ValueError(f"{source}: the signature does not verify (a forged or altered anchor)") from None
    try:  # signed by us, so well formed; still, never trust a parse
        chains = {int(c["chain"]): (int(c["seq"]), bytes.fromhex(c["hash"])) for c in document["chains"]}
        anchored_at = dt.datetime.fromisoformat(document["anchored_at"])
        number = int(document["number"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{source}: malformed anchor") from None
    return Anchor(
        number, anchored_at, str(document.get("trigger", "")), document["key_id"], chains, source, document
    )


def trusted_keys(extra: list[Ed25519PublicKey] = ()) -> dict[str, Ed25519PublicKey]:
    """The platform's key and any given explicitly (a previous key, after a rotation); never keys found beside
    the anchors being checked, which whoever forged them could have put there."""
    return {key_id(key): key for key in [public_key(), *extra]}


def _documents_in(path: Path) -> list[tuple[dict, str]]:
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    if isinstance(data, dict) and isinstance(data.get("anchors"), list):  # the API's or the portal's list
        data = data["anchors"]
    if isinstance(data, list):
        return [(item, f"{path.name}[{n}]") for n, item in enumerate(data)]
    return [(data, path.name)]


def load(paths: list[Path], keys: dict[str, Ed25519PublicKey]) -> tuple[list[Anchor], list[str]]:
    """Every anchor in the given files or directories (``*.json``), and a problem for each that does not check."""
    found, problems = [], []
    for path in paths:
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            try:
                documents = _documents_in(file)
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                problems.append(f"{file.name}: unreadable ({exc.__class__.__name__})")
                continue
            for document, source in documents:
                try:
                    found.append(parse(document, source, keys))
                except ValueError as exc:
                    problems.append(str(exc))
    return found, problems


def anchor_dir() -> Path:
    return Path(settings.REMPART_LEDGER_ANCHOR_DIR)


def _number_in_name(path: Path) -> int | None:
    parts = path.name.split("-")
    return int(parts[1]) if len(parts) == 3 and parts[0] == "anchor" and parts[1].isdigit() else None


def local_anchors(
    keys: dict[str, Ed25519PublicKey] | None = None, *, newest_only: bool = False
) -> tuple[list[Anchor], list[str]]:
    """The anchors of the directory and of the database, each checked, and each copy's absence from the other:
    a number in one and not the other means one of them lost an anchor.

    ``newest_only`` (routine runs, freezes, signing): the presence of every number is still compared, but only the
    newest anchor of each copy is read and its signature checked, so the cost does not grow with the years;
    complete runs read and check them all."""
    keys = keys or trusted_keys()
    directory = anchor_dir()
    files = {}
    problems = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        number = _number_in_name(path)
        if number is None:
            problems.append(f"{path.name}: not an anchor's name, in the anchor directory")
        else:
            files[number] = path
    db_numbers = set(LedgerAnchor.objects.values_list("number", flat=True))
    for number in sorted(db_numbers - set(files)):
        problems.append(f"anchor #{number} is in the database but not in {directory}")
    for number in sorted(set(files) - db_numbers):
        problems.append(f"anchor #{number} is in {directory} but not in the database")
    wanted = sorted(set(files) | db_numbers)[-1:] if newest_only else sorted(set(files) | db_numbers)
    in_dir = []
    for number in wanted:
        if number not in files:
            continue
        found, file_problems = load([files[number]], keys)
        problems += file_problems
        for anchor in found:
            if anchor.number == number:
                in_dir.append(anchor)
            else:
                problems.append(f"{anchor.source}: holds anchor #{anchor.number} under another number's name")
    in_db = []
    for stored in LedgerAnchor.objects.filter(number__in=wanted).order_by("number"):
        try:
            in_db.append(parse(json.loads(stored.document), f"database anchor #{stored.number}", keys))
        except (ValueError, json.JSONDecodeError) as exc:
            problems.append(str(exc))
    by_number = {a.number: a for a in in_dir}
    for anchor in in_db:
        twin = by_number.get(anchor.number)
        if twin is not None and canonical(twin.document) != canonical(anchor.document):
            problems.append(f"anchor #{anchor.number} differs between the database and {directory}")
    merged = {a.number: a for a in in_db} | by_number
    return sorted(merged.values(), key=lambda a: a.number), problems


# --- checking the ledger against anchors


def check(anchors: list[Anchor], *, every_anchor: bool = True) -> tuple[int, list[str]]:
    """Prove that nothing anchored was removed: each anchored row is there with its anchored hash, and from the
    newest anchor every chain links up to its head (which cannot be behind the anchor). Returns (rows, problems)."""
    if not anchors:
        return 0, []
    heads = {head.chain: head for head in ChainHead.objects.all()}
    problems, rows = [], 0
    newest = max(anchors, key=lambda a: a.number)
    archive = None
    if every_anchor:
        wanted: dict[int, dict[int, tuple[bytes, Anchor]]] = {}
        for anchor in sorted(anchors, key=lambda a: a.number):
            for chain_no, (seq, digest) in anchor.chains.items():
                if not seq:
                    continue
                first = wanted.setdefault(chain_no, {}).setdefault(seq, (digest, anchor))
                if first[0] != digest:
                    problems.append(
                        f"chain {chain_no}: {first[1].label} and {anchor.label} disagree on seq {seq} (chain rewritten)"
                    )
        for chain_no, by_seq in sorted(wanted.items()):
            seqs = sorted(by_seq)
            stored = {}
            for start in range(0, len(seqs), 1000):
                part = seqs[start : start + 1000]
                stored |= dict(
                    Disclosure.objects.filter(chain=chain_no, seq__in=part).values_list("seq", "row_hash")
                )
            # Rows of archived months (docs/ledger-archive.md) are looked up in the archive.
            if missing := [seq for seq in seqs if seq not in stored]:
                archive = archive or chain._archive()
                stored |= archive.hashes(chain_no, missing)
            for seq in seqs:
                digest, anchor = by_seq[seq]
                if seq not in stored:
                    problems.append(f"chain {chain_no}: the row at seq {seq} ({anchor.label}) is gone")
                elif bytes(stored[seq]) != digest:
                    problems.append(
                        f"chain {chain_no}: the row at seq {seq} ({anchor.label}) no longer has its hash"
                    )
    for chain_no in range(CHAIN_COUNT):
        seq, digest = newest.chains.get(chain_no, (0, chain.GENESIS))
        head = heads.get(chain_no)
        head_seq = head.seq if head else 0
        if head_seq < seq:
            problems.append(
                f"chain {chain_no}: the head is at seq {head_seq}, behind {newest.label} (seq {seq}): rows were cut"
            )
            continue
        if seq == 0:
            continue
        archive = archive or chain._archive()
        read, problem = chain.verify_from(chain_no, seq, digest, head, newest.label, archive)
        rows += read
        if problem:
            problems.append(problem)
    return rows, list(dict.fromkeys(problems))


# --- signing


def _heads() -> dict[int, tuple[int, bytes]]:
    stored = {h.chain: (h.seq, bytes(h.last_hash)) for h in ChainHead.objects.all()}
    return {n: stored.get(n, (0, chain.GENESIS)) for n in range(CHAIN_COUNT)}


def _contradictions(heads: dict[int, tuple[int, bytes]]) -> list[str]:
    """Cheap checks before signing (a few indexed reads): each head's row is there with the head's hash, and no
    head is behind the newest anchor or a checkpoint."""
    problems = []
    wanted = Q()
    for chain_no, (seq, _digest) in heads.items():
        if seq:
            wanted |= Q(chain=chain_no, seq=seq)
    stored = {}
    if wanted:
        stored = {
            (c, s): bytes(h)
            for c, s, h in Disclosure.objects.filter(wanted).values_list("chain", "seq", "row_hash")
        }
    archive = None
    for chain_no, (seq, digest) in heads.items():
        if seq and (chain_no, seq) not in stored:  # a chain whose last rows are archived
            archive = archive or chain._archive()
            stored |= {(chain_no, s): h for s, h in archive.hashes(chain_no, [seq]).items()}
        if seq and stored.get((chain_no, seq)) != digest:
            problems.append(f"chain {chain_no}: the head (seq {seq}) points at a row that is not there")
    local, load_problems = local_anchors(newest_only=True)
    problems += load_problems
    if local:
        newest = max(local, key=lambda a: a.number)
        for chain_no, (seq, digest) in newest.chains.items():
            head_seq, head_hash = heads.get(chain_no, (0, chain.GENESIS))
            if head_seq < seq or head_seq == seq and head_hash != digest:
                problems.append(
                    f"chain {chain_no}: the head (seq {head_seq}) is behind {newest.label} (seq {seq})"
                )
    report = chain.VerifyReport()
    for chain_no, checkpoint in chain.trusted_checkpoints(report).items():
        head_seq, head_hash = heads.get(chain_no, (0, chain.GENESIS))
        if (
            head_seq < checkpoint.seq
            or head_seq == checkpoint.seq
            and head_hash != bytes(checkpoint.row_hash)
        ):
            problems.append(
                f"chain {chain_no}: the head (seq {head_seq}) is behind its checkpoint (seq {checkpoint.seq})"
            )
    return problems + report.broken


def _write_once(directory: Path, name: str, content: bytes) -> Path:
    """Write a file atomically and never over another: a temporary file, synced, then hard-linked to its name
    (which fails if the name exists)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    temporary = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def publish_public_key(directory: Path | None = None) -> Path:
    """The public key beside the anchors, as ``public-key-<key id>.pem`` (a new file for a new key)."""
    directory = directory or anchor_dir()
    path = directory / f"public-key-{key_id(public_key())}.pem"
    if not path.exists():
        try:
            _write_once(directory, path.name, public_key_pem().encode())
        except FileExistsError:
            pass
    return path


def file_name(number: int, anchored_at: dt.datetime) -> str:
    return f"anchor-{number:06d}-{anchored_at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.json"


def sign_heads(trigger: str, *, accepted_break: str = "") -> tuple[LedgerAnchor, Path]:
    """Sign every chain's head now, write the anchor to the directory and the database (for the insurers).

    Refused (AnchorRefused, and the refusal recorded as a failed verification) when a head contradicts the newest
    anchor or a checkpoint, unless ``accepted_break`` says why the operator accepts the current heads (written
    into the signed anchor, for the insurers to read).
    """
    started = timezone.now()
    heads = _heads()
    problems = _contradictions(heads)
    if problems and not accepted_break:
        VerificationRun.objects.create(
            started_at=started, finished_at=timezone.now(), kind=VerificationRun.Kind.ANCHOR, ok=False,
            problems="\n".join(problems),
        )  # fmt: skip
        logger.error("ledger anchor refused: %s", "; ".join(problems))
        raise AnchorRefused(problems)
    publish_public_key()
    for _attempt in range(5):
        anchored_at = timezone.now()
        stored_max = LedgerAnchor.objects.aggregate(n=Max("number"))["n"] or 0
        on_disk = [_number_in_name(p) or 0 for p in anchor_dir().glob("anchor-*.json")]
        number = max([stored_max, *on_disk]) + 1
        payload = {
            "format": FORMAT,
            "number": number,
            "anchored_at": anchored_at.astimezone(dt.UTC).isoformat(),
            "trigger": trigger,
            "key_id": key_id(public_key()),
            "chains": [
                {"chain": n, "seq": seq, "hash": digest.hex()} for n, (seq, digest) in sorted(heads.items())
            ],
        }
        if accepted_break:
            payload["accepted_break"] = accepted_break[:500]
            payload["problems_accepted"] = problems[:20]
        payload["signature"] = base64.b64encode(signing_key().sign(canonical(payload))).decode()
        document = json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        try:
            with transaction.atomic():
                anchor = LedgerAnchor.objects.create(
                    number=number,
                    anchored_at=anchored_at,
                    trigger=trigger,
                    key_id=payload["key_id"],
                    document=document,
                )
                path = _write_once(anchor_dir(), file_name(number, anchored_at), document.encode())
        except (IntegrityError, FileExistsError):  # another anchor took the number: take the next
            continue
        return anchor, path
    raise RuntimeError("could not number the anchor (five concurrent attempts)")
