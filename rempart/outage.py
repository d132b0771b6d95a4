"""The database (or Redis) is down: every request gets a 503 that says so, never a 500 with a traceback.

The API answers ``{"detail": …, "code": "unavailable"}`` with ``Retry-After``; people get a page in the
site's style, in their language. Installed as Django's ``handler500`` (rempart/urls.py), which sees
exceptions raised anywhere, middleware included, and as the API's handler for database errors
(rempart/api.py). Nothing is counted by a request that fails this way: see docs/security.md, "Database
unavailable".
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("rempart.outage")

RETRY_AFTER_SECONDS = 30
# Connection refused or lost, server shutting down, too many connections, a lock or serialisation
# timeout: transient, worth retrying. A programming or integrity error stays a 500. Redis (surveillance
# counters, cache) unreachable, timing out or still loading its data after a restart (BusyLoadingError is a
# ConnectionError) is the same kind of outage: the request fails closed, with the same 503.
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)


def is_unavailable(exc: BaseException | None) -> bool:
    return isinstance(exc, UNAVAILABLE_ERRORS)


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def api_response(request: HttpRequest, exc: BaseException | None = None) -> HttpResponse:
    backend = "Redis" if isinstance(exc, RedisConnectionError | RedisTimeoutError) else "database"
    log.warning(
        "%s unavailable: %s %s answered 503 (%s)", backend, request.method, request.path, type(exc).__name__
    )
    with translation.override(translation.get_language_from_request(request)):
        body = {
            "detail": _("service momentanément indisponible : réessayez plus tard"),
            "code": "unavailable",
        }
    return _no_store(JsonResponse(body, status=503))


def page_response(request: HttpRequest) -> HttpResponse:
    with translation.override(translation.get_language_from_request(request)):
        try:
            # user and messages are given, so that nothing in the page reads the session or the database
            html = render_to_string(
                "503.html",
                {"user": None, "messages": [], "retry_after": RETRY_AFTER_SECONDS},
                request=request,
            )
        except Exception:  # the page must not fail in turn
            log.exception("the 503 page could not be rendered")
            html = "<!doctype html><title>Rempart</title><h1>Service momentanément indisponible</h1>"
    return _no_store(HttpResponse(html, status=503, content_type="text/html; charset=utf-8"))


def unavailable_response(request: HttpRequest, exc: BaseException | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_response(request, exc)
    return page_response(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage is a 503; anything else is the 500 page (JSON for the API)."""
    exc = sys.exc_info()[1]
    if is_unavailable(exc):
        return unavailable_response(request, exc)
    from rempart import error_pages

    return error_pages.server_error(request)


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """Django's ``handler404``: the API answers JSON for every error, an unknown path under it included."""
    from rempart import error_pages

    return error_pages.page_not_found(request, exception)
