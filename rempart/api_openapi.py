"""The error answers in the OpenAPI schema: what each operation can really give, with the error's schema.

Routers declare the errors of their own rules (409, 429…); the ones that come from the platform around
them (a missing token, a body too large or of the wrong type, an unknown resource, a method not allowed,
a defect, the database down) are added here, once, so that no operation forgets one. A status already
declared by a router is left as it is.
"""

from __future__ import annotations

ERROR_SCHEMA_NAME = "ApiError"
ERROR_SCHEMA = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "description": (
        "Toute erreur de l'API (voir docs/api-errors.md). `detail` est en français, ou en anglais avec "
        "`Accept-Language: en` ; `code` est stable et ne se traduit pas."
    ),
    "properties": {
        "detail": {"type": "string", "title": "Detail", "examples": ["ressource introuvable"]},
        "code": {"type": "string", "title": "Code", "examples": ["not_found"]},
        "field": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "title": "Field",
            "description": "Le champ en cause, pour une donnée refusée",
        },
    },
    "required": ["detail", "code"],
}

DESCRIPTIONS = {
    "400": "Requête invalide : `invalid` (le champ en cause dans `field`) ou `malformed_body` (JSON illisible)",
    "401": "Jeton absent, invalide, révoqué ou expiré : `unauthenticated`, `token_invalid`, `token_revoked`, "
    "`token_expired`",
    "403": "Jeton valide mais sans l'autorisation nécessaire, ou suspendu : `scope_missing`, `token_suspended`, "
    "`organisation_suspended`, `creator_suspended`, `forbidden`",
    "404": "Ressource inconnue pour votre organisation : `not_found`",
    "405": "Méthode non permise pour cette adresse (l'en-tête `Allow` dit lesquelles) : `method_not_allowed`",
    "413": "Corps de requête trop volumineux : `too_large`",
    "415": "Content-Type non pris en charge (application/json attendu) : `unsupported_media_type`",
    "500": "Erreur interne, sans détail : `internal`",
    "503": "Service momentanément indisponible (voir `Retry-After`) : `unavailable`",
}
BODY_METHODS = {"post", "put", "patch"}


def _response(status: int) -> dict:
    return {
        "description": DESCRIPTIONS[str(status)],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}},
    }


def statuses_for(method: str, operation: dict) -> list[int]:
    """The platform's error statuses an operation can answer (besides its router's own)."""
    statuses = ["405", "500", "503"]
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        statuses += ["401", "403"]
    if method in BODY_METHODS or any(p.get("in") == "query" for p in parameters):
        statuses.append("400")
    if any(p.get("in") == "path" for p in parameters):
        statuses.append("404")
    if method in BODY_METHODS:
        statuses += ["413", "415"]
    return sorted(int(status) for status in statuses)


def add_error_responses(schema: dict) -> dict:
    schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            existing = {str(status) for status in responses}
            for status in statuses_for(method, operation):
                if str(status) not in existing:
                    responses[status] = _response(status)
    return schema
