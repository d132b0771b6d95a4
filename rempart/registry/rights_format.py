"""The rights file format, version 1 (docs/formats/rights-v1.md): one beneficiary per row.

This module only reads and checks rows; it knows nothing of the database.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from rempart.lib.crypto import FieldCipher
from rempart.lib.identifiers import InvalidIdentifier, LunarDate, validate_nir
from rempart.lib.names import normalise_name

MAGIC = "#rempart-rights"
VERSION = "1"
TRAILER = "#end"
DELIMITER = ";"

COLUMNS = (
    "amc_number",
    "adherent_number",
    "product_code",
    "contract_start",
    "contract_end",
    "contract_status",
    "member_number",
    "quality",
    "last_name",
    "first_name",
    "sex",
    "birth_date",
    "birth_rank",
    "nir",
    "ouvrant_droit_nir",
    "coverage_start",
    "coverage_end",
)
_COLUMN_COUNT = len(COLUMNS)

CONTRACT_STATUSES = {"active": "active", "suspended": "suspended", "terminated": "terminated"}
QUALITIES = {"ASSURE": "A", "CONJOINT": "C", "ENFANT": "E", "AUTRE": "O"}
SEXES = {"M", "F"}
_ADHERENT = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")
_PRODUCT = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
_NAME = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '\-.])*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RowError(ValueError):
    """A problem with one field of one row, as a stable code and its parameters (rempart.registry.import_messages);
    never the value. ``str()`` and ``reason`` are the English words, for logs and tracebacks; pages and
    reports render ``message`` in their reader's language."""

    def __init__(self, column: str, code: str, **params) -> None:
        super().__init__(column, code)
        self.column = column
        self.code = code
        self.params = params

    @property
    def message(self) -> dict:
        return {"code": self.code, **self.params}

    @property
    def reason(self) -> str:
        from rempart.registry.import_messages import describe

        return describe(self.message, "en")

    def __str__(self) -> str:
        return f"{self.column}: {self.reason}"


# The reasons of rempart.lib.identifiers (English words) and LunarDate, as codes.
_NIR_CODES = (
    ("wrong length", "nir_length"),
    ("check key", "nir_checksum"),
    ("impossible component", "nir_component"),
    ("wrong format", "nir_format"),
)
_BIRTH_CODES = (
    ("year before 1880", "year_before_1880"),
    ("impossible month", "month_impossible"),
    ("impossible day", "day_impossible"),
)


@dataclass(frozen=True, slots=True)
class RightsRow:
    """One checked row, ready to stage: NIRs are already encrypted and indexed."""

    adherent_number: str
    product_code: str
    contract_start: dt.date
    contract_end: dt.date | None
    contract_status: str
    member_number: int
    quality: str
    last_name: str
    first_name: str
    sex: str
    birth_year: int
    birth_month: int | None
    birth_day: int | None
    birth_rank: int
    nir_cipher: bytes | None
    nir_index: bytes | None
    od_nir_cipher: bytes | None
    od_nir_index: bytes | None
    coverage_start: dt.date
    coverage_end: dt.date | None
    contract_fingerprint: int
    fingerprint: int


# Values that repeat from row to row (dates, names) are checked once and remembered: a file has a few
# thousand distinct dates and names for millions of rows. Only values that passed are cached, keyed by
# their exact text; the caches are emptied when they grow past _CACHE_LIMIT (bounded memory).
_CACHE_LIMIT = 50_000
_DATES: dict[str, dt.date] = {}
_BIRTHS: dict[str, tuple[int, int | None, int | None, str]] = {}
_NAMES: dict[str, str] = {}  # as written → normalised


def _date(column: str, text: str, required: bool) -> dt.date | None:
    if not text:
        if required:
            raise RowError(column, "date_missing")
        return None
    value = _DATES.get(text)
    if value is None:
        if not _ISO_DATE.match(text):
            raise RowError(column, "date_format")
        try:
            value = dt.date.fromisoformat(text)
        except ValueError:
            raise RowError(column, "date_impossible") from None
        if len(_DATES) >= _CACHE_LIMIT:
            _DATES.clear()
        _DATES[text] = value
    return value


def _birth(text: str) -> tuple[int, int | None, int | None, str]:
    """(year, month, day, canonical text) of a birth date, lunar dates accepted."""
    value = _BIRTHS.get(text)
    if value is None:
        try:
            birth = LunarDate.parse(text)
        except ValueError as exc:
            text_reason = str(exc)
            code = next((c for words, c in _BIRTH_CODES if words in text_reason), "date_format")
            raise RowError("birth_date", code) from None
        value = (birth.year, birth.month, birth.day, str(birth))
        if len(_BIRTHS) >= _CACHE_LIMIT:
            _BIRTHS.clear()
        _BIRTHS[text] = value
    return value


def _nir(column: str, text: str) -> str | None:
    if not text:
        return None
    try:
        return validate_nir(text)
    except InvalidIdentifier as exc:
        text_reason = str(exc)
        code = next((c for words, c in _NIR_CODES if words in text_reason), "nir_invalid")
        raise RowError(column, code) from None


def _name(column: str, text: str) -> str:
    """The normalised name (rempart.lib.names): what is checked, stored and fingerprinted."""
    known = _NAMES.get(text)
    if known is not None:
        return known
    name = normalise_name(text)
    if not name:
        raise RowError(column, "missing")
    if len(name) > 60:
        raise RowError(column, "name_too_long")
    if not _NAME.match(name):
        raise RowError(column, "name_characters")
    if len(_NAMES) >= _CACHE_LIMIT:
        _NAMES.clear()
    _NAMES[text] = name
    return name


