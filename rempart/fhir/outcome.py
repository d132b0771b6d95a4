"""Every FHIR answer leaves validated: resources through fhir.resources' R4B models, errors as OperationOutcome.

An error is an OperationOutcome whose issues each say where (``expression``, a FHIRPath into what was sent),
what kind (``code``, FHIR's IssueType) and which stable Rempart code (``details.coding``, the same codes as
the JSON API's ``code``, docs/api-errors.md), with a sentence in the request's language (``details.text``).
Never a traceback, never an HTML page: the content type is always ``application/fhir+json``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from fhir.resources.R4B import get_fhir_model_class

from rempart.api_errors import answer_language
from rempart.fhir import systems

log = logging.getLogger("rempart.fhir")

CONTENT_TYPE = "application/fhir+json; charset=utf-8"


@dataclass(frozen=True)
class Issue:
    """One problem: FHIR's IssueType, Rempart's stable code, a sentence (a French msgid), and where."""

    code: (
        str  # FHIR IssueType: invalid, structure, required, value, not-supported, too-long, login, forbidden…
    )
    error: str  # Rempart's stable code (CodeSystem rempart-errors)
    message: str | Callable[[], str]  # a French msgid, already translated text, or a function building it
    expression: str | None = None
    diagnostics: str | None = None  # e.g. the ledger reference of a recorded refusal
    system: str = systems.ERRORS  # the code system of ``error``: rempart-errors, or rempart-claim-reasons


class FhirError(Exception):
    """An answer that is not the resource asked for: an HTTP status and its OperationOutcome."""

    def __init__(
        self, status: int, issues: list[Issue] | Issue, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.issues = issues if isinstance(issues, list) else [issues]
        self.headers = headers or {}
        super().__init__(f"{status}: {self.issues[0].error}")


def invalid(
    message: str | Callable[[], str], expression: str | None, error: str = "invalid", code: str = "invalid"
) -> FhirError:
    """A 400 about one element of what was sent."""
    return FhirError(400, Issue(code, error, message, expression))


def not_supported(message: str | Callable[[], str], expression: str | None) -> FhirError:
    return FhirError(400, Issue("not-supported", "not_supported", message, expression))


def _text(message: str | Callable[[], str]) -> str:
    if callable(message):
        return str(message())
    return _(message) if message else ""  # a literal French message is a msgid; a translated one stays


def operation_outcome(issues: list[Issue]) -> dict:
    """The OperationOutcome resource (call within the answer's language)."""
    rendered = []
    for issue in issues:
        entry = {
            "severity": "error",
            "code": issue.code,
            "details": {"coding": [systems.coding(issue.system, issue.error)], "text": _text(issue.message)},
        }
        if issue.expression:
            entry["expression"] = [issue.expression]
        if issue.diagnostics:
            entry["diagnostics"] = issue.diagnostics
        rendered.append(entry)
    return {"resourceType": "OperationOutcome", "issue": rendered}


def instant(moment: dt.datetime) -> str:
    """UTC with milliseconds, as the JSON API writes ``checked_at`` (``2026-12-02T04:56:38.041Z``)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validated(resource: dict) -> str:
    """The resource as JSON after fhir.resources' model for its type accepted it (a defect otherwise)."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return model.model_dump_json(exclude_none=True)


def resource_response(request: HttpRequest, resource: dict, status: int = 200) -> HttpResponse:
    """A resource answer: validated, in FHIR's JSON media type; a defect in it is a bare 500, logged."""
    try:
        body = validated(resource)
    except Exception:
        log.exception("FHIR %s failed its own model", resource.get("resourceType"))
        return error_response(
            request, FhirError(500, Issue("exception", "internal", gettext_noop("erreur interne")))
        )
    response = HttpResponse(body, status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


def error_response(request: HttpRequest, error: FhirError) -> HttpResponse:
    """The OperationOutcome of an error, in the request's language (Content-Language says which)."""
    with answer_language(request) as language:
        resource = operation_outcome(error.issues)
    try:
        body = validated(resource)
    except Exception:  # an issue we built badly: still an OperationOutcome, never a traceback
        log.exception("FHIR OperationOutcome failed its own model")
        body = json.dumps(
            {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]}
        )
    response = HttpResponse(body, status=error.status, content_type=CONTENT_TYPE)
    response["Content-Language"] = language
    response["Cache-Control"] = "no-store"
    for name, value in error.headers.items():
        response[name] = value
    return response
