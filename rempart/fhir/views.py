"""The FHIR R4 endpoints under /fhir/r4/: plain views, Bearer tokens only, every answer FHIR JSON.

Each request goes: method (405) → body size and media type (413/415, in the operation) → token (401/403,
the JSON API's TokenAuth: same scopes, same refusal events) → the Bundle (400) → the same service as the
JSON API → the resource. Whatever goes wrong below becomes an OperationOutcome here: the gate's and
surveillance's refusals (403, 429, 503 with Retry-After), a database outage (503), a defect (a bare 500).
Session cookies are never read: CSRF does not apply to a request a cookie cannot authorise.
"""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.csrf import csrf_exempt

from rempart import outage
from rempart.accounts.api_auth import TokenAuth
from rempart.api_errors import ApiError
from rempart.fhir import capability, codesystems, eligibility, invoice, preauth
from rempart.fhir.intake import bundle, read_json, scan
from rempart.fhir.outcome import FhirError, Issue, error_response, resource_response
from rempart.gate import RefusedDomain
from rempart.surveillance.engine import CheckRefused

log = logging.getLogger("rempart.fhir")

_REFUSAL_TYPES = {"rate_limited": "throttled", "switched_off": "transient", "suspended": "suspended"}


def fhir_endpoint(*methods: str):
    """A FHIR view: the methods it takes (405 otherwise), and every failure as an OperationOutcome."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                error = FhirError(
                    405,
                    Issue(
                        "not-supported",
                        "method_not_allowed",
                        gettext_noop("méthode non permise pour cette adresse"),
                    ),
                    {"Allow": ", ".join(methods)},
                )
                return error_response(request, error)
            try:
                return view(request, *args, **kwargs)
            except FhirError as error:
                return error_response(request, error)
            except (
                ApiError
            ) as exc:  # the token: missing, invalid, revoked, expired, suspended, without the scope
                issue_type = "login" if exc.status_code == 401 else "forbidden"
                headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
                return error_response(
                    request, FhirError(exc.status_code, Issue(issue_type, exc.code, str(exc)), headers)
                )
            except RefusedDomain as exc:
                return error_response(request, _refused_domain(exc))
            except CheckRefused as exc:
                headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
                issue = Issue(_REFUSAL_TYPES.get(exc.code, "forbidden"), exc.code, exc.message)
                return error_response(request, FhirError(exc.status, issue, headers))
            except outage.UNAVAILABLE_ERRORS as exc:
                log.warning("database unavailable: %s %s answered 503 (%s)", request.method, request.path,
                            type(exc).__name__)  # fmt: skip
                issue = Issue(
                    "transient",
                    "unavailable",
                    gettext_noop("service momentanément indisponible : réessayez plus tard"),
                )
                return error_response(
                    request, FhirError(503, issue, {"Retry-After": str(outage.RETRY_AFTER_SECONDS)})
                )
            except Exception:
                log.exception("FHIR %s %s failed", request.method, request.path)
                return error_response(
                    request, FhirError(500, Issue("exception", "internal", gettext_noop("erreur interne")))
                )

        return wrapped

    return decorate


def _refused_domain(exc: RefusedDomain) -> FhirError:
    """A domain the organisation does not practise: refused before any lookup and recorded (its reference)."""

    def sentence() -> str:
        return _(
            "votre organisation n'est pas enregistrée pour le domaine %(domain)s : rien n'a été consulté"
        ) % {"domain": exc.domain}

    return FhirError(403, Issue("forbidden", "domain_not_allowed", sentence, diagnostics=exc.reference))


def _token(request: HttpRequest, scope: str | None):
    """The live API token of a ``Bearer`` header (the JSON API's own check and refusal events)."""
    scheme, _space, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(
            401, "unauthenticated", _("jeton d'API manquant ou invalide (Authorization: Bearer …)")
        )
    return TokenAuth(scope).authenticate(request, raw.strip())


@fhir_endpoint("GET", "HEAD")
def metadata(request: HttpRequest) -> HttpResponse:
    return resource_response(request, capability.capability_statement())


@fhir_endpoint("GET", "HEAD")
def code_system(request: HttpRequest, system_id: str) -> HttpResponse:
    resource = codesystems.code_system(system_id)
    if resource is None:
        raise FhirError(404, Issue("not-found", "not_found", gettext_noop("ressource introuvable")))
    return resource_response(request, resource)


@fhir_endpoint("GET", "HEAD")
def operation_definition(request: HttpRequest, name: str) -> HttpResponse:
    resource = capability.operation_definition(name)
    if resource is None:
        raise FhirError(404, Issue("not-found", "not_found", gettext_noop("ressource introuvable")))
    return resource_response(request, resource)


@fhir_endpoint("POST")
def eligibility_submit(request: HttpRequest) -> HttpResponse:
    _token(request, eligibility.SCOPE)
    return resource_response(request, eligibility.submit(request))


@fhir_endpoint("POST")
def claim_submit(request: HttpRequest) -> HttpResponse:
    """A prise en charge or an invoice, by the Claim's ``use``; its scope is checked once the use is read."""
    _token(request, None)  # a live token first, as for every endpoint: 401/403 before the body is judged
    data = read_json(request, settings.REMPART_API_MAX_CLAIM_BYTES)
    use = _use(data)
    scan(data, invoice.EXTENSIONS if use == invoice.USE else None)
    operation = {preauth.USE: preauth, invoice.USE: invoice}.get(use)
    if operation is None:
        raise FhirError(
            400,
            Issue("not-supported", "not_supported", gettext_noop("use attendu : preauthorization (prise en charge) ou claim (facture)"),
                  "Bundle.entry[0].resource.use"),
        )  # fmt: skip
    _token(request, operation.SCOPE)
    others = (
        ("Patient", "Coverage", "VisionPrescription", "DeviceRequest")
        if use == preauth.USE
        else ("Patient", "Coverage")
    )
    entries = bundle(data, "Claim", others)
    return resource_response(request, operation.submit(request, entries))


def _use(data: object) -> str | None:
    """The Claim's ``use``, read before the Bundle is judged (it decides the scope and the extensions allowed)."""
    try:
        use = data["entry"][0]["resource"]["use"]
    except (KeyError, IndexError, TypeError):
        return None
    return use if isinstance(use, str) else None


@fhir_endpoint("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
def unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Anything else under /fhir/: the same OperationOutcome 404, never a page."""
    raise FhirError(404, Issue("not-found", "not_found", gettext_noop("ressource introuvable")))
