"""Rempart's FHIR code systems, served at /fhir/r4/CodeSystem/<id>: every code an answer can carry.

Built from the same tables the JSON API uses (the claims' reason codes come from rempart.claims.reasons,
the care domains from the registry) so that a code means one thing whichever door it came out of. A code
never changes meaning once released; software must accept codes it does not know.
"""

from __future__ import annotations

import functools

from django.utils import translation

from rempart.authorizations.rules import Reason as PecReason
from rempart.claims import reasons as claim_reasons
from rempart.fhir import systems
from rempart.registry.models import CareDomain

# (fr, en) labels of the PEC engine's reason codes (rempart/authorizations/rules.py, docs/prise-en-charge.md).
PEC_REASON_LABELS: dict[str, tuple[str, str]] = {
    PecReason.RIGHTS_CLOSED: (
        "Droits non ouverts à la date de délivrance",
        "Rights not open on the delivery date",
    ),
    PecReason.NO_TIERS_PAYANT: (
        "Pas de tiers payant pour ce domaine",
        "No tiers payant for this care domain",
    ),
    PecReason.RENEWAL_TOO_EARLY: (
        "Renouvellement trop tôt : un équipement a déjà été pris en charge dans la période",
        "Renewal too early: a device was already covered within the period",
    ),
    PecReason.FULL_COVER: (
        "100 % santé : reste à charge pris en charge jusqu'au prix limite",
        "100 % santé: the remainder is covered up to the price limit",
    ),
    PecReason.GUARANTEE: ("Garantie du contrat", "The contract's guarantee"),
    PecReason.FLOOR: ("Relevé au plancher de l'équipement", "Raised to the equipment's floor"),
    PecReason.EQUIPMENT_CEILING: ("Ramené au plafond de l'équipement", "Held to the equipment's ceiling"),
    PecReason.FRAME_CEILING: ("Monture ramenée à son sous-plafond", "Frame held to its sub-ceiling"),
    PecReason.EAR_CEILING: ("Ramené au plafond par oreille", "Held to the per-ear ceiling"),
    PecReason.NOT_RESPONSIBLE: (
        "Contrat non responsable : ses seules limites",
        "Not a contrat responsable: its own limits only",
    ),
    PecReason.NO_AMC_SHARE: (
        "Aucune part complémentaire sur cette ligne",
        "No complementary share on this line",
    ),
    PecReason.RENEWAL_SIGHT_CHANGE: (
        "Renouvellement anticipé admis : évolution de la vue",
        "Early renewal allowed: change of sight",
    ),
    PecReason.RENEWAL_MEDICAL: (
        "Renouvellement anticipé admis : pathologie attestée",
        "Early renewal allowed: attested medical condition",
    ),
}

# The stable error codes of an OperationOutcome (issue.details): the JSON API's (docs/api-errors.md) and the
# few that only FHIR input can earn.
ERROR_LABELS: dict[str, tuple[str, str]] = {
    "invalid": ("Valeur invalide", "Invalid value"),
    "structure": ("Ressource FHIR mal formée", "Malformed FHIR resource"),
    "not_supported": (
        "Élément ou valeur non pris en charge par Rempart",
        "Element or value Rempart does not take",
    ),
    "too_complex": ("Trop d'entrées ou de nœuds", "Too many entries or nodes"),
    "malformed_body": ("Corps JSON illisible", "Unreadable JSON body"),
    "unauthenticated": ("Jeton d'API manquant", "Missing API token"),
    "token_invalid": ("Jeton invalide", "Invalid token"),
    "token_revoked": ("Jeton révoqué", "Revoked token"),
    "token_expired": ("Jeton expiré", "Expired token"),
    "token_suspended": ("Jeton suspendu", "Suspended token"),
    "organisation_suspended": ("Organisation suspendue", "Suspended organisation"),
    "creator_suspended": ("Créateur du jeton suspendu", "Token creator suspended"),
    "scope_missing": ("Autorisation manquante", "Missing scope"),
    "domain_not_allowed": (
        "Domaine non enregistré pour l'organisation",
        "Domain not registered for the organisation",
    ),
    "suspended": ("Compte, jeton ou organisation suspendu", "Account, token or organisation suspended"),
    "step_up_required": ("Second facteur requis", "Second factor required"),
    "rate_limited": ("Trop de requêtes", "Too many requests"),
    "switched_off": ("Coupé par l'opérateur", "Switched off by the operator"),
    "not_found": ("Ressource introuvable", "Resource not found"),
    "method_not_allowed": ("Méthode non permise", "Method not allowed"),
    "conflict": ("Conflit", "Conflict"),
    "too_large": ("Corps trop volumineux", "Body too large"),
    "unsupported_media_type": ("Type de contenu non pris en charge", "Unsupported media type"),
    "unavailable": ("Service indisponible", "Service unavailable"),
    "internal": ("Erreur interne", "Internal error"),
}


