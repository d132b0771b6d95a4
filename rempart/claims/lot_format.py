"""The claims lot format, version 1 (docs/formats/claims-lot-v1.md): JSON Lines, one invoice per line.

Pure: no database, no HTTP, no clock. It checks the file as a whole (the ARL) and the *shape* of each
invoice; what an invoice is worth (totals adding up, codes, RPPS key, PEC, rights) is for
``rempart.claims.rules`` and the claims service.

The contract with the caller (``rempart.claims.lots``):

- ``read_lot`` reads and checks the header at once (``LotRefused`` if it is wrong); ``Lot.header`` is then
  available, before any invoice is read.
- Iterating ``Lot.invoices()`` (once) yields, in file order, ``(line_number, invoice)`` for a well-shaped
  invoice (a plain ``dict``, the JSON object with every optional key present and the two invoice dates
  as ``datetime.date``: see :class:`Invoice`) or ``(line_number, LotLineError)`` for a bad one. Every
  non-blank line between the header and the trailer is yielded exactly once.
- What needs the whole file (count, total, trailer, nothing after it, encoding of a later line) is known
  only when it is reached, so ``LotRefused`` may be raised **after** invoices were yielded, even after
  the last one. The caller must therefore consume the whole iteration inside one database transaction
  and roll it back on ``LotRefused`` (or make a first pass that only checks, as lots.py does): nothing
  done for an invoice yielded before a refusal may survive it.

Memory is bounded whatever the file: one line at a time (at most ``max_line_bytes``), plus 12 bytes
per invoice (up to ``max_invoices``) to find duplicate invoice numbers. Messages never repeat a value
from the file: only field names, line numbers, counts and limits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, TypedDict

from django.utils.translation import gettext

from rempart.claims.lot_messages import FIELD_MESSAGES, REFUSALS
from rempart.lib.identifiers import (
    InvalidIdentifier,
    LunarDate,
    validate_finess,
    validate_nir,
    validate_siret,
)

FORMAT = "rempart-claims-lot"
VERSION = 1
TRAILER_KEY = "end_of_lot"

DEFAULT_MAX_INVOICES = 100_000
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 256 * 1024  # a 99-line invoice is ~40 KB; a longer line is a broken producer
MAX_LINES = 99  # lines per invoice, as rempart.claims.intake
MAX_ERRORS = 20  # reported per invoice
MAX_AMOUNT_CENTS = 100_000_000  # one line's amount (1,000,000.00 €)
MAX_TOTAL_CENTS = MAX_AMOUNT_CENTS * MAX_LINES  # one invoice's totals
MAX_LOT_TOTAL_CENTS = 2**53 - 1  # exact in every JSON implementation
CODE_SYSTEMS = ("LPP", "CIP13", "NGAP", "CCAM", "OTHER")
LPP_CLASSES = ("A", "B", "I", "II")
SIDES = ("right", "left")
_CHUNK = 64 * 1024

# Patterns are ASCII only ([0-9], not \d) and used with fullmatch (no "$ before a newline" trap).
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")  # invoice and lot numbers
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_AMC = re.compile(r"[0-9]{9}")
_ADHERENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,19}")
_NIR = re.compile(r"[1-478][0-9]{4}([0-9]{2}|2[AB])[0-9]{8}")
_DOMAIN = re.compile(r"[A-Z]{4}")
_RPPS = re.compile(r"[0-9]{11}")
_FINESS = re.compile(r"[0-9][0-9AB][0-9]{7}")
_SIRET = re.compile(r"[0-9]{14}")
_PEC = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .+/_-]{0,19}")
# Printable: no control characters, no bidi overrides (a name shown to operators), no lone surrogates.
_SOFTWARE = re.compile(r"[^\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]{1,80}")
_KEY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")  # an unknown key is named only if it looks like one
_LINE_PATH = re.compile(r"lines\[([0-9]+)\]")

INVOICE_KEYS = frozenset(
    "invoice_number invoice_date care_date amc_number adherent_number nir birth_date birth_rank domain "
    "prescriber_rpps pec_number lines total_price_cents total_amo_cents total_amc_cents".split()
)
LINE_KEYS = frozenset(
    "code_system code lpp_class side quantity unit_price_cents base_cents amo_paid_cents amc_claimed_cents".split()
)
HEADER_KEYS = frozenset(
    "format version finess siret lot_number invoice_count total_amc_cents created_at software".split()
)
TRAILER_KEYS = frozenset((TRAILER_KEY, "invoice_count"))


class InvoiceLine(TypedDict):
    code_system: str
    code: str
    lpp_class: str | None
    side: str | None
    quantity: int
    unit_price_cents: int
    base_cents: int
    amo_paid_cents: int
    amc_claimed_cents: int


class Invoice(TypedDict):
    """What ``Lot.invoices()`` yields: the JSON object of the line, shape-checked (a plain dict at run time)."""

    invoice_number: str
    invoice_date: dt.date
    care_date: dt.date
    amc_number: str
    adherent_number: str
    nir: str
    birth_date: str  # YYYY-MM-DD, 00 for an unknown month or day, as rempart.rights.cards reads it
    birth_rank: int | None
    domain: str
    prescriber_rpps: str | None
    pec_number: str | None
    lines: list[InvoiceLine]
    total_price_cents: int
    total_amo_cents: int
    total_amc_cents: int


REFUSAL_CODES = frozenset(code for code, _text in REFUSALS.values())
FIELD_CODES = frozenset(FIELD_MESSAGES)


class LotRefused(Exception):
    """The lot is wrong as a whole (negative ARL): the caller rolls back everything done for it."""

    def __init__(self, code: str, message: str, line: int | None) -> None:
        super().__init__(code, message, line)
        self.code = code
        self.message = message
        self.line = line

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return gettext("ligne %(line)s : %(message)s") % {"line": self.line, "message": self.message}


def _refuse(key: str, line: int | None, **params: Any) -> LotRefused:
    code, text = REFUSALS[key]
    return LotRefused(code, str(text) % params if params else str(text), line)


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an invoice (or the header) is malformed: where and why, never the value."""

    field: str  # "invoice_date", "lines[2].unit_price_cents" (0-based, as JSON paths), "(line)" for the whole line
    code: str
    params: Mapping[str, int] | None = None

    @property
    def message(self) -> str:
        """In the active language (French by default)."""
        text = str(FIELD_MESSAGES[self.code])
        return text % self.params if self.params else text

    @property
    def invoice_line(self) -> int | None:
        """The invoice's line (1-based) the field belongs to, as rempart.claims.intake counts them."""
        match = _LINE_PATH.match(self.field)
        return int(match.group(1)) + 1 if match else None

    def as_dict(self) -> dict:
        return {"line": self.invoice_line, "field": self.field, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class LotLineError:
    """A line of the lot that is not a well-shaped invoice: rejected in the RSP, the lot goes on."""

    line: int
    invoice_number: str | None  # when it could be read (the RSP names it)
    errors: tuple[FieldError, ...]

    def as_dicts(self) -> list[dict]:
        return [error.as_dict() for error in self.errors]


@dataclass(frozen=True, slots=True)
class LotHeader:
    version: int
    finess: str | None
    siret: str | None
    lot_number: str
    invoice_count: int
    total_amc_cents: int
    created_at: dt.datetime
    software: str | None

    @property
    def count(self) -> int:
        """Alias of invoice_count (used by rempart.claims.lots)."""
        return self.invoice_count


# ---------------------------------------------------------------------------------------------- JSON


class _Constant(ValueError):
    pass


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key


def _reject_constant(name: str):
    raise _Constant(name)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)


