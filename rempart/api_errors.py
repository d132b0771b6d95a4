"""Every API error is ``{"detail": …, "code": …}`` (plus ``field`` and a few extras), in one language.

``detail`` is for people (French by default, English with ``Accept-Language: en``); ``code`` is stable for
programs and never translated. The language is chosen as Django's LocaleMiddleware does
(``get_language_from_request``), so an answer that is built before that middleware ran (a body too
large, a wrong content type) or after (a 405 from django-ninja) reads in the same language as the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, JsonResponse
from django.utils import translation
from django.utils.translation import gettext as _
from ninja.errors import HttpError

# The code of an error that carries none of its own, by HTTP status (docs/api-errors.md lists them).
CODE_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ApiError(HttpError):
    """An HttpError with its own stable ``code``; ``message`` is a French msgid or already translated."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


class BadInput(Exception):
    """A field at fault: rendered as a 400 ``{"detail", "code": "invalid", "field"}``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} : {message}")
        self.field = field
        self.message = message


class BadLines(BadInput):
    """Several problems, each with its line, field and message (a quote with bad lines)."""

    def __init__(self, field: str, message: str, errors: list[dict]) -> None:
        super().__init__(field, message)
        self.errors = errors


def request_language(request: HttpRequest) -> str:
    """The language of this request's answer: the same choice as LocaleMiddleware's (cookie, then header)."""
    return translation.get_language_from_request(request)


@contextmanager
def answer_language(request: HttpRequest) -> Iterator[str]:
    language = request_language(request)
    with translation.override(language):
        yield language


def default_detail(status: int) -> str:
    """A sentence for an error that brings none (a 405 from django-ninja, a 404 from Django's resolver…)."""
    messages = {
        400: _("requête invalide"),
        401: _("jeton d'API manquant ou invalide (Authorization: Bearer …)"),
        403: _("accès refusé"),
        404: _("ressource introuvable"),
        405: _("méthode non permise pour cette adresse"),
        409: _("conflit avec l'état de la ressource"),
        413: _("corps de requête trop volumineux"),
        415: _("type de contenu non pris en charge"),
        429: _("trop de requêtes : réessayez plus tard"),
        503: _("service momentanément indisponible : réessayez plus tard"),
    }
    return messages.get(status, _("erreur interne"))


def error_response(
    request: HttpRequest,
    status: int,
    detail: str | Callable[[], str] | None = None,
    code: str | None = None,
    **extra,
) -> JsonResponse:
    """A JSON error outside django-ninja (middleware, URL resolver, handlers): same body, same language.

    ``detail`` may be a function that builds the sentence: it is called here, in the request's language
    (before LocaleMiddleware has run, gettext would still speak the previous request's).
    """
    with answer_language(request) as language:
        if callable(detail):
            detail = detail()
        body = {
            "detail": str(detail) if detail is not None else default_detail(status),
            "code": code or CODE_BY_STATUS.get(status, "error"),
        }
    body.update(extra)
    response = JsonResponse(body, status=status)
    response["Content-Language"] = language
    return response
