"""A professional's bank details: the account Rempart pays. A high-value fraud target, changed with care."""

from __future__ import annotations

from rempart.lib.identifiers import validate_bic, validate_iban
from rempart.registry.models import Professional


def change_bank_details(professional: Professional, iban: str, bic: str) -> None:
    """Validate (schwifty) and store the new IBAN encrypted; raises InvalidIdentifier with a safe reason."""
    iban = validate_iban(iban)
    bic = validate_bic(bic, iban)
    professional.set_iban(iban)
    professional.bic = bic
    professional.save(update_fields=["iban_cipher", "iban_index", "bic"])