def _key_path(key: str, prefix: str = "") -> str:
    """A key named in a report: only when it looks like a key name, so no value slips in as a key."""
    return prefix + key if _KEY_NAME.fullmatch(key) else (prefix.rstrip(".") or "(line)")


def loads(text: str) -> tuple[Any, FieldError | None]:
    """Strict JSON (RFC 8259): no NaN/Infinity, no duplicate key; (value, None) or (None, why not)."""
    try:
        return _DECODER.decode(text), None
    except _Constant:
        return None, FieldError("(line)", "json_constant")
    except _DuplicateKey as exc:
        return None, FieldError(_key_path(exc.key), "duplicate_key")
    except json.JSONDecodeError:
        return None, FieldError("(line)", "not_json")
    except RecursionError:
        return None, FieldError("(line)", "too_deep")
    except ValueError:  # an integer of more than 4,300 digits
        return None, FieldError("(line)", "number_too_long")


# ---------------------------------------------------------------------------------------------- fields

_BAD = object()  # a field that failed (its error is already recorded)
# The few thousand distinct dates of a lot are checked once; only good ones are kept, and at most 10,000.
_DATES: dict[str, dt.date] = {}
_BIRTHS: set[str] = set()


def _unknown_keys(obj: dict, allowed: frozenset, prefix: str, errors: list) -> None:
    if not obj.keys() <= allowed:
        for key in sorted(obj.keys() - allowed):
            errors.append(FieldError(_key_path(key, prefix), "unknown_key"))


