"""Identifier checks built on python-stdnum and schwifty.

Every function returns the normalised value or raises ``InvalidIdentifier`` with a reason
that never repeats the value (the value may be a NIR or an IBAN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum import luhn
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.fr import nir as stdnum_nir
from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret


class InvalidIdentifier(ValueError):
    """The reason is safe to show: it never contains the value itself."""


def _reason(exc: ValidationError, what: str) -> str:
    if isinstance(exc, InvalidLength):
        return f"{what}: wrong length"
    if isinstance(exc, InvalidChecksum):
        return f"{what}: wrong check key"
    if isinstance(exc, InvalidComponent):
        return f"{what}: impossible component"
    if isinstance(exc, InvalidFormat):
        return f"{what}: wrong format"
    return f"{what}: invalid"


_NIR_SHAPE = re.compile(r"^[1-478]\d{4}(\d{2}|2[AB])\d{6}\d{2}$")


def validate_nir(value: str) -> str:
    """A 15-character NIR with its key (Corsica 2A/2B accepted); spaces are ignored."""
    compact = value.replace(" ", "").upper()
    if len(compact) != 15:
        raise InvalidIdentifier("NIR: wrong length (15 characters expected, key included)")
    if not _NIR_SHAPE.match(compact):
        raise InvalidIdentifier("NIR: wrong format")
    if compact.isascii() and stdnum_nir.calc_check_digits(compact) == compact[13:]:
        # Fast path for the bulk import: the shape is checked above, so python-stdnum's validate()
        # would only repeat its Unicode clean-up (5x the cost) before this same key check.
        return compact
    try:
        return stdnum_nir.validate(compact)  # not valid: python-stdnum says why
    except ValidationError as exc:
        raise InvalidIdentifier(_reason(exc, "NIR")) from None


def nir_check_key(body: str) -> str:
    """The 2-digit key of a 13-character NIR body (for the synthetic data generator)."""
    return stdnum_nir.calc_check_digits(body)


def validate_siren(value: str) -> str:
    try:
        return stdnum_siren.validate(value)
    except ValidationError as exc:
        raise InvalidIdentifier(_reason(exc, "SIREN")) from None


def validate_siret(value: str) -> str:
    """SIRET (Luhn, with La Poste's exception handled by python-stdnum)."""
    try:
        return stdnum_siret.validate(value)
    except ValidationError as exc:
        raise InvalidIdentifier(_reason(exc, "SIRET")) from None


def _finess_digits(value: str) -> str:
    # Corsica: FINESS numbers start with 2A/2B; the key is computed with them read as 20 (see docs/decisions.md).
    return "20" + value[2:] if value[:2] in ("2A", "2B") else value


def validate_finess(value: str) -> str:
    """FINESS: 9 characters, department first, Luhn key on the last digit (python-stdnum's Luhn)."""
    compact = value.replace(" ", "").upper()
    if len(compact) != 9:
        raise InvalidIdentifier("FINESS: wrong length (9 characters expected)")
    digits = _finess_digits(compact)
    if not digits.isdigit():
        raise InvalidIdentifier("FINESS: wrong format")
    try:
        luhn.validate(digits)
    except ValidationError as exc:
        raise InvalidIdentifier(_reason(exc, "FINESS")) from None
    return compact


def finess_check_digit(first_eight: str) -> str:
    return luhn.calc_check_digit(_finess_digits(first_eight))


_RPPS = re.compile(r"[0-9]{11}")  # ASCII digits only


def validate_rpps(value: str) -> str:
    """RPPS: 11 digits, the last a Luhn key over all 11 (python-stdnum has no RPPS module; see docs/decisions.md).

    The 12-digit IdNPS form that Pro Santé Connect returns (``8`` + RPPS) is read as the RPPS it carries.
    Spaces are ignored; the 11 digits are returned.
    """
    compact = value.replace(" ", "") if isinstance(value, str) else ""
    if len(compact) == 12 and compact.startswith("8"):
        compact = compact[1:]
    if len(compact) != 11:
        raise InvalidIdentifier("RPPS: wrong length (11 digits expected)")
    if not _RPPS.fullmatch(compact):
        raise InvalidIdentifier("RPPS: wrong format (digits only)")
    if not luhn.is_valid(compact):
        raise InvalidIdentifier("RPPS: wrong check key")
    return compact


def rpps_check_digit(first_ten: str) -> str:
    """The Luhn key of a 10-digit RPPS body (for synthetic data)."""
    return luhn.calc_check_digit(first_ten)


def validate_iban(value: str) -> str:
    try:
        return str(IBAN(value)).replace(" ", "")
    except SchwiftyException:
        raise InvalidIdentifier("IBAN: invalid (format or check digits)") from None


def validate_bic(value: str, iban: str | None = None) -> str:
    try:
        bic = BIC(value)
    except SchwiftyException:
        raise InvalidIdentifier("BIC: invalid format") from None
    if iban and bic.country_code != iban[:2]:
        raise InvalidIdentifier("BIC: country differs from the IBAN's")
    return str(bic)


_AMC = re.compile(r"[0-9]{9}")  # ASCII digits only: \d would also take other scripts' digits


def validate_amc_number(value: str) -> str:
    """Numéro AMC: 9 digits as printed on the card (no public check key)."""
    if not _AMC.fullmatch(value):
        raise InvalidIdentifier("AMC number: 9 digits expected")
    return value


@dataclass(frozen=True, order=True)
class LunarDate:
    """A birth date as it stands in French files: month and day may be unknown (00)."""

    year: int
    month: int | None
    day: int | None

    @classmethod
    def parse(cls, text: str) -> LunarDate:
        """Parse ``YYYY-MM-DD`` where MM and/or DD may be ``00``."""
        import datetime as dt

        match = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", text)
        if not match:
            raise ValueError("date: YYYY-MM-DD expected")
        year, month, day = (int(part) for part in match.groups())
        if year < 1880:
            raise ValueError("date: year before 1880")
        if month > 12 or (month == 0 and day != 0):
            raise ValueError("date: impossible month")
        if month and day:
            try:
                dt.date(year, month, day)
            except ValueError:
                raise ValueError("date: impossible day") from None
        return cls(year, month or None, day or None)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month or 0:02d}-{self.day or 0:02d}"

    @property
    def is_lunar(self) -> bool:
        return self.month is None or self.day is None


def mask_iban(iban: str) -> str:
    """What anyone ever sees of an IBAN: country, check key and last 4 (``FR76 •••• 1234``)."""
    compact = iban.replace(" ", "").upper()
    return f"{compact[:4]} •••• {compact[-4:]}" if len(compact) >= 8 else "••••"
