"""Django's error handlers (400, 403, 404, 500): a page in the site's style for people, JSON under /api/.

A member of the wrong role asking for a page gets the 404 page, not a URL map: every view refuses with
``Http404`` and the demo runs without DEBUG (docs/decisions.md). The page is in the request's language
(LocaleMiddleware's choice, cookie then header) and offers a way back. The 500 page reads neither the
session nor the database (``user`` is given as None): it must render whatever failed.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import translation

from rempart.api_errors import error_response

log = logging.getLogger("rempart.errors")

FALLBACK = (
    "<!doctype html><title>Rempart</title><h1>Rempart</h1><p>{status}</p><p><a href='/'>Rempart</a></p>"
)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def render_page(request: HttpRequest, status: int, context: dict | None = None) -> HttpResponse:
    context = {"status": status, **(context or {})}
    with translation.override(translation.get_language_from_request(request)):
        try:
            html = render_to_string(f"{status}.html", context, request=request)
        except Exception:  # the error page must not fail in turn
            log.exception("the %s page could not be rendered", status)
            html = FALLBACK.format(status=status)
    response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api(request):
        return error_response(request, 400)
    return render_page(request, 400)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api(request):
        return error_response(request, 403)
    return render_page(request, 403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the 403 page that says the form expired (Django's reason is for the logs only)."""
    log.info("CSRF refusal: %s", reason)
    if is_api(request):
        return error_response(request, 403)
    return render_page(request, 403, {"csrf_failure": True})


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if is_api(request):
        return error_response(request, 404)
    return render_page(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    """A defect: the traceback stays in the logs; people get the site's page, without session or database."""
    if is_api(request):
        return error_response(request, 500)
    return render_page(request, 500, {"user": None, "messages": []})
