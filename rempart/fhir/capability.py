"""``GET /fhir/r4/metadata``: exactly what Rempart's FHIR interface does, and the two operations' definitions.

No search, no read of patients, coverages or claims, no history: two operations that take one patient at a
time (a rights check; a prise en charge or an invoice), and the code systems their answers use.
"""

from __future__ import annotations

import datetime as dt

from rempart.fhir import codesystems, systems

SECURITY = (
    "Authorization: Bearer rmp_… (an API token of the professional organisation, created by its owner). "
    "Session cookies are never accepted. Scopes: rights:check (CoverageEligibilityRequest/$submit), "
    "pec:write (Claim/$submit, use preauthorization), claims:write (Claim/$submit, use claim)."
)
OPERATIONS = {
    "CoverageEligibilityRequest-submit": (
        "CoverageEligibilityRequest",
        "Rights check: a Bundle (collection) of a CoverageEligibilityRequest, its Patient and its Coverage, "
        "answered by a CoverageEligibilityResponse (docs/fhir.md).",
        "CoverageEligibilityResponse",
    ),
    "Claim-submit": (
        "Claim",
        "Prise en charge (use preauthorization; the Bundle adds a VisionPrescription or a DeviceRequest) or "
        "invoice (use claim): a Bundle (collection) of the Claim, its Patient and its Coverage, answered by a "
        "ClaimResponse (docs/fhir.md).",
        "ClaimResponse",
    ),
}


def operation_url(name: str) -> str:
    return f"{systems.base()}/OperationDefinition/{name}"


def capability_statement() -> dict:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": dt.date.today().isoformat(),
        "publisher": "Rempart",
        "kind": "instance",
        "software": {"name": "Rempart"},
        "implementation": {"description": "Rempart, tiers payant", "url": systems.base()},
        "fhirVersion": systems.FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "One patient at a time; no search, no read of patients, coverages or claims.",
                "security": {"cors": False, "description": SECURITY},
                "resource": [
                    _operation_resource("CoverageEligibilityRequest", "CoverageEligibilityRequest-submit"),
                    _operation_resource("Claim", "Claim-submit"),
                    {"type": "CodeSystem", "interaction": [{"code": "read"}]},
                    {"type": "OperationDefinition", "interaction": [{"code": "read"}]},
                ],
            }
        ],
    }


def _operation_resource(resource_type: str, name: str) -> dict:
    return {
        "type": resource_type,
        "operation": [{"name": "submit", "definition": operation_url(name)}],
    }


def operation_definition(name: str) -> dict | None:
    spec = OPERATIONS.get(name)
    if spec is None:
        return None
    resource_type, description, answer = spec
    return {
        "resourceType": "OperationDefinition",
        "id": name,
        "url": operation_url(name),
        "name": name.replace("-", ""),
        "status": "active",
        "kind": "operation",
        "description": description,
        "code": "submit",
        "resource": [resource_type],
        "system": False,
        "type": True,
        "instance": False,
        "parameter": [
            {
                "name": "resource",
                "use": "in",
                "min": 1,
                "max": "1",
                "type": "Bundle",
                "documentation": "The Bundle itself is the body (not wrapped in Parameters).",
            },
            {
                "name": "return",
                "use": "out",
                "min": 1,
                "max": "1",
                "type": answer,
                "documentation": f"The {answer}, or an OperationOutcome with a 4xx status.",
            },
        ],  # fmt: skip
    }


def code_system_ids() -> tuple[str, ...]:
    return codesystems.IDS
