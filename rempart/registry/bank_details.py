"""A professional's bank details: the account Rempart pays. A high-value fraud target, changed with care."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import validate_bic, validate_iban
from rempart.registry.models import Professional


def change_bank_details(professional: Professional, iban: str, bic: str) -> None:
    """Validate (schwifty) and store the new IBAN encrypted; raises InvalidIdentifier with a safe reason."""
    iban = validate_iban(iban)
    bic = validate_bic(bic, iban)
    professional.set_iban(iban)
    professional.bic = bic
    professional.iban_failed_at = None
    professional.iban_failed_reason = ""
    professional.save(
        update_fields=["iban_cipher", "iban_index", "bic", "iban_failed_at", "iban_failed_reason"]
    )


def mask_iban(iban: str) -> str:
    """What anyone ever sees of an IBAN: country, check key and last 4 (``FR76 •••• 1234``)."""
    compact = iban.replace(" ", "").upper()
    return f"{compact[:4]} •••• {compact[-4:]}" if len(compact) >= 8 else "••••"


@dataclass(frozen=True)
class PayTo:
    """Where a payment made now goes: the IBAN in clear (for the bank file only), or why it is held."""

    iban: str | None
    bic: str
    masked: str
    held_reason: str = ""  # "no_iban" | "iban_on_hold" | "iban_failed" when iban is None


def account_to_pay(professional: Professional, at: dt.datetime | None = None) -> PayTo:
    """The account a payment made at ``at`` must go to (the issue-14 IBAN hold decides it).

    Interface for payment runs; the hold rules (a new IBAN is not paid during its hold; the previous one
    is) live here so that no other module reads an IBAN in clear.
    """
    if not professional.iban_cipher:
        return PayTo(None, "", "", "no_iban")
    iban = field_cipher().decrypt("iban", professional.iban_cipher)
    if professional.iban_failed_at:
        return PayTo(None, professional.bic, mask_iban(iban), "iban_failed")
    return PayTo(iban, professional.bic, mask_iban(iban))


def mark_iban_failed(professional: Professional, *, reason_code: str, at: dt.datetime) -> None:
    """The bank rejected a transfer to the current IBAN: pay it no more until the owner gives a new one.

    Telling the owners is the caller's job (it knows which transfer and why)."""
    professional.iban_failed_at = at
    professional.iban_failed_reason = reason_code[:4]
    professional.save(update_fields=["iban_failed_at", "iban_failed_reason"])
