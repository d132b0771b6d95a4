"""Under /api/, an error that is not JSON yet becomes JSON: a client never parses an HTML page or a traceback.

django-ninja answers a method it does not route with a bare ``405 Method not allowed`` (text); Django's
resolver, a 400 from ``SuspiciousOperation``, and with DEBUG its technical 404 and 500 pages are HTML.
This middleware sits first (outermost) so it sees every one of them, and replaces the body by the API's
``{"detail", "code", "field"}`` in the request's language, keeping the status and the ``Allow`` and
``Retry-After`` headers. The traceback of a 500 is never sent (it is logged where the error happened).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from rempart.api_errors import error_response

KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().lower() == "application/json"


class ApiJsonErrorsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/api/") or response.status_code < 400 or is_json(response):
            return response
        replacement = error_response(request, response.status_code)
        for header in KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement
