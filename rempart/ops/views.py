"""The probes and /metrics. Plain functions: the outermost middleware answers them before the rest of the
stack (rempart/ops/middleware.py); these routes answer them when it is not installed, and hand an
unauthorised /metrics the site's 404."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

from rempart.ops import health
from rempart.ops.metrics import exposition, scrape_allowed

_READ = ("GET", "HEAD")


def healthz(request: HttpRequest) -> HttpResponse:
    """Alive: the process answers HTTP. Touches nothing else (no database), so a database outage never
    gets app servers restarted."""
    if request.method not in _READ:
        return HttpResponseNotAllowed(_READ)
    return _no_store(JsonResponse({"status": "ok"}))


def readyz(request: HttpRequest) -> HttpResponse:
    """Ready: 200 when every check passes, else 503 naming the failed checks (rempart.ops.health)."""
    if request.method not in _READ:
        return HttpResponseNotAllowed(_READ)
    ready, body = health.readiness()
    return _no_store(JsonResponse(body, status=200 if ready else 503))


def metrics(request: HttpRequest) -> HttpResponse:
    if not scrape_allowed(request) or request.method not in _READ:
        raise Http404
    body, content_type = exposition()
    return _no_store(HttpResponse(body, content_type=content_type))


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response