def _text(obj: dict, key: str, path: str, errors: list, pattern: re.Pattern, code: str, nullable=False):
    value = obj.get(key)
    if value is None:
        if nullable:
            return None
        errors.append(FieldError(path, "missing"))
        return _BAD
    if type(value) is not str:
        errors.append(FieldError(path, "not_string"))
        return _BAD
    if not pattern.fullmatch(value):
        errors.append(FieldError(path, code))
        return _BAD
    return value


def _choice(obj: dict, key: str, path: str, errors: list, choices: tuple, code: str, nullable=False):
    value = obj.get(key)
    if value is None:
        if nullable:
            return None
        errors.append(FieldError(path, "missing"))
        return _BAD
    if type(value) is not str or value not in choices:
        errors.append(FieldError(path, code))
        return _BAD
    return value


def _integer(obj: dict, key: str, path: str, errors: list, low: int, high: int, nullable=False):
    value = obj.get(key)
    if value is None:
        if nullable:
            return None
        errors.append(FieldError(path, "missing"))
        return _BAD
    if type(value) is not int:  # not a bool, not 1.0
        errors.append(FieldError(path, "not_integer"))
        return _BAD
    if not low <= value <= high:
        errors.append(FieldError(path, "integer_range", {"min": low, "max": high}))
        return _BAD
    return value


def _cents(obj: dict, key: str, path: str, errors: list, high: int):
    value = obj.get(key)
    if value is None:
        errors.append(FieldError(path, "missing"))
        return _BAD
    if type(value) is not int:  # 12.5, "1250", 1250.0, true: never rounded, never guessed
        errors.append(FieldError(path, "not_cents"))
        return _BAD
    if not 0 <= value <= high:
        errors.append(FieldError(path, "cents_range", {"max": high}))
        return _BAD
    return value


def _date(obj: dict, key: str, path: str, errors: list):
    value = obj.get(key)
    if value is None:
        errors.append(FieldError(path, "missing"))
        return _BAD
    if type(value) is not str:
        errors.append(FieldError(path, "not_string"))
        return _BAD
    known = _DATES.get(value)
    if known is not None:
        return known
    if not _DATE.fullmatch(value):  # fromisoformat alone would take 20261130 and 2026-W48-1
        errors.append(FieldError(path, "date_format"))
        return _BAD
    try:
        known = dt.date.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(path, "date_impossible"))
        return _BAD
    if len(_DATES) >= 10_000:
        _DATES.clear()
    _DATES[value] = known
    return known


def _nir(obj: dict, errors: list):
    value = _text(obj, "nir", "nir", errors, _NIR, "nir_format")
    if value is not _BAD:
        try:
            validate_nir(value)
        except InvalidIdentifier:
            errors.append(FieldError("nir", "nir_key"))
            return _BAD
    return value


def _birth_date(obj: dict, errors: list):
    value = _text(obj, "birth_date", "birth_date", errors, _DATE, "birth_date_format")
    if value is not _BAD and value not in _BIRTHS:
        try:
            LunarDate.parse(value)
        except ValueError:
            errors.append(FieldError("birth_date", "date_impossible"))
            return _BAD
        if len(_BIRTHS) >= 10_000:
            _BIRTHS.clear()
        _BIRTHS.add(value)
    return value


def _line(obj: Any, index: int, errors: list) -> None:
    prefix = f"lines[{index}]."
    if type(obj) is not dict:
        errors.append(FieldError(f"lines[{index}]", "not_object"))
        return
    _unknown_keys(obj, LINE_KEYS, prefix, errors)
    _choice(obj, "code_system", prefix + "code_system", errors, CODE_SYSTEMS, "code_system_choice")
    _text(obj, "code", prefix + "code", errors, _CODE, "code_format")
    _choice(obj, "lpp_class", prefix + "lpp_class", errors, LPP_CLASSES, "lpp_class_choice", nullable=True)
    _choice(obj, "side", prefix + "side", errors, SIDES, "side_choice", nullable=True)
    _integer(obj, "quantity", prefix + "quantity", errors, 1, 999)
    for key in ("unit_price_cents", "base_cents", "amo_paid_cents", "amc_claimed_cents"):
        _cents(obj, key, prefix + key, errors, MAX_AMOUNT_CENTS)


