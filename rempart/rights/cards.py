"""What the professional presents, read from the patient's two cards, and its validation.

Validation errors are precise and say which field; they are distinct from "no match", which is
decided later and always looks the same.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from rempart.lib.identifiers import InvalidIdentifier, LunarDate, validate_amc_number, validate_nir
from rempart.registry.models import CareDomain

_ADHERENT = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,19}$")


class CardDataError(ValueError):
    """One presented field is malformed; the message never repeats the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class CardData:
    amc_number: str
    adherent_number: str
    nir: str
    birth_date: LunarDate
    birth_rank: int
    domain: str
    care_date: dt.date


def read_card_data(
    *,
    amc_number: str,
    adherent_number: str,
    nir: str,
    birth_date: str,
    domain: str,
    care_date: str | dt.date | None = None,
    birth_rank: int | str | None = None,
    today: dt.date | None = None,
    date_format: str = "AAAA-MM-JJ",
) -> CardData:
    """Check and normalise the presented data; raise CardDataError naming the first bad field."""
    today = today or dt.date.today()
    try:
        amc = validate_amc_number((amc_number or "").strip())
    except InvalidIdentifier:
        raise CardDataError("amc_number", _("le numéro AMC compte 9 chiffres")) from None
    adherent = (adherent_number or "").strip().upper().replace(" ", "")
    if not _ADHERENT.match(adherent):
        raise CardDataError("adherent_number", _("1 à 20 lettres, chiffres ou tirets"))
    try:
        nir_value = validate_nir(nir or "")
    except InvalidIdentifier as exc:
        raise CardDataError("nir", _nir_message(str(exc))) from None
    try:
        birth = LunarDate.parse((birth_date or "").strip())
    except ValueError:
        raise CardDataError(
            "birth_date",
            _("date de naissance au format %(format)s (00 si jour ou mois inconnus)")
            % {"format": date_format},
        ) from None
    rank = _rank(birth_rank)
    domain_code = (domain or "").strip().upper()
    if domain_code not in CareDomain.values:
        raise CardDataError(
            "domain", _("domaine inconnu ; attendu : %(codes)s") % {"codes": ", ".join(CareDomain.values)}
        )
    care = _care_date(care_date, today, date_format)
    if (birth.year, birth.month or 0, birth.day or 0) > (care.year, care.month, care.day):
        raise CardDataError("birth_date", _("postérieure à la date des soins"))
    return CardData(amc, adherent, nir_value, birth, rank, domain_code, care)


def _nir_message(reason: str) -> str:
    if "check key" in reason:
        return _("la clé du NIR ne correspond pas (vérifiez la saisie)")
    return _("NIR à 15 caractères, clé comprise (2A/2B pour la Corse)")


def _rank(value) -> int:
    if value in (None, ""):
        return 1
    text = str(value).strip()
    if not text.isdecimal() or not 1 <= int(text) <= 9:
        raise CardDataError("birth_rank", _("rang de naissance de 1 à 9"))
    return int(text)


def _care_date(value, today: dt.date, date_format: str) -> dt.date:
    if value in (None, ""):
        return today
    if isinstance(value, dt.date):
        care = value
    else:
        try:
            care = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise CardDataError(
                "care_date", _("date des soins au format %(format)s") % {"format": date_format}
            ) from None
    if care > today:
        raise CardDataError("care_date", _("la date des soins ne peut pas être dans le futur"))
    oldest = today - dt.timedelta(days=settings.REMPART_RIGHTS_MAX_PAST_DAYS)
    if care < oldest:
        raise CardDataError(
            "care_date",
            _("la date des soins ne peut pas remonter à plus de %(days)s jours")
            % {"days": settings.REMPART_RIGHTS_MAX_PAST_DAYS},
        )
    return care
