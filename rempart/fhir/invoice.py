"""``Claim/$submit`` with ``use = claim``: one invoice, judged at once, the standard way.

The Claim becomes the JSON API's invoice body (``ClaimIn``) and goes through the same ``from_schema`` and
``submit_claim``: checks before the lookup, the invoice number's replay or conflict, the gate, adjudication,
the money ledger. FHIR's Claim has no place for what the compulsory scheme paid and what is claimed from
the complementary insurer, line by line: Rempart's three item extensions carry them (and two totals).
The ClaimResponse gives per line the amount accepted, the status and the stable reason codes (CodeSystem
rempart-claim-reasons), nothing of the patient.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone
from django.utils.translation import get_language, gettext_noop
from django.utils.translation import gettext as _
from pydantic import ValidationError

from rempart.api_validation import message_for
from rempart.claims import rules
from rempart.claims.intake import ClaimIn, InvoiceError, from_schema
from rempart.claims.models import Claim as StoredClaim
from rempart.claims.reasons import TABLE
from rempart.claims.reasons import label as reason_label
from rempart.claims.ruleset import CODE_SYSTEMS
from rempart.claims.service import ClaimConflict, submit_claim
from rempart.fhir import systems
from rempart.fhir.cards import presented
from rempart.fhir.claim_shared import (
    adjudication,
    cents,
    common,
    items_domain_and_date,
    money,
    no_match,
    reason_entry,
    skeleton,
    status_entry,
)
from rempart.fhir.intake import Entries, Entry, invalid, not_supported, only
from rempart.fhir.outcome import FhirError, Issue
from rempart.gate import Actor

SCOPE = "claims:write"
USE = "claim"
CLAIM_ELEMENTS = {
    "resourceType", "id", "meta", "identifier", "status", "type", "use", "patient", "created", "insurer",
    "provider", "priority", "careTeam", "insurance", "item", "total", "extension",
}  # fmt: skip
ITEM_ELEMENTS = {
    "sequence", "category", "productOrService", "modifier", "bodySite", "servicedDate", "quantity", "unitPrice",
    "extension",
}  # fmt: skip
# Where a scan may meet Rempart's own extensions (intake.scan): on the Claim and on its items only.
EXTENSIONS = {
    re.compile(r"Bundle\.entry\[0\]\.resource\.extension"): frozenset(
        systems.extension(name) for name in systems.CLAIM_EXTENSIONS
    ),
    re.compile(r"Bundle\.entry\[0\]\.resource\.item\[\d+\]\.extension"): frozenset(
        systems.extension(name) for name in systems.ITEM_EXTENSIONS
    ),
}
# The invoice's fields (ClaimIn, rules) and the FHIR elements they come from.
INVOICE_FIELDS = {
    "invoice_number": "identifier[0].value", "invoice_date": "created", "prescriber_rpps": "careTeam",
    "pec_number": "insurance[0].preAuthRef", "lines": "item", "total_price_cents": "total",
    "total_amo_cents": f"extension('{systems.EXT_TOTAL_AMO}')", "total_amc_cents": f"extension('{systems.EXT_TOTAL_AMC}')",
}  # fmt: skip
LINE_FIELDS = {
    "code_system": "productOrService", "code": "productOrService", "lpp_class": "modifier", "side": "bodySite",
    "quantity": "quantity", "unit_price_cents": "unitPrice", "base_cents": f"extension('{systems.EXT_BASE}')",
    "amo_paid_cents": f"extension('{systems.EXT_AMO_PAID}')", "amc_claimed_cents": f"extension('{systems.EXT_AMC_CLAIMED}')",
}  # fmt: skip


def submit(request, entries: Entries) -> dict:
    """Judge one invoice; the ClaimResponse to send (``entries``: the Bundle, already scanned and validated)."""
    claim, _items = common(entries, USE)
    only(claim.raw, CLAIM_ELEMENTS, claim.path)
    only(
        claim.raw["insurance"][0],
        {"sequence", "focal", "coverage", "preAuthRef"},
        f"{claim.path}.insurance[0]",
    )
    domain, care_date, first = items_domain_and_date(claim, ITEM_ELEMENTS)
    card_fields, _coverage = presented(
        entries, claim.model.patient, f"{claim.path}.patient", domain, f"{first}.category",
        claim.model.insurer, f"{claim.path}.insurer",
    )  # fmt: skip
    entries.resolve(claim.model.insurance[0].coverage, "Coverage", f"{claim.path}.insurance[0].coverage")
    body = {**card_fields.values, **_invoice(claim, care_date)}
    where = {**{f: f"{claim.path}.{e}" for f, e in INVOICE_FIELDS.items()}, **card_fields.where}
    where["care_date"] = f"{first}.servicedDate"
    today = timezone.localdate()
    try:
        card, invoice = from_schema(ClaimIn.model_validate(body), today=today)
        outcome = submit_claim(
            Actor.api(request), card, invoice, channel=StoredClaim.Channel.API, today=today
        )
    except ValidationError as exc:
        raise FhirError(400, [_schema_issue(error, claim, where) for error in exc.errors()[:10]]) from None
    except InvoiceError as exc:
        raise FhirError(
            400, [_issue(e["line"], e["field"], e["message"], claim, where) for e in exc.errors]
        ) from None
    except rules.ClaimInputError as exc:
        issues = [_issue(e.line, e.field, e.message, claim, where, e.code) for e in exc.errors]
        raise FhirError(400, issues) from None
    except ClaimConflict as exc:
        raise FhirError(
            409, Issue("conflict", "conflict", str(exc), f"{claim.path}.identifier[0].value")
        ) from None
    resource = skeleton(claim, outcome.reference, USE)
    resource["request"]["identifier"] = _invoice_identifier(invoice.invoice_number)
    if outcome.claim is None:
        return no_match(resource)
    return _adjudicated(resource, outcome.claim)


def _invoice_identifier(number: str) -> dict:
    return {"system": systems.identifier_system(systems.INVOICE_NUMBER), "value": number}


def _invoice(claim: Entry, care_date: dt.date) -> dict:
    """The invoice's own fields, from the Claim, as ClaimIn takes them (cents, codes, dates)."""
    model, path = claim.model, claim.path
    identifiers = [
        i for i in model.identifier or () if i.system == systems.identifier_system(systems.INVOICE_NUMBER)
    ]
    if len(model.identifier or ()) != 1 or len(identifiers) != 1:
        raise invalid(
            lambda: (
                _("un identifiant attendu : le numéro de facture (système %(system)s)")
                % {"system": systems.identifier_system(systems.INVOICE_NUMBER)}
            ),
            f"{path}.identifier",
            code="required",
        )
    created = model.created
    invoice_date = timezone.localtime(created).date() if isinstance(created, dt.datetime) else created
    extensions = _amounts(model.extension, f"{path}.extension", systems.CLAIM_EXTENSIONS)
    if model.total is None:
        raise invalid(gettext_noop("élément obligatoire"), f"{path}.total", code="required")
    pec_refs = model.insurance[0].preAuthRef or []
    if len(pec_refs) > 1:
        raise not_supported(
            gettext_noop("une seule prise en charge par facture"), f"{path}.insurance[0].preAuthRef"
        )
    return _present(
        {
            "invoice_number": identifiers[0].value,
            "invoice_date": invoice_date.isoformat(),
            "care_date": care_date.isoformat(),
            "prescriber_rpps": _prescriber(claim),
            "pec_number": pec_refs[0] if pec_refs else None,
            "lines": [_line(claim, index) for index in range(len(model.item))],
            "total_price_cents": cents(model.total, f"{path}.total"),
            "total_amo_cents": extensions.get(systems.EXT_TOTAL_AMO),
            "total_amc_cents": extensions.get(systems.EXT_TOTAL_AMC),
        }
    )