def _concepts(labels: dict[str, tuple[str, str]], kinds: dict[str, str] | None = None) -> list[dict]:
    concepts = []
    for code, (french, english) in labels.items():
        concept = {
            "code": str(code),
            "display": french,
            "designation": [{"language": "en", "value": english}],
        }
        if kinds is not None:
            concept["property"] = [{"code": "kind", "valueCode": kinds[str(code)]}]
        concepts.append(concept)
    return concepts


def _domain_labels() -> dict[str, tuple[str, str]]:
    labels = {}
    for domain in CareDomain:
        with translation.override("fr"):
            french = str(domain.label)
        with translation.override("en"):
            english = str(domain.label)
        labels[domain.value] = (french, english)
    return labels


@functools.cache
def _table() -> dict[str, tuple[str, str, list[dict], list[dict]]]:
    """id → (name, description, properties, concepts); built once per process."""
    claim_labels = {str(code): (fr, en) for code, (_kind, fr, en) in claim_reasons.TABLE.items()}
    claim_kinds = {str(code): str(kind) for code, (kind, _fr, _en) in claim_reasons.TABLE.items()}
    kind_property = [
        {
            "code": "kind",
            "description": "rejection, reduction, review (the invoice waits for an operator) or input (refused as bad input)",
            "type": "code",
        }
    ]
    return {
        systems.CARE_DOMAINS: (
            "RempartCareDomains",
            "Care domains, as printed on the carte de tiers payant (item category).",
            [],
            _concepts(_domain_labels()),
        ),
        systems.BENEFIT_TYPES: (
            "RempartBenefitTypes",
            "The tiers payant terms of one domain, as benefits of a CoverageEligibilityResponse.",
            [],
            _concepts(
                {
                    "tp-code": (
                        "Code imprimé sur la carte pour ce domaine",
                        "Code printed on the card for this domain",
                    ),
                    "rate-percent": (
                        "Taux en % de la base de remboursement",
                        "Rate, % of the reimbursement base",
                    ),
                    "flat-amount": ("Forfait en euros", "Flat amount in euros"),
                }
            ),
        ),
        systems.OUTCOMES: (
            "RempartOutcomes",
            "What a rights check, a PEC or an invoice answered (no_match: nothing matched, whatever it was).",
            [],
            _concepts(
                {
                    "covered": ("Couvert", "Covered"),
                    "not_covered": ("Non couvert", "Not covered"),
                    "no_match": ("Aucune correspondance", "No match"),
                }
            ),
        ),
        systems.CLAIM_REASONS: (
            "RempartClaimReasons",
            "The stable reason codes of invoice adjudication (docs/claims.md §13).",
            kind_property,
            _concepts(claim_labels, claim_kinds),
        ),
        systems.PEC_REASONS: (
            "RempartPecReasons",
            "The reason codes of a prise en charge decision, per line (docs/prise-en-charge.md).",
            [],
            _concepts(PEC_REASON_LABELS),
        ),
        systems.ADJUDICATION_EXTRA: (
            "RempartAdjudication",
            "Adjudication categories FHIR's own code system lacks.",
            [],
            _concepts(
                {
                    "amo": ("Part de l'assurance maladie obligatoire", "Compulsory scheme's share"),
                    "patient": ("Reste à charge du patient", "Patient's remainder"),
                    "reason": ("Motif (sans montant)", "Reason (no amount)"),
                    "status": ("Statut de la ligne ou de la demande", "Status of the line or the request"),
                }
            ),
        ),
        systems.STATUSES: (
            "RempartStatuses",
            "Statuses of a PEC, an invoice and their lines.",
            [],
            _concepts(
                {
                    "accepted": ("Accepté", "Accepted"),
                    "partially_accepted": ("Accepté en partie", "Partially accepted"),
                    "refused": ("Refusé", "Refused"),
                    "rejected": ("Rejeté", "Rejected"),
                    "reduced": ("Réduit", "Reduced"),
                    "pending": ("En examen", "Pending"),
                    "pending_review": ("En examen par l'opérateur", "Pending the operator's review"),
                }
            ),
        ),
        systems.LPP_CLASSES: (
            "RempartLppClasses",
            "100 % santé classes: A/B (optics), I/II (audiology).",
            [],
            _concepts({c: (f"Classe {c}", f"Class {c}") for c in ("A", "B", "I", "II")}),
        ),
        systems.SIDES: (
            "RempartSides",
            "The eye of a lens, the ear of a hearing aid.",
            [],
            _concepts({"right": ("Droit", "Right"), "left": ("Gauche", "Left")}),
        ),
        systems.INFORMATION: (
            "RempartInformation",
            "Supporting information a prise en charge takes.",
            [],
            _concepts(
                {
                    "medical-condition": (
                        "Pathologie attestée permettant un renouvellement anticipé",
                        "Attested medical condition allowing an early renewal",
                    )
                }
            ),
        ),
        systems.CARE_TEAM_ROLES: (
            "RempartCareTeamRoles",
            "Roles on an invoice's care team.",
            [],
            _concepts({"prescriber": ("Prescripteur", "Prescriber")}),
        ),
        systems.ERRORS: (
            "RempartErrors",
            "Stable error codes of an OperationOutcome (issue.details); the JSON API's codes, and FHIR's own.",
            [],
            _concepts(ERROR_LABELS),
        ),
    }


