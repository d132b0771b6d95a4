"""The ledger's field codes beyond the rights check, in the words of the notices (never a raw code).

A disclosure row names what it revealed as codes (``pec_amounts:OPTI``, ``adherent_number``…): the notices
turn each into words, as short labels (the list of people), plain words (the letter) and categories (the
insurer's notification). A code unknown here is still counted, under "autre donnée", never printed as is.
Codes that describe the row rather than the person (a download's file hash, its row count) are left out.
"""

from __future__ import annotations

from rempart.registry.models import CareDomain

# prefix (or whole code) → (short label, plain words, category); "{domain}" is the care domain in words.
WORDS: dict[str, tuple[str, str, str]] = {
    "pec_amounts:": (
        "montants de prise en charge ({domain})",
        "les montants qu'elle prend en charge pour vos soins ({domain})",
        "Montants de prise en charge accordés (PEC) — {domain}",
    ),
    "claim_amounts:": (
        "montants facturés en tiers payant ({domain})",
        "les montants facturés en tiers payant pour vos soins ({domain})",
        "Montants des factures en tiers payant — {domain}",
    ),
    "domain_refused:": (
        "domaine de soins non couvert ({domain})",
        "le fait qu'un domaine de soins n'est pas couvert par votre contrat ({domain})",
        "Réponse « domaine de soins non couvert » — {domain}",
    ),
    "billing_detail:": (
        "ligne d'un relevé de facturation",
        "votre numéro d'adhérent et votre rang, dans un relevé de facturation adressé à votre complémentaire",
        "Ligne du relevé de facturation {ref} (numéro d'adhérent et rang)",
    ),
    "adherent_number": ("numéro d'adhérent", "votre numéro d'adhérent", "Numéro d'adhérent"),
    "member_rank": (
        "rang du bénéficiaire",
        "votre rang dans le contrat",
        "Rang du bénéficiaire dans le contrat",
    ),
}
ABOUT_THE_ROW = ("download", "sha256:", "rows:")  # a download's own facts: not about a person
OTHER = ("autre donnée", "une autre donnée de votre contrat", "Autre donnée du contrat")


def _domain(code: str) -> str:
    try:
        return str(CareDomain(code).label)
    except ValueError:
        return "domaine de soins"


def _key(field: str) -> str | None:
    for key in WORDS:
        if field == key or (key.endswith(":") and field.startswith(key)):
            return key
    return None


def words(field: str) -> tuple[str, str, str] | None:
    """(short, plain, category) of one code; None for codes about the row itself."""
    if field.startswith(ABOUT_THE_ROW) or field == "download":
        return None
    key = _key(field)
    if key is None:
        return OTHER
    value = field.split(":", 1)[1] if key.endswith(":") else ""
    domain = _domain(value) if key != "billing_detail:" else ""
    short, plain, category = WORDS[key]
    return (
        short.format(domain=domain),
        plain.format(domain=domain.lower()),
        category.format(domain=domain, ref=value[:40]),
    )


def grouping(field: str) -> str | None:
    """The category a code is counted under (one per domain, one per statement; unknown codes together)."""
    found = words(field)
    return found[2] if found else None