def _present(fields: dict) -> dict:
    """Without the elements not sent: the invoice schema then says "champ obligatoire" for a missing one."""
    return {name: value for name, value in fields.items() if value is not None}


def _prescriber(claim: Entry) -> str | None:
    """The care team's one member of role prescriber, named by RPPS (none: no prescriber)."""
    team = claim.model.careTeam or []
    if len(team) > 1:
        raise not_supported(
            gettext_noop("un seul membre attendu : le prescripteur"), f"{claim.path}.careTeam"
        )
    if not team:
        return None
    path = f"{claim.path}.careTeam[0]"
    only(claim.raw["careTeam"][0], {"sequence", "provider", "role"}, path)
    role_codes = {(c.system, c.code) for c in (team[0].role.coding if team[0].role else None) or ()}
    if (systems.code_system(systems.CARE_TEAM_ROLES), "prescriber") not in role_codes:
        raise not_supported(gettext_noop("rôle attendu : prescriber"), f"{path}.role")
    identifier = getattr(team[0].provider, "identifier", None)
    if identifier is None or identifier.system != systems.RPPS or not identifier.value:
        raise invalid(
            gettext_noop("prescripteur attendu par son identifiant RPPS (https://rpps.esante.gouv.fr)"),
            f"{path}.provider",
        )
    return identifier.value


