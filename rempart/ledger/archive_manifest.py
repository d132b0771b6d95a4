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

# Version 2 (written now): chain files in seq order without prev_hash (it is the previous row's row_hash, given by
# the manifest at each file's start) and two narrow scope copies per month. Version 1 (read still): chain files
# sorted for scopes, with prev_hash and ip_key. docs/ledger-archive.md §2.
FORMAT_V1 = "rempart-ledger-archive/1"
FORMAT = "rempart-ledger-archive/2"
FORMATS = {FORMAT_V1: 1, FORMAT: 2}
MANIFEST = "manifest.json"
STAGE = ".stage"  # a month's scratch rows for the scope copies, removed once the copies are written
ROW_GROUP_ROWS = 262_144  # chain files (read whole, in order: big groups keep a dictionary's values together)
MAX_FILE_ROWS = 1_000_000  # a chain's month is cut into files of at most this many rows (bounded memory)
CHECKPOINT_EVERY = 100_000  # a (seq, hash) every N rows of a file, so verification can start mid-file
# Version 1 sorted each chain file by these (kept for the manifests that say so).
SORT_KEY_V1 = ("user_id", "token_id", "organisation_id", "ip_key", "created_at")

_HASHED = [
    ("id", pa.int64()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("chain", pa.int16()),
    ("seq", pa.int64()),
    ("row_hash", pa.binary(32)),  # an HMAC-SHA256: fixed width, no length per value
    ("reference", pa.string()),
    ("channel", pa.string()),
    ("purpose", pa.string()),
    ("organisation_id", pa.int64()),
    ("user_id", pa.int64()),
    ("token_id", pa.int64()),
    ("session_ref", pa.string()),
    ("ip_address", pa.string()),  # as the database returns it (what the row's hash covers)
    ("insurer_id", pa.int64()),
    ("beneficiary_id", pa.int64()),
    ("presented_hash", pa.binary()),
    ("domain", pa.string()),
    ("care_date", pa.date32()),
    ("outcome", pa.string()),
    ("fields", pa.string()),  # the JSON list, as json.dumps writes it
    ("hash_version", pa.int16()),
]
SCHEMA = pa.schema(_HASHED)
# Version 1's chain files: prev_hash stored, row_hash variable-width, and ip_key.
SCHEMA_V1 = pa.schema(
    [
        *[(n, pa.binary() if n == "row_hash" else t) for n, t in _HASHED[:4]],
        ("prev_hash", pa.binary()),
        *[(n, pa.binary() if n == "row_hash" else t) for n, t in _HASHED[4:13]],
        ("ip_key", pa.binary()),
        *_HASHED[13:],
    ]
)
# Integer columns in (nearly) increasing order within a chain file: delta-encoded. Random bytes and one-off texts
# gain nothing from a dictionary: plain (their lengths delta-encoded).
DELTA_COLUMNS = ("id", "created_at", "seq")
PLAIN_COLUMNS = {
    "row_hash": "PLAIN",
    "reference": "DELTA_LENGTH_BYTE_ARRAY",
    "presented_hash": "DELTA_LENGTH_BYTE_ARRAY",
}

# The scope copies: every row of the month, only the columns scopes read, sorted so that DuckDB skips the row groups
# of other actors (min/max statistics). ip_key (family byte + packed address, derived) turns ``ip_address <<=
# network`` into a byte range; ip_address stays so that the copies can be checked against the chain files.
SCOPE_SCHEMA = pa.schema(
    [
        ("organisation_id", pa.int64()),
        ("user_id", pa.int64()),
        ("token_id", pa.int64()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("purpose", pa.string()),
        ("ip_address", pa.string()),
        ("ip_key", pa.binary()),
        ("insurer_id", pa.int64()),
        ("beneficiary_id", pa.int64()),
        ("outcome", pa.string()),
        ("fields", pa.string()),
    ]
)
SCOPE_COPIES = {
    # Accounts first, then tokens (rows without an account): their row groups and pages have narrow ranges, so a
    # list of accounts prunes too; an organisation's few values per row group are found by the dictionary.
    "actor": ("user_id", "token_id", "organisation_id", "created_at"),
    "ip": ("ip_key", "created_at"),  # source networks
}
# The address copy keeps ip_address (its ip_key is checked against it); the actor copy is checked against the
# address copy, ip_key included.
SCOPE_COPY_COLUMNS = {
    "actor": tuple(n for n in SCOPE_SCHEMA.names if n != "ip_address"),
    "ip": tuple(SCOPE_SCHEMA.names),
}
# Big row groups keep the footer DuckDB parses for every scope small (it costs more than the data it prunes);
# small pages with a page index let DuckDB skip within a row group.
SCOPE_ROW_GROUP_ROWS = 262_144
SCOPE_PAGE_ROWS = 8_192
SCOPE_DELTA_COLUMNS = ("created_at", "beneficiary_id")


def scope_file(copy: str) -> str:
    return f"scope-{copy}.parquet"


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
    payload = {"format": FORMAT, **payload, "key_id": key_id(key.public_key())}
    signature = key.sign(canonical(payload))
    return {**payload, "signature": base64.b64encode(signature).decode()}


@dataclass(frozen=True)
class Manifest:
    month: str
    directory: Path
    document: dict

    @property
    def version(self) -> int:
        return FORMATS[self.document["format"]]

    @property
    def files(self) -> list[dict]:
        """The chain files."""
        return self.document["files"]

    @property
    def scope_files(self) -> dict[str, dict]:
        """Version 2: the scope copies by name of copy ("actor", "ip"); version 1 has none."""
        return self.document.get("scope_files", {})

    def scope_path(self, copy: str) -> Path:
        return self.directory / self.scope_files[copy]["name"]

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
    if not isinstance(document, dict) or document.get("format") not in FORMATS:
        raise ArchiveError(f"{where}: not a Rempart ledger archive manifest ({', '.join(FORMATS)})")
    key = (keys or trusted_keys()).get(str(document.get("key_id")))
    if key is None:
        raise ArchiveError(f"{where}: the manifest is signed with an unknown key")
    try:
        key.verify(base64.b64decode(str(document.get("signature", "")), validate=True), canonical(document))
    except (InvalidSignature, ValueError):
        raise ArchiveError(f"{where}: the manifest's signature does not verify (altered or forged)") from None
    if document.get("month") != directory.name:
        raise ArchiveError(f"{where}: the manifest is for {document.get('month')!r}, not this directory")
    if FORMATS[document["format"]] > 1 and set(document.get("scope_files") or {}) != set(SCOPE_COPIES):
        raise ArchiveError(
            f"{where}: the manifest does not list the scope copies ({', '.join(SCOPE_COPIES)})"
        )
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
    entries = [*manifest.files, *manifest.scope_files.values()]
    names = {entry["name"] for entry in entries}
    for path in manifest.directory.glob("*.parquet"):
        if path.name not in names:
            problems.append(f"archive {manifest.month}: {path.name} is not in the manifest")
    for entry in entries:
        path = manifest.directory / entry["name"]
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
