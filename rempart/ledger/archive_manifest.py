"""The ledger archive's layout, Parquet schema and signed manifests (docs/ledger-archive.md).

One directory per archived month (``YYYY-MM/``) holds one Parquet file per chain segment and ``manifest.json``:
the files with their sizes, SHA-256 and chain checkpoints, signed with the anchors' Ed25519 key
(rempart.ledger.anchors). The manifest is what makes the files evidence: a file whose hash or a manifest whose
signature does not match is refused by every reader, so that nobody can edit the archive without the key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings

FORMAT = "rempart-ledger-archive/1"
MANIFEST = "manifest.json"
# Within each file rows are sorted by the columns scopes select on, actors first: a scope by account or token then
# reads one row group per file (Parquet min/max statistics prune the others); ip_key and time come next.
SORT_KEY = ("user_id", "token_id", "organisation_id", "ip_key", "created_at")
ROW_GROUP_ROWS = 65_536
MAX_FILE_ROWS = 1_000_000  # a chain's month is cut into files of at most this many rows (bounded memory)
CHECKPOINT_EVERY = 100_000  # a (seq, hash) every N rows of a file, so verification can start mid-file

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("chain", pa.int16()),
        ("seq", pa.int64()),
        ("prev_hash", pa.binary()),
        ("row_hash", pa.binary()),
        ("reference", pa.string()),
        ("channel", pa.string()),
        ("purpose", pa.string()),
        ("organisation_id", pa.int64()),
        ("user_id", pa.int64()),
        ("token_id", pa.int64()),
        ("session_ref", pa.string()),
        ("ip_address", pa.string()),  # as the database returns it (what the row's hash covers)
        (
            "ip_key",
            pa.binary(),
        ),  # family byte + packed address: networks become byte ranges (derived, not hashed)
        ("insurer_id", pa.int64()),
        ("beneficiary_id", pa.int64()),
        ("presented_hash", pa.binary()),
        ("domain", pa.string()),
        ("care_date", pa.date32()),
        ("outcome", pa.string()),
        ("fields", pa.string()),  # the JSON list, as json.dumps writes it
        ("hash_version", pa.int16()),
    ]
)


class ArchiveError(Exception):
    """The archive cannot be trusted or used as asked (message safe to show: no personal data)."""


def archive_dir() -> Path:
    return Path(settings.REMPART_LEDGER_ARCHIVE_DIR)


def ip_key(address: str | None) -> bytes | None:
    if not address:
        return None
    ip = ipaddress.ip_address(address)
    return bytes([ip.version]) + ip.packed


def network_range(network: str) -> tuple[bytes, bytes]:
    """The (lowest, highest) ip_key of a network: ``ip_address <<= network`` as a byte range."""
    net = ipaddress.ip_network(network, strict=False)
    return (
        bytes([net.version]) + net.network_address.packed,
        bytes([net.version]) + net.broadcast_address.packed,
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (so that a rename or a new file survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# The anchors' key and its forms, as rempart.ledger.anchors uses them (not imported: anchors reads the chains,
# which read the archive).
def _signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.REMPART_LEDGER_SIGNING_KEY))


def key_id(key) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(payload: dict) -> bytes:
    unsigned = {name: value for name, value in payload.items() if name != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def trusted_keys() -> dict:
    key = _signing_key().public_key()
    return {key_id(key): key}


def sign(payload: dict) -> dict:
    key = _signing_key()
    payload = {**payload, "format": FORMAT, "key_id": key_id(key.public_key())}
    signature = key.sign(canonical(payload))
    return {**payload, "signature": base64.b64encode(signature).decode()}


@dataclass(frozen=True)
class Manifest:
    month: str
    directory: Path
    document: dict

    @property
    def files(self) -> list[dict]:
        return self.document["files"]

    @property
    def rows(self) -> int:
        return int(self.document["rows"])

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.document["from"])

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.document["to"])

    def path(self, entry: dict) -> Path:
        return self.directory / entry["name"]


def parse(text: str, directory: Path, keys=None) -> Manifest:
    """A manifest whose signature verifies with a trusted key, or ArchiveError."""
    where = f"archive {directory.name}"
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise ArchiveError(f"{where}: the manifest is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArchiveError(f"{where}: not a Rempart ledger archive manifest ({FORMAT})")
    key = (keys or trusted_keys()).get(str(document.get("key_id")))
    if key is None:
        raise ArchiveError(f"{where}: the manifest is signed with an unknown key")
    try:
        key.verify(base64.b64decode(str(document.get("signature", "")), validate=True), canonical(document))
    except (InvalidSignature, ValueError):
        raise ArchiveError(f"{where}: the manifest's signature does not verify (altered or forged)") from None
    if document.get("month") != directory.name:
        raise ArchiveError(f"{where}: the manifest is for {document.get('month')!r}, not this directory")
    return Manifest(document["month"], directory, document)


def load_all(root: Path | None = None, keys=None) -> tuple[list[Manifest], list[str]]:
    """Every archived month's manifest, oldest first, each signature checked; problems for those that fail.

    A directory without a manifest is an archive run that did not finish (its month's rows are still in the
    database): it is skipped, and the next run rewrites it."""
    root = root or archive_dir()
    manifests, problems = [], []
    if not root.is_dir():
        return manifests, problems
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = directory / MANIFEST
        if not path.exists():
            continue
        try:
            manifests.append(parse(path.read_text(encoding="utf-8"), directory, keys))
        except (OSError, UnicodeDecodeError):
            problems.append(f"archive {directory.name}: the manifest is unreadable")
        except ArchiveError as exc:
            problems.append(str(exc))
    return manifests, problems


def check_files(manifest: Manifest, *, full: bool) -> list[str]:
    """Each file is there with its size; ``full``: and its SHA-256 (reads every byte)."""
    problems = []
    names = {entry["name"] for entry in manifest.files}
    for path in manifest.directory.glob("*.parquet"):
        if path.name not in names:
            problems.append(f"archive {manifest.month}: {path.name} is not in the manifest")
    for entry in manifest.files:
        path = manifest.path(entry)
        where = f"archive {manifest.month}: {entry['name']}"
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{where} is missing")
            continue
        if size != entry["bytes"]:
            problems.append(f"{where} has {size} bytes, the manifest says {entry['bytes']} (altered)")
        elif full and sha256_of(path) != entry["sha256"]:
            problems.append(f"{where} does not have the SHA-256 of the manifest (altered)")
    return problems