def check_invoice_shape(value: Any) -> tuple[Invoice | None, list[FieldError]]:
    """The shape of one invoice (a lot's line, or the body of POST /api/v1/claims).

    Returns (invoice, []) — the same dict, completed: optional keys set to None, dates as datetime.date —
    or (None, errors) with at most MAX_ERRORS errors, in the order of the spec's field table.
    """
    if type(value) is not dict:
        return None, [FieldError("(line)", "not_object")]
    errors: list[FieldError] = []
    _unknown_keys(value, INVOICE_KEYS, "", errors)
    _text(value, "invoice_number", "invoice_number", errors, _REFERENCE, "reference_format")
    invoice_date = _date(value, "invoice_date", "invoice_date", errors)
    care_date = _date(value, "care_date", "care_date", errors)
    _text(value, "amc_number", "amc_number", errors, _AMC, "amc_number_format")
    _text(value, "adherent_number", "adherent_number", errors, _ADHERENT, "adherent_number_format")
    _nir(value, errors)
    _birth_date(value, errors)
    birth_rank = _integer(value, "birth_rank", "birth_rank", errors, 1, 9, nullable=True)
    _text(value, "domain", "domain", errors, _DOMAIN, "domain_format")
    rpps = _text(value, "prescriber_rpps", "prescriber_rpps", errors, _RPPS, "rpps_format", nullable=True)
    pec = _text(value, "pec_number", "pec_number", errors, _PEC, "pec_number_format", nullable=True)
    lines = value.get("lines")
    if lines is None:
        errors.append(FieldError("lines", "missing"))
    elif type(lines) is not list:
        errors.append(FieldError("lines", "not_list"))
    elif not 1 <= len(lines) <= MAX_LINES:
        errors.append(FieldError("lines", "lines_count", {"max": MAX_LINES}))
    else:
        for index, line in enumerate(lines):
            _line(line, index, errors)
            if len(errors) >= MAX_ERRORS:
                break
    for key in ("total_price_cents", "total_amo_cents", "total_amc_cents"):
        _cents(value, key, key, errors, MAX_TOTAL_CENTS)
    if errors:
        return None, errors[:MAX_ERRORS]
    value["invoice_date"], value["care_date"] = invoice_date, care_date
    value["birth_rank"], value["prescriber_rpps"], value["pec_number"] = birth_rank, rpps, pec
    for line in lines:
        line.setdefault("lpp_class", None)
        line.setdefault("side", None)
    return value, []  # type: ignore[return-value]


def _header(value: Any, line_errors: list) -> LotHeader | None:
    if type(value) is not dict or value.get("format") != FORMAT:
        raise _refuse("not_a_lot", 1)
    if type(value.get("version")) is not int or value["version"] != VERSION:
        raise _refuse("unsupported_version", 1)
    errors: list[FieldError] = []
    _unknown_keys(value, HEADER_KEYS, "", errors)
    finess = _text(value, "finess", "finess", errors, _FINESS, "finess_format", nullable=True)
    siret = _text(value, "siret", "siret", errors, _SIRET, "siret_format", nullable=True)
    for name, given, validate in (("finess", finess, validate_finess), ("siret", siret, validate_siret)):
        if given not in (None, _BAD):
            try:
                validate(given)
            except InvalidIdentifier:
                errors.append(FieldError(name, f"{name}_format"))
    if (finess is None) == (siret is None):  # neither, or both
        errors.append(FieldError("finess", "organisation_missing"))
    lot_number = _text(value, "lot_number", "lot_number", errors, _REFERENCE, "reference_format")
    count = _integer(value, "invoice_count", "invoice_count", errors, 1, 2**31 - 1)
    total = _cents(value, "total_amc_cents", "total_amc_cents", errors, MAX_LOT_TOTAL_CENTS)
    created_at = _text(value, "created_at", "created_at", errors, _DATETIME, "datetime_format")
    if created_at is not _BAD:
        try:
            created_at = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
        except ValueError:
            errors.append(FieldError("created_at", "date_impossible"))
    software = _text(value, "software", "software", errors, _SOFTWARE, "software_format", nullable=True)
    if errors:
        line_errors.extend(errors)
        return None
    return LotHeader(VERSION, finess, siret, lot_number, count, total, created_at, software)


# ---------------------------------------------------------------------------------------------- reading


