"""Appending a million ledger rows that differ in a field or two: the detail file's readers, at COPY speed.

An insurer's monthly detail file names about a million beneficiaries, and each gets its ledger row (purpose
``billing``). Through :func:`rempart.ledger.chain.append_many` a row costs ~60 µs of Python: a model instance,
its canonical dictionary, ``json.dumps``, and psycopg's per-value adaptation for COPY — a minute a month for
one file. The rows of such a batch are all alike but for their id, sequence number, reference and one or two
varying fields (``beneficiary_id``), so here the canonical JSON and the COPY line of the common part are built
**once**, and each row only splices its own values into both: a few µs a row.

The bytes hashed are exactly those :func:`rempart.ledger.chain.row_hash` would hash for the same row (keys
sorted, the same separators, the same canonical values), so the rows verify like any other; a test checks
each row against ``row_hash`` and the chain walk. On SQLite (the embedded default, small volumes) the batch
goes through ``append_many`` unchanged.
"""

from __future__ import annotations

import base64
import enum
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence

from django.db import connection
from django.utils import timezone

from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.lib import hot_sql

# Rows per COPY write (memory: one batch of lines).
_WRITE_EVERY = 20_000
_PER_ROW = ("id", "seq", "reference")


def _plain(value):
    """TextChoices and other enums as their value (what the ORM would store and ``json.dumps`` would write)."""
    return value.value if isinstance(value, enum.Enum) else value


def _json(value) -> str:
    return json.dumps(chain._canonical(value), sort_keys=True, separators=(",", ":"))


def _copy_text(field, value) -> str:
    """One value in COPY's text format (``\\N`` for NULL, backslash escapes)."""
    if value is None:
        return r"\N"
    if isinstance(value, bytes | memoryview):
        return r"\\x" + bytes(value).hex()
    if field.get_internal_type() == "JSONField":
        value = json.dumps(value)
    elif hasattr(value, "isoformat"):
        value = value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def append_same(common: dict, varying: Sequence[dict]) -> int:
    """Append one row per entry of ``varying`` (each the same keys), all sharing ``common``; in the caller's
    transaction, chained in order on one chain head. Returns how many rows were written."""
    if not connection.in_atomic_block:
        raise RuntimeError("ledger rows are written inside the answer's transaction")
    if not varying:
        return 0
    keys = tuple(sorted(varying[0]))
    if any(key in _PER_ROW or key in common for key in keys):
        raise ValueError("a varying field is either per row or common, not both")
    if connection.vendor != "postgresql":
        chain.append_many([{**common, **values} for values in varying])
        return len(varying)
    return _append_pg(common, keys, varying)


def _append_pg(common: dict, keys: tuple[str, ...], varying: Sequence[dict]) -> int:
    count = len(varying)
    chain_no, last_seq, prev_hash, first_id = chain._take(count)
    ids = [first_id]
    if count > 1:
        ids += sorted(row[0] for row in hot_sql.run(chain._PG_IDS, [count - 1], fetch=True))
    template = Disclosure(
        id=None, hash_version=chain.CURRENT_HASH_VERSION, chain=chain_no, seq=0, prev_hash=b"", reference="",
        created_at=common.get("created_at") or timezone.now(),
        **{k: _plain(v) for k, v in common.items() if k != "created_at"},
    )  # fmt: skip
    slots = (*_PER_ROW, *keys)
    hashed = _Spliced(
        {name: _json(_plain(getattr(template, name))) for name in chain.HASHED_FIELDS},
        [name for name in sorted(chain.HASHED_FIELDS) if name in slots],
        key_json=True,
    )
    fields = {f.attname: f for f in Disclosure._meta.concrete_fields}
    columns = chain.INSERTED_FIELDS
    line = _Spliced(
        {name: _copy_text(fields[name], _plain(getattr(template, name))) for name in columns},
        [name for name in columns if name in (*slots, "prev_hash", "row_hash")],
        order=columns,
    )
    key = chain._ledger_key()
    first_seq = last_seq - count + 1
    names = ", ".join(connection.ops.quote_name(fields[name].column) for name in columns)
    references = _references(count)
    buffer: list[str] = []
    with connection.wrap_database_errors, connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ledger_disclosure ({names}) FROM STDIN") as copy:  # noqa: S608
            for offset, values in enumerate(varying):
                row_id, seq, reference = str(ids[offset]), str(first_seq + offset), references[offset]
                as_json = {"id": row_id, "seq": seq, "reference": f'"{reference}"'}
                as_text = {"id": row_id, "seq": seq, "reference": reference}
                for name in keys:
                    value = values[name]
                    if type(value) is int:
                        as_json[name] = as_text[name] = str(value)
                    else:
                        as_json[name] = _json(value)
                        as_text[name] = _copy_text(fields[name], value)
                digest = hmac.digest(key, prev_hash + hashed.render(as_json).encode(), "sha256")
                as_text["prev_hash"], as_text["row_hash"] = r"\\x" + prev_hash.hex(), r"\\x" + digest.hex()
                buffer.append(line.render(as_text))
                prev_hash = digest
                if len(buffer) >= _WRITE_EVERY:
                    copy.write("\n".join(buffer) + "\n")
                    buffer.clear()
            if buffer:
                copy.write("\n".join(buffer) + "\n")
    hot_sql.run(chain._SET_HEAD, [prev_hash, chain_no])
    return count


def _references(count: int) -> list[str]:
    """``count`` new references, as :func:`chain.new_reference` makes them (60 random bits each, base32), drawn
    in one call: 15 random bytes are 24 base32 characters, two references."""
    pairs = (count + 1) // 2
    raw = base64.b32encode(secrets.token_bytes(15 * pairs)).decode()
    out = []
    for start in range(0, 24 * pairs, 12):
        text = raw[start : start + 12]
        out.append(f"RC-{text[0:4]}-{text[4:8]}-{text[8:12]}")
    return out[:count]


class _Spliced:
    """A fixed text (a row's canonical JSON, or its COPY line) with holes for the values that change per row.

    ``parts`` maps each name to its text; ``holes`` are the names filled per row. JSON: ``{"k":v,…}`` with keys
    sorted (as ``json.dumps(sort_keys=True, separators=(",", ":"))`` writes them); COPY: tab-separated in
    ``order``.
    """

    def __init__(
        self, parts: dict[str, str], holes: Iterable[str], *, key_json: bool = False,
        order: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        self._holes = list(holes)
        names = sorted(parts) if key_json else list(order or parts)
        self._segments: list[str] = []
        current = "{" if key_json else ""
        separator = "," if key_json else "\t"
        for index, name in enumerate(names):
            if index:
                current += separator
            if key_json:
                current += json.dumps(name) + ":"
            if name in self._holes:
                self._segments.append(current)
                current = ""
            else:
                current += parts[name]
        self._segments.append(current + ("}" if key_json else ""))
        self._order = [name for name in names if name in self._holes]

    def render(self, values: dict[str, str]) -> str:
        pieces = [self._segments[0]]
        for name, segment in zip(self._order, self._segments[1:], strict=True):
            pieces.append(values[name])
            pieces.append(segment)
        return "".join(pieces)