def _line(claim: Entry, index: int) -> dict:
    item = claim.model.item[index]
    path = f"{claim.path}.item[{index}]"
    code_system, code = _product(item.productOrService, f"{path}.productOrService")
    quantity = item.quantity.value if item.quantity is not None else None
    if quantity is None or quantity != quantity.to_integral_value():
        raise invalid(gettext_noop("quantité entière attendue"), f"{path}.quantity.value")
    amounts = _amounts(item.extension, f"{path}.extension", systems.ITEM_EXTENSIONS)
    return _present(
        {
            "code_system": code_system,
            "code": code,
            "lpp_class": _one_code(item.modifier, systems.LPP_CLASSES, f"{path}.modifier"),
            "side": _one_code([item.bodySite] if item.bodySite else None, systems.SIDES, f"{path}.bodySite"),
            "quantity": int(quantity),
            "unit_price_cents": cents(item.unitPrice, f"{path}.unitPrice"),
            "base_cents": amounts.get(systems.EXT_BASE),
            "amo_paid_cents": amounts.get(systems.EXT_AMO_PAID),
            "amc_claimed_cents": amounts.get(systems.EXT_AMC_CLAIMED),
        }
    )


def _product(concept, path: str) -> tuple[str, str]:
    known = {systems.product_system(name): name for name in CODE_SYSTEMS}
    codings = [c for c in (concept.coding or ()) if c.system in known and c.code]
    if len(codings) != 1:
        raise invalid(
            gettext_noop("un code attendu, d'un système LPP, CIP13, NGAP, CCAM ou OTHER de Rempart"),
            f"{path}.coding",
        )
    return known[codings[0].system], codings[0].code


def _one_code(concepts, system_id: str, path: str) -> str | None:
    if not concepts:
        return None
    system = systems.code_system(system_id)
    codes = [c.code for concept in concepts for c in (concept.coding or ()) if c.system == system and c.code]
    if len(concepts) != 1 or len(codes) != 1:
        raise invalid(lambda: _("un code du système %(system)s attendu") % {"system": system}, path)
    return codes[0]


def _amounts(extensions, path: str, names: tuple[str, ...]) -> dict[str, int]:
    """Rempart's money extensions (already limited to these URLs by the scan), each at most once, in cents."""
    found: dict[str, int] = {}
    by_url = {systems.extension(name): name for name in names}
    for index, extension in enumerate(extensions or ()):
        name = by_url[extension.url]
        if name in found:
            raise invalid(gettext_noop("extension en double"), f"{path}[{index}]")
        found[name] = cents(extension.valueMoney, f"{path}[{index}].valueMoney")
    return found


def _issue(
    line: int | None, field: str, message: str, claim: Entry, where: dict, code: str = "invalid"
) -> Issue:
    """A problem the invoice checks found, at the FHIR element it came from (``code``: the stable reason)."""
    if line is not None and field in LINE_FIELDS:
        path = f"{claim.path}.item[{line - 1}].{LINE_FIELDS[field]}"
    elif line is not None:
        path = f"{claim.path}.item[{line - 1}]"
    else:
        path = where.get(field, claim.path)
    if code in _STABLE:  # the invoice checks' stable reason (kind input), as the JSON API's errors[].code
        return Issue("invalid", code, message, path, system=systems.CLAIM_REASONS)
    return Issue("invalid", "invalid", message, path)


def _schema_issue(error: dict, claim: Entry, where: dict) -> Issue:
    """The invoice schema's refusal (a value of the wrong kind, a field missing) at its FHIR element."""
    location = list(error.get("loc", ()))
    if len(location) >= 3 and location[0] == "lines" and isinstance(location[1], int):
        return _issue(location[1] + 1, str(location[2]), message_for(error), claim, where)
    return _issue(None, str(location[0]) if location else "", message_for(error), claim, where)


_STABLE = frozenset(str(code) for code in TABLE)


def _adjudicated(resource: dict, claim: StoredClaim) -> dict:
    language = (get_language() or "fr")[:2]
    resource["disposition"] = claim.status
    if claim.status == StoredClaim.Status.PENDING_REVIEW:
        resource["outcome"] = "partial"  # judged by the rules; an operator decides what is owed
    header = [status_entry(claim.status)]
    header += [_reason(code, language) for code in claim.decision.get("review_reasons", [])]
    resource["adjudication"] = header
    resource["item"] = [
        {
            "itemSequence": line.number,
            "adjudication": [
                adjudication("submitted", line.amc_claimed_cents),
                adjudication("benefit", line.accepted_cents),
                status_entry(line.status),
                *(_reason(code, language) for code in line.reasons),
            ],
        }
        for line in claim.lines.order_by("number")
    ]
    resource["total"] = [
        {"category": adjudication("submitted")["category"], "amount": money(claim.claimed_cents)},
        {"category": adjudication("benefit")["category"], "amount": money(claim.accepted_cents)},
    ]
    return resource


def _reason(code: str, language: str) -> dict:
    entry = reason_entry(systems.CLAIM_REASONS, code)
    entry["reason"]["text"] = reason_label(code, language)
    return entry