class _SeenNumbers:
    """Invoice numbers met so far, as keyed 64-bit digests in an open-addressing table: 12 bytes each.

    A Python set of 100,000 strings takes ~10 MB; this takes 1.5 MB. Two numbers share a digest with odds
    below 1 in 10^9 per lot (the key is drawn per lot, so a sender cannot aim for it).
    """

    def __init__(self, capacity: int) -> None:
        size = 8
        while size * 4 < capacity * 5:  # load factor at most 0.8
            size *= 2
        self._mask = size - 1
        self._digests = array("Q", [0]) * size
        self._lines = array("I", [0]) * size
        self._key = os.urandom(16)

    def first_line(self, number: str, line: int) -> int | None:
        """Remember the number at this line; the line it was first seen at, if it was."""
        digest = hashlib.blake2b(number.encode(), digest_size=8, key=self._key).digest()
        value = int.from_bytes(digest, "little") or 1  # 0 marks an empty slot
        slot = value & self._mask
        digests = self._digests
        while True:
            found = digests[slot]
            if found == 0:
                digests[slot] = value
                self._lines[slot] = min(line, 0xFFFFFFFF)
                return None
            if found == value:
                return self._lines[slot]
            slot = (slot + 1) & self._mask


class Lot:
    """A lot being read: the header at once, then the invoices as a stream (see the module docstring)."""

    def __init__(self, stream: BinaryIO, *, max_bytes: int, max_line_bytes: int) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._max_line_bytes = max_line_bytes
        self._line = 0
        self._started = False
        self._cut = False
        self.bytes_read = 0
        self.invoice_lines = 0  # non-blank lines between header and trailer, read so far
        self.rejected = 0
        self._raw = self._physical_lines()
        self.header: LotHeader

    def _physical_lines(self) -> Iterator[bytes]:
        """The file's lines without their "\\n", each at most max_line_bytes; self._line is the caller's."""
        pending = b""
        limit = self._max_line_bytes
        while chunk := self._stream.read(_CHUNK):
            self.bytes_read += len(chunk)
            if self.bytes_read > self._max_bytes:
                raise _refuse("too_many_bytes", self._line + 1, limit=self._max_bytes)
            parts = (pending + chunk if pending else chunk).split(b"\n")
            pending = parts.pop()
            for part in parts:
                if len(part) > limit:
                    raise _refuse("line_too_long", self._line + 1, limit=limit)
                yield part
            if len(pending) > limit:
                raise _refuse("line_too_long", self._line + 1, limit=limit)
        if pending:
            self._cut = True  # the last line has no "\n": a file cut short, unless it reads whole
            yield pending

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse("encoding", self._line) from None

    def _read_header(self, sender_finess: str | None, sender_siret: str | None, max_invoices: int) -> None:
        raw = next(self._raw, None)
        self._line = 1
        if raw is None or not raw.strip(b" \t\r"):
            raise _refuse("not_a_lot", 1)
        if raw.startswith(b"\xef\xbb\xbf"):
            raise _refuse("encoding_bom", 1)
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:
            raise _refuse("encoding_utf16", 1)
        value, error = loads(self._decode(raw))
        if error is not None:  # a header with a key twice is a header, wrong; anything else is no lot at all
            raise (
                _bad_header(error, "bad_header") if error.code == "duplicate_key" else _refuse("not_a_lot", 1)
            )
        errors: list[FieldError] = []
        header = _header(value, errors)
        if header is None:
            raise _bad_header(errors[0], "bad_header")
        if not _same_organisation(header, sender_finess, sender_siret):
            raise _refuse("wrong_organisation", 1)
        if header.invoice_count > max_invoices:
            raise _refuse("too_many_invoices", 1, limit=max_invoices)
        self.header = header

    def invoices(self) -> Iterator[tuple[int, Invoice | LotLineError]]:
        """Yield every invoice line in order; raise LotRefused as soon as the file is known to be wrong."""
        if self._started:
            raise RuntimeError("a lot is read only once")
        self._started = True
        header = self.header
        seen = _SeenNumbers(header.invoice_count)
        total = 0
        total_known = True
        trailer_line = None
        for raw in self._raw:
            self._line += 1
            line = self._line
            if not raw.strip(b" \t\r"):
                continue  # blank lines are allowed anywhere after the header, and counted in line numbers
            if trailer_line is not None:
                raise _refuse("data_after_trailer", line)
            value, error = loads(self._decode(raw))
            if error is not None and self._cut:
                raise _refuse("truncated", line)  # cut inside its last line (often the trailer itself)
            if type(value) is dict and TRAILER_KEY in value:
                self._check_trailer(value, line)
                trailer_line = line
                continue
            self.invoice_lines += 1
            if self.invoice_lines > header.invoice_count:
                raise _refuse("count_exceeded", line, announced=header.invoice_count)
            if error is not None:
                self.rejected += 1
                total_known = False
                yield line, LotLineError(line, None, (error,))
                continue
            amount = value.get("total_amc_cents") if type(value) is dict else None
            if type(amount) is int and 0 <= amount <= MAX_TOTAL_CENTS:
                total += amount
            else:
                total_known = False  # the line is rejected below; the lot's total cannot be checked
            invoice, errors = check_invoice_shape(value)
            number = value.get("invoice_number") if type(value) is dict else None
            if type(number) is not str or not _REFERENCE.fullmatch(number):
                number = None
            else:
                first = seen.first_line(number, line)
                if first is not None:
                    errors = [
                        *errors,
                        FieldError("invoice_number", "duplicate_invoice_number", {"line": first}),
                    ]
                    invoice = None
            if invoice is None:
                self.rejected += 1
                yield line, LotLineError(line, number, tuple(errors[:MAX_ERRORS]))
            else:
                yield line, invoice
        if trailer_line is None:
            raise _refuse("truncated", self._line + 1)
        if self.invoice_lines != header.invoice_count:
            raise _refuse(
                "count_mismatch", trailer_line, announced=header.invoice_count, found=self.invoice_lines
            )
        if total_known and total != header.total_amc_cents:
            raise _refuse("total_mismatch", trailer_line, announced=header.total_amc_cents, found=total)

    def _check_trailer(self, value: dict, line: int) -> None:
        errors: list[FieldError] = []
        _unknown_keys(value, TRAILER_KEYS, "", errors)
        number = _text(value, TRAILER_KEY, TRAILER_KEY, errors, _REFERENCE, "reference_format")
        if number is not _BAD and number != self.header.lot_number:
            errors.append(FieldError(TRAILER_KEY, "lot_number_mismatch"))
        count = _integer(value, "invoice_count", "invoice_count", errors, 0, 2**31 - 1)
        if errors:
            raise _bad_header(errors[0], "bad_trailer", line)
        if count != self.header.invoice_count:
            raise _refuse("count_trailer", line, trailer=count, announced=self.header.invoice_count)


