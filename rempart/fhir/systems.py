"""The identifier systems and code systems the FHIR interface reads and writes, in one place.

National systems come from the French FHIR guides (docs/fhir.md cites them): the NIR as FR Core's
``NSS`` identifier slice, the prescriber's RPPS as FR Core's ``rpps`` slice. Rempart's own systems
(numéro AMC, check references, PEC numbers, its code systems) live under this deployment's FHIR base,
``REMPART_BASE_URL`` + ``/fhir/r4``, where the code systems are served: a vendor reads every system
from the base it calls, and no system claims a domain the project does not own.
"""

from __future__ import annotations

from django.conf import settings

# FR Core Patient, identifier slice NSS (type v2-0203#NH): the NIR read from the carte Vitale, the patient's
# own or the ouvrant droit's. The same OID is FR Core's INS-NIR system.
NIR = "urn:oid:1.2.250.1.213.1.4.8"
NIR_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
NIR_TYPE_CODE = "NH"
# FR Core Practitioner, identifier slice rpps: the 11-digit RPPS number.
RPPS = "https://rpps.esante.gouv.fr"
# HL7's own code systems used as they are.
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
FHIR_VERSION = "4.0.1"


def base() -> str:
    """This deployment's FHIR base: the address vendors call, and the root of Rempart's own systems."""
    return settings.REMPART_BASE_URL.rstrip("/") + "/fhir/r4"


def identifier_system(name: str) -> str:
    """Rempart's identifier systems: ``amc-number``, ``check-reference``, ``pec-number``, ``invoice-number``."""
    return f"{base()}/sid/{name}"


def code_system(name: str) -> str:
    """The canonical URL of one of Rempart's code systems, served at that very address."""
    return f"{base()}/CodeSystem/{name}"


def extension(name: str) -> str:
    """Rempart's extensions (only on an invoice's lines and totals: the amounts FHIR's Claim has no place for)."""
    return f"{base()}/StructureDefinition/{name}"


def product_system(code_system_name: str) -> str:
    """Where an invoice line's code comes from (LPP, CIP13, NGAP, CCAM, OTHER): Rempart's system URIs.

    No FHIR system for these French nomenclatures could be verified in the ANS's published guides; vendors
    send these URIs, which Rempart will accept alongside the ANS's once they are published (docs/fhir.md).
    """
    return f"{base()}/sid/code/{code_system_name.lower()}"


AMC_NUMBER = "amc-number"
CHECK_REFERENCE = "check-reference"
PEC_NUMBER = "pec-number"
INVOICE_NUMBER = "invoice-number"

# Rempart's code systems (ids, as served at /fhir/r4/CodeSystem/<id>).
CARE_DOMAINS = "rempart-care-domains"
BENEFIT_TYPES = "rempart-benefit-types"
OUTCOMES = "rempart-outcomes"
CLAIM_REASONS = "rempart-claim-reasons"
PEC_REASONS = "rempart-pec-reasons"
ADJUDICATION_EXTRA = "rempart-adjudication"
STATUSES = "rempart-statuses"
LPP_CLASSES = "rempart-lpp-classes"
SIDES = "rempart-sides"
INFORMATION = "rempart-information"
CARE_TEAM_ROLES = "rempart-care-team-roles"
ERRORS = "rempart-errors"

# Rempart's extensions on an invoice (Claim, use = claim): money in euros, two decimals at most.
EXT_BASE = "base"  # on Claim.item: the line's base de remboursement
EXT_AMO_PAID = "amo-paid"  # on Claim.item: what the compulsory scheme paid on the line
EXT_AMC_CLAIMED = "amc-claimed"  # on Claim.item: what is claimed from the complementary insurer
EXT_TOTAL_AMO = "total-amo"  # on Claim
EXT_TOTAL_AMC = "total-amc"  # on Claim
ITEM_EXTENSIONS = (EXT_BASE, EXT_AMO_PAID, EXT_AMC_CLAIMED)
CLAIM_EXTENSIONS = (EXT_TOTAL_AMO, EXT_TOTAL_AMC)


def masked() -> dict:
    """A reference that says nothing: FHIR requires the element, Rempart never names the patient or insurer."""
    return {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "masked"}]}


def coding(system_id: str, code: str) -> dict:
    return {"system": code_system(system_id), "code": code}
