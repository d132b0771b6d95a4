"""The JSON API root: bearer tokens only (never cookies); each bounded context adds its router.

Every error is JSON with a ``detail`` (and, for bad input, the ``field``): bad input is a 400, never a 500.
"""

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from rempart import outage
from rempart.accounts.api import router as accounts_router
from rempart.api_errors import BadInput
from rempart.authorizations.api import router as pec_router
from rempart.billing.api import router as billing_router
from rempart.claims.api import router as claims_router
from rempart.claims.lots import LotRejected
from rempart.gate import RefusedDomain
from rempart.ledger.api import router as ledger_router
from rempart.payments.api import router as payments_router
from rempart.rights.api import router as rights_router
from rempart.surveillance.engine import CheckRefused

api = NinjaAPI(
    title="Rempart API",
    version="1",
    description=(
        "API de tiers payant pour les logiciels des professionnels de santé. "
        "Authentification : `Authorization: Bearer <jeton>` (créé par le titulaire de l'organisation, "
        "avec les autorisations nécessaires). Les cookies ne sont jamais acceptés."
    ),
    docs_url="/docs",
)
api.add_router("/", accounts_router)
api.add_router("/", rights_router)
api.add_router("/", pec_router)
api.add_router("/", claims_router)
api.add_router("/", ledger_router)
api.add_router("/", payments_router)
api.add_router("/", billing_router)


@api.exception_handler(ValidationError)
def bad_input(request: HttpRequest, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    location = [str(part) for part in first.get("loc", []) if part not in ("body", "payload")]
    field = ".".join(location) or None
    message = first.get("msg", "requête invalide")
    if first.get("type") == "json_invalid" or field is None and "JSON" in message:
        return api.create_response(request, {"detail": "corps JSON illisible", "field": None}, status=400)
    return api.create_response(
        request, {"detail": f"{field or 'requête'} : {message}", "field": field}, status=400
    )


@api.exception_handler(BadInput)
def bad_field(request: HttpRequest, exc: BadInput):
    body = {"detail": str(exc), "field": exc.field}
    if getattr(exc, "errors", None):
        body["errors"] = exc.errors
    return api.create_response(request, body, status=400)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError):
    return api.create_response(
        request, {"detail": "jeton d'API manquant ou invalide (Authorization: Bearer …)"}, status=401
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    detail = str(exc)
    if detail.startswith("Cannot parse request body"):
        detail = "corps JSON illisible"
    return api.create_response(request, {"detail": detail, "field": None}, status=exc.status_code)


@api.exception_handler(CheckRefused)
def refused(request: HttpRequest, exc: CheckRefused):
    """Surveillance or a kill switch refused the call: a stable ``code``, and when to retry if that helps."""
    response = api.create_response(
        request, {"detail": exc.message, "code": exc.code, "field": None}, status=exc.status
    )
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(RefusedDomain)
def refused_domain(request: HttpRequest, exc: RefusedDomain):
    """A care domain the organisation does not practise: refused before any lookup, and recorded."""
    return api.create_response(
        request,
        {
            "detail": f"votre organisation n'est pas enregistrée pour le domaine {exc.domain} : rien n'a été consulté",
            "code": "domain_not_allowed",
            "field": "domain",
            "reference": exc.reference,
        },
        status=403,
    )


@api.exception_handler(outage.OperationalError)
@api.exception_handler(outage.InterfaceError)
def database_unavailable(request: HttpRequest, exc: Exception):
    """The database is down (or the connection was lost): 503 with Retry-After, whatever the endpoint."""
    return outage.api_response(request, exc)


@api.exception_handler(LotRejected)
def lot_rejected(request: HttpRequest, exc: LotRejected):
    """A lot wrong as a whole (the negative ARL): nothing was changed; a stable code, and the line when known."""
    return api.create_response(
        request, {"detail": exc.message, "code": exc.code, "field": None, "line": exc.line}, status=400
    )