def _small_int(column: str, text: str, low: int, high: int, default: int | None = None) -> int:
    if not text and default is not None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:  # not '²'
        raise RowError(column, "integer_range", low=low, high=high)
    return int(text)


def parse_row(fields: list[str], amc_number: str, cipher: FieldCipher) -> RightsRow:
    """Check one row against the format; raise RowError naming the first bad column."""
    return RightsRow(*check_row(fields, amc_number, cipher))


def check_row(fields: list[str], amc_number: str, cipher: FieldCipher) -> tuple:
    """parse_row's work, returning the values as a plain tuple in RightsRow's field order.

    The bulk import calls this once per row, so it avoids building a dict and a dataclass per row.
    """
    if len(fields) != _COLUMN_COUNT:
        raise RowError("(row)", "field_count", count=len(fields), expected=_COLUMN_COUNT)
    (
        amc, adherent, product, contract_start_text, contract_end_text, status_text, member_text, quality_text,
        last_name, first_name, sex, birth_text, rank_text, nir_text, od_nir_text, coverage_start_text,
        coverage_end_text,
    ) = [field.strip() for field in fields]  # fmt: skip
    if amc != amc_number:
        raise RowError("amc_number", "amc_mismatch")

    adherent = adherent.upper()
    if not _ADHERENT.match(adherent):
        raise RowError("adherent_number", "adherent_format")
    product = product.upper()
    if not _PRODUCT.match(product):
        raise RowError("product_code", "product_format")
    contract_start = _date("contract_start", contract_start_text, required=True)
    contract_end = _date("contract_end", contract_end_text, required=False)
    if contract_end and contract_end < contract_start:
        raise RowError("contract_end", "date_before", other="contract_start")
    status = CONTRACT_STATUSES.get(status_text.lower())
    if status is None:
        raise RowError("contract_status", "contract_status_choice")

    member = _small_int("member_number", member_text, 1, 99)
    quality = QUALITIES.get(quality_text.upper())
    if quality is None:
        raise RowError("quality", "quality_choice")
    last_name = _name("last_name", last_name)
    first_name = _name("first_name", first_name)
    sex = sex.upper()
    if sex not in SEXES:
        raise RowError("sex", "sex_choice")
    birth_year, birth_month, birth_day, birth_text = _birth(birth_text)
    birth_rank = _small_int("birth_rank", rank_text, 1, 9, default=1)

    nir = _nir("nir", nir_text)
    od_nir = _nir("ouvrant_droit_nir", od_nir_text)
    if nir is None and od_nir is None:
        raise RowError("nir", "nir_missing")
    if quality == "A" and nir is None:
        raise RowError("nir", "nir_assure_required")

    coverage_start = _date("coverage_start", coverage_start_text, required=True)
    coverage_end = _date("coverage_end", coverage_end_text, required=False)
    if coverage_end and coverage_end < coverage_start:
        raise RowError("coverage_end", "date_before", other="coverage_start")

    fingerprint = cipher.fingerprint64
    contract_parts = (adherent, product, contract_start_text, contract_end_text, status)
    # A contract's rows follow each other: its fingerprint is computed once for them all.
    last_cipher, last_parts, contract_fingerprint = _last_contract[0]  # one tuple: safe across threads
    if last_cipher is not cipher or last_parts != contract_parts:
        contract_fingerprint = fingerprint(*contract_parts)
        _last_contract[0] = (cipher, contract_parts, contract_fingerprint)
    return (
        adherent, product, contract_start, contract_end, status, member, quality, last_name, first_name, sex,
        birth_year, birth_month, birth_day, birth_rank,
        cipher.encrypt("nir", nir) if nir else None,
        cipher.blind_index("nir", nir) if nir else None,
        cipher.encrypt("nir", od_nir) if od_nir else None,
        cipher.blind_index("nir", od_nir) if od_nir else None,
        coverage_start, coverage_end,
        contract_fingerprint,
        fingerprint(
            *contract_parts, str(member), quality, last_name, first_name, sex, birth_text, str(birth_rank),
            nir or "", od_nir or "", coverage_start_text, coverage_end_text,
        ),
    )  # fmt: skip


_last_contract: list[tuple] = [(None, None, 0)]  # (cipher, contract fields, fingerprint) of the last row


def row_key(fields: list[str]) -> tuple[str, int | None]:
    """The (adherent, member) key of a row, as far as it can be read, even from a rejected row.

    A full import must not end a contract or a beneficiary whose row was merely rejected.
    """
    adherent = fields[1].strip().upper() if len(fields) > 1 else ""
    member_text = fields[6].strip() if len(fields) > 6 else ""
    digits = member_text.isascii() and member_text.isdigit()
    member = int(member_text) if digits and 0 < int(member_text) < 100 else None
    return (adherent if _ADHERENT.match(adherent) else "", member)


def header_line() -> str:
    return DELIMITER.join(COLUMNS)


def magic_line(amc_number: str) -> str:
    return f"{MAGIC}{DELIMITER}{VERSION}{DELIMITER}{amc_number}"


def trailer_line(row_count: int) -> str:
    return f"{TRAILER}{DELIMITER}{row_count}"