IDS = (
    systems.CARE_DOMAINS,
    systems.BENEFIT_TYPES,
    systems.OUTCOMES,
    systems.CLAIM_REASONS,
    systems.PEC_REASONS,
    systems.ADJUDICATION_EXTRA,
    systems.STATUSES,
    systems.LPP_CLASSES,
    systems.SIDES,
    systems.INFORMATION,
    systems.CARE_TEAM_ROLES,
    systems.ERRORS,
)


def code_system(system_id: str) -> dict | None:
    """The CodeSystem resource of one of Rempart's systems (None: not one of them)."""
    entry = _table().get(system_id)
    if entry is None:
        return None
    name, description, properties, concepts = entry
    resource = {
        "resourceType": "CodeSystem",
        "id": system_id,
        "url": systems.code_system(system_id),
        "version": "1",
        "name": name,
        "status": "active",
        "experimental": False,
        "publisher": "Rempart",
        "description": description,
        "language": "fr",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }
    if properties:
        resource["property"] = properties
    return resource


def display(system_id: str, code: str, language: str = "fr") -> str:
    """A code's label in the reader's language; an unknown code reads as itself."""
    entry = _table().get(system_id)
    for concept in entry[3] if entry else []:
        if concept["code"] == code:
            return concept["designation"][0]["value"] if language.startswith("en") else concept["display"]
    return code