def _bad_header(error: FieldError, key: str, line: int = 1) -> LotRefused:
    return _refuse(key, line, field=error.field, reason=error.message)


def _same_organisation(header: LotHeader, sender_finess: str | None, sender_siret: str | None) -> bool:
    """Named by its FINESS when it has one, else by its SIRET: the other identifier may not stand in."""
    if sender_finess:
        return header.finess is not None and header.finess.upper() == sender_finess.strip().upper()
    return header.siret is not None and header.siret == (sender_siret or "").strip()


def read_lot(
    stream: BinaryIO,
    *,
    sender_finess: str | None,
    sender_siret: str | None,
    max_invoices: int = DEFAULT_MAX_INVOICES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Lot:
    """Open a lot sent by the organisation with this FINESS (or, without one, this SIRET).

    Raises LotRefused if the header is wrong; then iterate ``Lot.invoices()`` inside one transaction.
    """
    if not (sender_finess or sender_siret):
        raise ValueError("the sender's FINESS or SIRET is needed to check the lot's organisation")
    lot = Lot(stream, max_bytes=max_bytes, max_line_bytes=max_line_bytes)
    lot._read_header(sender_finess, sender_siret, max_invoices)
    return lot


# ---------------------------------------------------------------------------------------------- writing


def _json_default(value: Any) -> str:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable in a lot: {type(value).__name__}")


def encode_line(obj: Mapping) -> bytes:
    """One line of a lot: compact JSON, UTF-8, "\\n"-terminated (dates written YYYY-MM-DD)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default)
    return text.encode("utf-8") + b"\n"


def write_lot(invoices: Iterable[Mapping], header_fields: Mapping) -> bytes:
    """A whole lot file, for tests, the benchmark and vendors' examples.

    ``header_fields`` gives ``finess`` or ``siret`` and ``lot_number`` at least; ``invoice_count`` and
    ``total_amc_cents`` default to the invoices' count and sum, ``created_at`` to now (UTC). Any field given
    wins, so a test can write a lot whose header lies.
    """
    items = list(invoices)
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "invoice_count": len(items),
        "total_amc_cents": sum(item["total_amc_cents"] for item in items),
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
    }
    header.update(header_fields)
    trailer = {TRAILER_KEY: header["lot_number"], "invoice_count": header["invoice_count"]}
    return b"".join([encode_line(header), *(encode_line(item) for item in items), encode_line(trailer)])
