"""An invoice as received, and every check that does not need the beneficiary.

These checks run *before* the patient is identified through the gate, so that a bad invoice gets the
same answer whether the card matched or not: an invoice must not become an oracle. They are all run
and all reported at once (:class:`ClaimInputError`), each problem with its line, field, stable reason
code and a French message that never repeats the value sent (it may be an identifier).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from stdnum import ean

from rempart.lib.identifiers import InvalidIdentifier, validate_rpps

from .reasons import Reason
from .ruleset import CODE_SYSTEMS, ClaimRules

RIGHT, LEFT = "right", "left"
LPP_CLASSES = {"OPTI": ("A", "B"), "AUDI": ("I", "II")}
_INVOICE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")  # no "/": it is read back in a URL
_PEC_NUMBER = re.compile(
    r"PEC-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}"
)  # rempart.authorizations.models.new_number
_SHAPES = {
    "LPP": (re.compile(r"[0-9]{7}"), "Code LPP attendu : 7 chiffres."),
    "CIP13": (re.compile(r"[0-9]{13}"), "Code CIP13 attendu : 13 chiffres, clé comprise."),
    "NGAP": (
        re.compile(r"[A-Z]{1,5}( ?[0-9]{1,4}([.,][0-9]{1,2})?)?"),
        "Acte NGAP attendu : lettre clé (1 à 5 lettres majuscules) suivie ou non d'un coefficient, par exemple AMI 4.",
    ),
    "CCAM": (
        re.compile(r"[A-Z]{4}[0-9]{3}"),
        "Acte CCAM attendu : 4 lettres majuscules et 3 chiffres, par exemple HBLD038.",
    ),
    "OTHER": (
        re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,19}"),
        "Code attendu : 1 à 20 caractères (lettres, chiffres, espace, . _ / -).",
    ),
}
_AMOUNTS = ("unit_price_cents", "base_cents", "amo_paid_cents", "amc_claimed_cents")


@dataclass(frozen=True)
class InvoiceLine:
    number: int  # 1-based line number in the invoice
    code_system: str  # LPP | CIP13 | NGAP | CCAM | OTHER
    code: str
    quantity: int
    unit_price_cents: int
    base_cents: int  # base de remboursement (BR) of the line, all units
    amo_paid_cents: int  # what the AMO paid on the line
    amc_claimed_cents: int  # what the professional claims from the AMC
    lpp_class: str | None = None  # optics A/B, audiology I/II
    side: str | None = None  # right | left: the eye of a lens, the ear of a hearing aid

    @property
    def price_cents(self) -> int:
        return self.unit_price_cents * self.quantity

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "code_system": self.code_system,
            "code": self.code,
            "quantity": self.quantity,
            "unit_price_cents": self.unit_price_cents,
            "base_cents": self.base_cents,
            "amo_paid_cents": self.amo_paid_cents,
            "amc_claimed_cents": self.amc_claimed_cents,
            "lpp_class": self.lpp_class,
            "side": self.side,
        }


@dataclass(frozen=True)
class Invoice:
    invoice_number: str
    invoice_date: dt.date
    care_date: dt.date
    domain: str
    prescriber_rpps: str | None
    pec_number: str | None
    lines: tuple[InvoiceLine, ...]
    total_price_cents: int
    total_amo_cents: int
    total_amc_cents: int  # claimed from the AMC

    def as_dict(self) -> dict:
        """JSON-able, for the stored claim (no identity: the beneficiary is identified separately)."""
        return {
            "invoice_number": self.invoice_number,
            "invoice_date": self.invoice_date.isoformat(),
            "care_date": self.care_date.isoformat(),
            "domain": self.domain,
            "prescriber_rpps": self.prescriber_rpps,
            "pec_number": self.pec_number,
            "lines": [line.as_dict() for line in self.lines],
            "total_price_cents": self.total_price_cents,
            "total_amo_cents": self.total_amo_cents,
            "total_amc_cents": self.total_amc_cents,
        }


class ClaimInputError(ValueError):
    """Bad input: nothing to decide or store. ``line`` is 1-based (None: the invoice as a whole).

    ``errors`` holds every problem found (this one first), each with its line, field, reason code and
    French message; like the PEC engine's ``PecInputError``.
    """

    def __init__(self, line: int | None, field: str, code: Reason, message: str) -> None:
        super().__init__(f"{'ligne ' + str(line) if line else 'facture'}, {field} : {message}")
        self.line = line
        self.field = field
        self.code = str(code)
        self.message = message
        self.errors: tuple[ClaimInputError, ...] = (self,)

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "code": self.code, "message": self.message}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_date(value: object) -> bool:
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def check_invoice(invoice: Invoice, *, today: dt.date, rules: ClaimRules) -> None:
    """Every check that does not need the beneficiary; raises :class:`ClaimInputError` with all problems."""
    errors: list[ClaimInputError] = []

    def error(line: int | None, name: str, code: Reason, message: str) -> None:
        errors.append(ClaimInputError(line, name, code, message))

    if not _INVOICE_NUMBER.fullmatch(_text(invoice.invoice_number)):
        error(
            None,
            "invoice_number",
            Reason.INVOICE_NUMBER_INVALID,
            "Numéro de facture attendu : 1 à 40 caractères (lettres, chiffres, . _ / -).",
        )
    domain = rules.domains.get(_text(invoice.domain))
    if domain is None:
        error(None, "domain", Reason.DOMAIN_UNKNOWN, "Domaine de soins inconnu (PHAR, MEDE, OPTI, AUDI…).")
    _check_dates(invoice, today, rules, error)
    rpps = invoice.prescriber_rpps
    if rpps in (None, ""):
        if domain is not None and domain.prescription:
            error(
                None,
                "prescriber_rpps",
                Reason.PRESCRIBER_MISSING,
                "Numéro RPPS du prescripteur requis pour ce domaine.",
            )
    else:
        try:
            validate_rpps(_text(rpps))
        except InvalidIdentifier:
            error(
                None,
                "prescriber_rpps",
                Reason.PRESCRIBER_INVALID,
                "Numéro RPPS du prescripteur invalide : 11 chiffres, clé de contrôle comprise.",
            )
    pec_number = invoice.pec_number
    if domain is not None and domain.pec:
        if pec_number in (None, ""):
            error(
                None,
                "pec_number",
                Reason.PEC_NUMBER_MISSING,
                "Numéro de prise en charge requis pour ce domaine.",
            )
        elif not _PEC_NUMBER.fullmatch(_text(pec_number)):
            error(
                None,
                "pec_number",
                Reason.PEC_NUMBER_INVALID,
                "Numéro de prise en charge attendu sous la forme PEC-XXXX-XXXX.",
            )
    elif domain is not None and pec_number not in (None, ""):
        error(
            None,
            "pec_number",
            Reason.PEC_NUMBER_UNEXPECTED,
            "Pas de prise en charge dans ce domaine : laissez le numéro vide.",
        )
    lines_ok = _check_lines(invoice, domain, rules, error)
    if lines_ok:
        _check_totals(invoice, error)
    if errors:
        first = errors[0]
        first.errors = tuple(errors)
        raise first


def _check_dates(invoice: Invoice, today: dt.date, rules: ClaimRules, error: Callable) -> None:
    care, issued = invoice.care_date, invoice.invoice_date
    if not _is_date(care):
        error(None, "care_date", Reason.DATE_INVALID, "Date des soins attendue (AAAA-MM-JJ).")
    if not _is_date(issued):
        error(None, "invoice_date", Reason.DATE_INVALID, "Date de facture attendue (AAAA-MM-JJ).")
    if _is_date(care):
        if care > today:
            error(None, "care_date", Reason.CARE_DATE_IN_FUTURE, "La date des soins est dans le futur.")
        elif (today - care).days > rules.time_limit_days:
            error(
                None,
                "care_date",
                Reason.TIME_LIMIT_EXCEEDED,
                f"Soins de plus de {rules.time_limit_days} jours : délai de facturation dépassé.",
            )
    if _is_date(issued):
        if issued > today:
            error(None, "invoice_date", Reason.DATE_INVALID, "La date de facture est dans le futur.")
        elif _is_date(care) and issued < care:
            error(None, "invoice_date", Reason.DATE_INVALID, "La date de facture précède la date des soins.")


def _check_lines(invoice: Invoice, domain, rules: ClaimRules, error: Callable) -> bool:
    """Check each line; True when every amount is usable for the totals."""
    lines = invoice.lines
    if not isinstance(lines, tuple | list) or not lines:
        error(None, "lines", Reason.LINES_INVALID, "Au moins une ligne est attendue.")
        return False
    if len(lines) > rules.max_lines:
        error(None, "lines", Reason.LINES_INVALID, f"Au plus {rules.max_lines} lignes par facture.")
        return False
    amounts_ok = True
    for position, line in enumerate(lines, start=1):
        if not isinstance(line, InvoiceLine):
            error(position, "lines", Reason.LINES_INVALID, "Ligne de facture attendue.")
            amounts_ok = False
            continue
        if line.number != position or not _is_int(line.number):
            error(
                position,
                "number",
                Reason.LINES_INVALID,
                "Les lignes sont numérotées 1, 2, 3… dans l'ordre.",
            )
        _check_code(position, line, invoice.domain, domain, rules, error)
        if not _is_int(line.quantity) or not 1 <= line.quantity <= rules.max_quantity:
            error(
                position,
                "quantity",
                Reason.QUANTITY_INVALID,
                f"Quantité entière de 1 à {rules.max_quantity} attendue.",
            )
            amounts_ok = False
            continue
        if not _check_amounts(position, line, rules, error):
            amounts_ok = False
    return amounts_ok


def _check_code(position: int, line: InvoiceLine, domain_code, domain, rules: ClaimRules, error) -> None:
    system = _text(line.code_system)
    if system not in CODE_SYSTEMS:
        error(
            position,
            "code_system",
            Reason.CODE_SYSTEM_INVALID,
            "Système de codes attendu : LPP, CIP13, NGAP, CCAM ou OTHER.",
        )
        return
    if domain is not None and system not in domain.code_systems:
        allowed = ", ".join(s for s in CODE_SYSTEMS if s in domain.code_systems)
        error(
            position,
            "code_system",
            Reason.CODE_SYSTEM_INVALID,
            f"Système de codes {system} non admis dans ce domaine (admis : {allowed}).",
        )
    pattern, message = _SHAPES[system]
    code = _text(line.code)
    if not pattern.fullmatch(code):
        error(position, "code", Reason.CODE_INVALID, message)
    elif system == "CIP13":
        if not code.startswith(rules.cip13_prefix):
            error(
                position,
                "code",
                Reason.CODE_INVALID,
                f"Code CIP13 attendu : il commence par {rules.cip13_prefix}.",
            )
        elif ean.calc_check_digit(code[:12]) != code[12]:
            error(position, "code", Reason.CODE_INVALID, "Code CIP13 : clé de contrôle invalide.")
    classes = LPP_CLASSES.get(domain_code) if isinstance(domain_code, str) else None
    if classes and system == "LPP":
        if _text(line.lpp_class).strip().upper() not in classes:
            error(
                position,
                "lpp_class",
                Reason.LPP_CLASS_INVALID,
                f"Classe attendue : {' ou '.join(classes)}.",
            )
        if line.side not in (None, "", RIGHT, LEFT):
            error(
                position,
                "side",
                Reason.SIDE_INVALID,
                "Côté attendu : right, left, ou vide pour une monture.",
            )


def _check_amounts(position: int, line: InvoiceLine, rules: ClaimRules, error: Callable) -> bool:
    limit = rules.max_line_cents
    bad = [
        name for name in _AMOUNTS if not _is_int(getattr(line, name)) or not 0 <= getattr(line, name) <= limit
    ]
    if not bad and line.price_cents > limit:
        bad = ["unit_price_cents"]
    for name in bad:
        error(
            position,
            name,
            Reason.AMOUNT_INVALID,
            f"Montant en centimes attendu : nombre entier de 0 à {limit // 100:,} € par ligne.".replace(
                ",", "\u00a0"
            ),
        )
    if bad:
        return False
    if line.unit_price_cents < 1:
        error(position, "unit_price_cents", Reason.AMOUNT_INVALID, "Prix unitaire supérieur à 0 attendu.")
        return False
    price = line.price_cents
    if line.amo_paid_cents > price:
        error(
            position,
            "amo_paid_cents",
            Reason.AMO_ABOVE_LIMIT,
            "La part obligatoire dépasse le prix de la ligne.",
        )
    elif line.amo_paid_cents > line.base_cents:
        error(
            position,
            "amo_paid_cents",
            Reason.AMO_ABOVE_LIMIT,
            "La part obligatoire dépasse la base de remboursement.",
        )
    elif line.amc_claimed_cents > price - line.amo_paid_cents:
        error(
            position,
            "amc_claimed_cents",
            Reason.CLAIMED_ABOVE_REMAINDER,
            "Le montant demandé à la complémentaire dépasse le prix moins la part obligatoire.",
        )
    return True


def _check_totals(invoice: Invoice, error: Callable) -> None:
    sums = {
        "total_price_cents": sum(line.price_cents for line in invoice.lines),
        "total_amo_cents": sum(line.amo_paid_cents for line in invoice.lines),
        "total_amc_cents": sum(line.amc_claimed_cents for line in invoice.lines),
    }
    what = {
        "total_price_cents": "des prix (prix unitaire × quantité)",
        "total_amo_cents": "des parts obligatoires",
        "total_amc_cents": "des montants demandés à la complémentaire",
    }
    for name, expected in sums.items():
        given = getattr(invoice, name)
        if not _is_int(given) or given != expected:
            error(
                None,
                name,
                Reason.TOTALS_MISMATCH,
                f"Le total ne correspond pas à la somme {what[name]} des lignes.",
            )
    if sums["total_amc_cents"] == 0:
        error(
            None,
            "total_amc_cents",
            Reason.NOTHING_CLAIMED,
            "Aucun montant n'est demandé à la complémentaire.",
        )
