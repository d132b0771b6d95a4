"""The JSON API root: bearer tokens only (never cookies); each bounded context adds its router.

Every error is JSON ``{"detail", "code", "field"}`` in the request's language (French by default, English
with ``Accept-Language: en``): bad input is a 400, never a 500, and pydantic's or django-ninja's own English
never reaches a client. The format is in docs/api-errors.md; rempart/api_errors.py has the codes, and
rempart/api_middleware.py turns what comes from outside django-ninja (a 405, Django's 404) into the same.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from rempart import outage
from rempart.accounts.api import router as accounts_router
from rempart.accounts.api_auth import refused as token_refused
from rempart.accounts.tokens import TokenRejected, confirm_if_pending
from rempart.api_errors import CODE_BY_STATUS, BadInput, answer_language
from rempart.api_openapi import add_error_responses
from rempart.api_validation import field_of, message_for
from rempart.authorizations.api import router as pec_router
from rempart.billing.api import router as billing_router
from rempart.claims.api import router as claims_router
from rempart.claims.lots import LotRejected
from rempart.gate import RefusedDomain
from rempart.ledger.api import router as ledger_router
from rempart.payments.api import router as payments_router
from rempart.rights.api import router as rights_router
from rempart.surveillance.engine import CheckRefused

log = logging.getLogger("rempart.api")


class RempartAPI(NinjaAPI):
    """The schema documents the error answers every operation can give (rempart/api_openapi.py)."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        return add_error_responses(schema)


api = RempartAPI(
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


def _error(request: HttpRequest, status: int, detail: str, code: str | None = None, **extra):
    """One error answer: ``detail`` in the request's language, a stable ``code``, ``field`` (or null)."""
    with answer_language(request) as language:
        body = {"detail": str(detail), "code": code or CODE_BY_STATUS.get(status, "error"), "field": None}
    body.update(extra)
    response = api.create_response(request, body, status=status)
    response["Content-Language"] = language
    return response


def _refused_token_first(request: HttpRequest):
    """A token accepted without its standing read (the rights check, tokens.authenticate_token) is judged before
    a bad-input answer: a token revoked in the last second gets its refusal, as it would have at once."""
    token = getattr(request, "api_token", None)
    if token is None:
        return None
    try:
        confirm_if_pending(token.pk)
    except TokenRejected as exc:
        return token_refused_by_the_gate(request, exc)
    return None


@api.exception_handler(ValidationError)
def bad_input(request: HttpRequest, exc: ValidationError):
    """pydantic's errors, said again in the request's language; the first names the field at fault."""
    if (refusal := _refused_token_first(request)) is not None:
        return refusal
    with answer_language(request):
        first = exc.errors[0] if exc.errors else {}
        if first.get("type") == "json_invalid":
            return _error(request, 400, _("corps JSON illisible"), "malformed_body")
        field = field_of(first)
        message = message_for(first)
        detail = f"{field} : {message}" if field else message
    return _error(request, 400, detail, "invalid", field=field)


@api.exception_handler(BadInput)
def bad_field(request: HttpRequest, exc: BadInput):
    if (refusal := _refused_token_first(request)) is not None:
        return refusal
    extra = {"field": exc.field}
    if getattr(exc, "errors", None):
        extra["errors"] = exc.errors
    with answer_language(request):
        message = _(exc.message) if exc.message else ""  # a literal French message is a msgid
        detail = f"{exc.field} : {message}"
    return _error(request, 400, detail, "invalid", **extra)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError):
    with answer_language(request):
        detail = _("jeton d'API manquant ou invalide (Authorization: Bearer …)")
    return _error(request, 401, detail, "unauthenticated")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError):
    """An HttpError's message is a French msgid (or already translated): said in the request's language."""
    with answer_language(request):
        detail = str(exc)
        code = getattr(exc, "code", None)
        if detail.startswith("Cannot parse request body"):  # django-ninja's own, with the parser's English
            detail, code = _("corps JSON illisible"), "malformed_body"
        elif detail:
            detail = _(detail)  # a literal French message is a msgid; an already translated one stays
    return _error(request, exc.status_code, detail, code)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404):
    with answer_language(request):
        detail = _("ressource introuvable")
    return _error(request, 404, detail, "not_found")


@api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig):
    """Django refused to read a body above DATA_UPLOAD_MAX_MEMORY_SIZE (no Content-Length to refuse it by)."""
    with answer_language(request):
        detail = _("corps de requête trop volumineux")
    return _error(request, 413, detail, "too_large")


@api.exception_handler(CheckRefused)
def refused(request: HttpRequest, exc: CheckRefused):
    """Surveillance or a kill switch refused the call: a stable ``code``, and when to retry if that helps."""
    response = _error(request, exc.status, exc.message, exc.code)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(TokenRejected)
def token_refused_by_the_gate(request: HttpRequest, exc: TokenRejected):
    """A token whose standing the rights check read with its lookup (tokens.authenticate_token) and found
    revoked, expired or suspended: the same answer and security event as a refusal by TokenAuth."""
    return http_error(request, token_refused(request, exc, None))


@api.exception_handler(RefusedDomain)
def refused_domain(request: HttpRequest, exc: RefusedDomain):
    """A care domain the organisation does not practise: refused before any lookup, and recorded."""
    with answer_language(request):
        detail = _(
            "votre organisation n'est pas enregistrée pour le domaine %(domain)s : rien n'a été consulté"
        ) % {"domain": exc.domain}
    return _error(request, 403, detail, "domain_not_allowed", field="domain", reference=exc.reference)


@api.exception_handler(outage.OperationalError)
@api.exception_handler(outage.InterfaceError)
@api.exception_handler(outage.RedisConnectionError)
@api.exception_handler(outage.RedisTimeoutError)
def database_unavailable(request: HttpRequest, exc: Exception):
    """The database or Redis is down (or the connection was lost): 503 with Retry-After, whatever the endpoint."""
    with answer_language(request):
        return outage.api_response(request, exc)


@api.exception_handler(LotRejected)
def lot_rejected(request: HttpRequest, exc: LotRejected):
    """A lot wrong as a whole (the negative ARL): nothing was changed; a stable code, and the line when known."""
    return _error(request, 400, exc.message, exc.code, line=exc.line)


@api.exception_handler(Exception)
def internal_error(request: HttpRequest, exc: Exception):
    """A defect: logged (redacted) with its traceback for us, a bare 500 for the client, even with DEBUG."""
    log.exception("API %s %s failed", request.method, request.path)
    with answer_language(request):
        detail = _("erreur interne")
    return _error(request, 500, detail, "internal")
