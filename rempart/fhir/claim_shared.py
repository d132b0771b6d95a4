"""What a prise en charge and an invoice share as FHIR Claims: the Claim's common elements, money, and the
ClaimResponse's skeleton (masked patient and insurer, adjudication entries, the uniform *no match*)."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext_noop

from rempart.fhir import systems
from rempart.fhir.cards import domain_of
from rempart.fhir.intake import Entries, Entry, invalid, not_supported, only, require
from rempart.fhir.outcome import instant
from rempart.ledger.models import Disclosure

EUR = "EUR"


def common(entries: Entries, use: str) -> tuple[Entry, list[dict]]:
    """The Claim (first entry) checked for what both uses need; returns it and its raw items."""
    claim = entries.get("Claim")
    raw, model, path = claim.raw, claim.model, claim.path
    require(
        raw,
        ("status", "type", "use", "patient", "created", "provider", "priority", "insurance", "item"),
        path,
    )
    if model.status != "active":
        raise not_supported(gettext_noop("statut attendu : active"), f"{path}.status")
    if model.use != use:
        raise not_supported(
            gettext_noop("use attendu : preauthorization (prise en charge) ou claim (facture)"), f"{path}.use"
        )
    if len(model.insurance) != 1:
        raise not_supported(gettext_noop("une seule couverture par demande"), f"{path}.insurance")
    return claim, raw["item"]


def items_domain_and_date(claim: Entry, item_elements: set[str]):
    """Every item in one domain (its category) and on one date (its servicedDate): (domain, date, path)."""
    domains, dates = set(), set()
    first_path = f"{claim.path}.item[0]"
    for index, (raw, item) in enumerate(zip(claim.raw["item"], claim.model.item, strict=True)):
        path = f"{claim.path}.item[{index}]"
        only(raw, item_elements, path)
        require(raw, ("sequence", "category", "productOrService", "servicedDate"), path)
        if item.sequence != index + 1:
            raise invalid(gettext_noop("séquence attendue : 1, 2, 3… dans l'ordre"), f"{path}.sequence")
        domains.add(domain_of(item.category, f"{path}.category"))
        dates.add(item.servicedDate)
    if len(domains) != 1:
        raise invalid(gettext_noop("un seul domaine de soins par demande"), f"{claim.path}.item")
    if len(dates) != 1:
        raise invalid(
            gettext_noop("une seule date par demande (servicedDate de chaque ligne)"), f"{claim.path}.item"
        )
    return domains.pop(), dates.pop(), first_path


def cents(money, path: str) -> int:
    """Euros (at most two decimals, in EUR) as integer cents; never rounded."""
    if money is None or money.value is None:
        raise invalid(gettext_noop("montant attendu"), path, code="required")
    if money.currency not in (None, EUR):
        raise invalid(gettext_noop("montant en euros attendu (EUR)"), f"{path}.currency")
    value = Decimal(str(money.value))
    hundredths = value * 100
    if hundredths != hundredths.to_integral_value():
        raise invalid(gettext_noop("au plus deux décimales"), f"{path}.value")
    return int(hundredths)


def money(cents_value: int) -> dict:
    return {"value": (Decimal(cents_value) / 100).quantize(Decimal("0.01")), "currency": EUR}


def coded(code_system_id: str, code: str) -> dict:
    return {"coding": [systems.coding(code_system_id, code)]}


def adjudication(category: str, amount_cents: int | None = None) -> dict:
    """One adjudication entry: FHIR's own categories (submitted, eligible, benefit) or Rempart's (amo…)."""
    if category in ("submitted", "eligible", "benefit"):
        entry = {"category": {"coding": [{"system": systems.ADJUDICATION, "code": category}]}}
    else:
        entry = {"category": coded(systems.ADJUDICATION_EXTRA, category)}
    if amount_cents is not None:
        entry["amount"] = money(amount_cents)
    return entry


def status_entry(status: str) -> dict:
    return {**adjudication("status"), "reason": coded(systems.STATUSES, status)}


def reason_entry(code_system_id: str, code: str) -> dict:
    return {**adjudication("reason"), "reason": coded(code_system_id, code)}


def skeleton(claim: Entry, reference: str, use: str) -> dict:
    """The ClaimResponse every answer starts from: nothing of the patient or the insurer."""
    created = Disclosure.objects.filter(reference=reference).values_list("created_at", flat=True).first()
    return {
        "resourceType": "ClaimResponse",
        "identifier": [{"system": systems.identifier_system(systems.CHECK_REFERENCE), "value": reference}],
        "status": "active",
        "type": claim.model.type.model_dump(mode="json", exclude_none=True),
        "use": use,
        "patient": systems.masked(),
        "created": instant(created),
        "insurer": systems.masked(),
        "request": {"reference": claim.full_url},
        "outcome": "complete",
    }


def no_match(resource: dict) -> dict:
    """The uniform miss: whatever did not match, the same answer (and no amount, no line)."""
    resource["outcome"] = "error"
    resource["disposition"] = "no_match"
    resource["error"] = [{"code": coded(systems.OUTCOMES, "no_match")}]
    return resource
