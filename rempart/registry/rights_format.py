"""The rights file format, version 1 (docs/formats/rights-v1.md): one beneficiary per row.

This module only reads and checks rows; it knows nothing of the database.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from rempart.lib.crypto import FieldCipher
from rempart.lib.identifiers import InvalidIdentifier, LunarDate, validate_nir

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

CONTRACT_STATUSES = {"active": "active", "suspended": "suspended", "terminated": "terminated"}
QUALITIES = {"ASSURE": "A", "CONJOINT": "C", "ENFANT": "E", "AUTRE": "O"}
SEXES = {"M", "F"}
_ADHERENT = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")
_PRODUCT = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
_NAME = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '\-.])*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class RowError(ValueError):
    """A problem with one field of one row; the message never repeats the value."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


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
    contract_fingerprint: bytes
    fingerprint: bytes


def _date(column: str, text: str, required: bool) -> dt.date | None:
    if not text:
        if required:
            raise RowError(column, "missing (YYYY-MM-DD expected)")
        return None
    if not _ISO_DATE.match(text):
        raise RowError(column, "YYYY-MM-DD expected")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise RowError(column, "impossible date") from None


def _nir(column: str, text: str) -> str | None:
    if not text:
        return None
    try:
        return validate_nir(text)
    except InvalidIdentifier as exc:
        raise RowError(column, str(exc).removeprefix("NIR: ")) from None


def _name(column: str, text: str) -> str:
    if not text:
        raise RowError(column, "missing")
    if len(text) > 60:
        raise RowError(column, "longer than 60 characters")
    if not _NAME.match(text):
        raise RowError(column, "letters, spaces, apostrophes, hyphens and dots only")
    return text


def _small_int(column: str, text: str, low: int, high: int, default: int | None = None) -> int:
    if not text and default is not None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:  # not '²'
        raise RowError(column, f"whole number from {low} to {high} expected")
    return int(text)


def parse_row(fields: list[str], amc_number: str, cipher: FieldCipher) -> RightsRow:
    """Check one row against the format; raise RowError naming the first bad column."""
    if len(fields) != len(COLUMNS):
        raise RowError("(row)", f"{len(fields)} fields instead of {len(COLUMNS)}")
    values = dict(zip(COLUMNS, (field.strip() for field in fields), strict=True))
    if values["amc_number"] != amc_number:
        raise RowError("amc_number", "differs from the file's insurer")

    adherent = values["adherent_number"].upper()
    if not _ADHERENT.match(adherent):
        raise RowError("adherent_number", "1 to 20 letters, digits or hyphens expected")
    product = values["product_code"].upper()
    if not _PRODUCT.match(product):
        raise RowError("product_code", "1 to 20 letters, digits, '_' or '-' expected")
    contract_start = _date("contract_start", values["contract_start"], required=True)
    contract_end = _date("contract_end", values["contract_end"], required=False)
    if contract_end and contract_end < contract_start:
        raise RowError("contract_end", "before contract_start")
    status = CONTRACT_STATUSES.get(values["contract_status"].lower())
    if status is None:
        raise RowError("contract_status", "active, suspended or terminated expected")

    member = _small_int("member_number", values["member_number"], 1, 99)
    quality = QUALITIES.get(values["quality"].upper())
    if quality is None:
        raise RowError("quality", "ASSURE, CONJOINT, ENFANT or AUTRE expected")
    last_name = _name("last_name", values["last_name"])
    first_name = _name("first_name", values["first_name"])
    sex = values["sex"].upper()
    if sex not in SEXES:
        raise RowError("sex", "M or F expected")
    try:
        birth = LunarDate.parse(values["birth_date"])
    except ValueError as exc:
        raise RowError("birth_date", str(exc).removeprefix("date: ")) from None
    birth_rank = _small_int("birth_rank", values["birth_rank"], 1, 9, default=1)

    nir = _nir("nir", values["nir"])
    od_nir = _nir("ouvrant_droit_nir", values["ouvrant_droit_nir"])
    if nir is None and od_nir is None:
        raise RowError("nir", "missing: give the beneficiary's NIR or the ouvrant droit's")
    if quality == "A" and nir is None:
        raise RowError("nir", "the assuré principal must have a NIR of their own")

    coverage_start = _date("coverage_start", values["coverage_start"], required=True)
    coverage_end = _date("coverage_end", values["coverage_end"], required=False)
    if coverage_end and coverage_end < coverage_start:
        raise RowError("coverage_end", "before coverage_start")

    contract_parts = (adherent, product, values["contract_start"], values["contract_end"], status)
    row_parts = (
        *contract_parts,
        str(member),
        quality,
        last_name,
        first_name,
        sex,
        str(birth),
        str(birth_rank),
        nir or "",
        od_nir or "",
        values["coverage_start"],
        values["coverage_end"],
    )
    return RightsRow(
        adherent_number=adherent,
        product_code=product,
        contract_start=contract_start,
        contract_end=contract_end,
        contract_status=status,
        member_number=member,
        quality=quality,
        last_name=last_name,
        first_name=first_name,
        sex=sex,
        birth_year=birth.year,
        birth_month=birth.month,
        birth_day=birth.day,
        birth_rank=birth_rank,
        nir_cipher=cipher.encrypt("nir", nir) if nir else None,
        nir_index=cipher.blind_index("nir", nir) if nir else None,
        od_nir_cipher=cipher.encrypt("nir", od_nir) if od_nir else None,
        od_nir_index=cipher.blind_index("nir", od_nir) if od_nir else None,
        coverage_start=coverage_start,
        coverage_end=coverage_end,
        contract_fingerprint=cipher.fingerprint(*contract_parts),
        fingerprint=cipher.fingerprint(*row_parts),
    )


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
