"""The outermost middleware: a request id, the request's latency metric and its log line, and the probes.

It sits first in ``MIDDLEWARE`` so that every response carries ``X-Request-ID`` — API JSON errors, 404s and
500s included — and every request is timed as the client sees it.

``/healthz``, ``/readyz`` and an authorised ``/metrics`` are answered here, before the rest of the stack:
a load balancer or Prometheus calls an app server by its address over plain HTTP, so host validation and
the HTTPS redirect must not apply, and a probe must not open a session, read a user or hit the second-factor
check. A ``/metrics`` request that is not authorised goes on down the stack and gets the site's 404, the
same answer as any unknown path (rempart/ops/views.py).
"""

from __future__ import annotations

import time

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.utils.functional import empty

from rempart.lib import metrics
from rempart.ops import request_log, views
from rempart.ops.metrics import scrape_allowed

_PROBES = {"/healthz": views.healthz, "/readyz": views.readyz}
_QUIET = ("healthz", "readyz", "metrics")
_CHANNELS = (("/api/", "api"), ("/fhir/", "fhir"), ("/operateur/", "console"), ("/admin/", "console"))


class RequestObservationMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = (
            request_log.accepted_request_id(request.META.get("HTTP_X_REQUEST_ID"))
            or request_log.new_request_id()
        )
        request.request_id = request_id
        # Kept until the response is closed (request_finished): Django logs a 4xx/5xx after the middleware
        # returns, and that line must carry the id too.
        request_log.bind_request_id(request_id)
        route, response = self._answer(request)
        response[request_log.REQUEST_ID_HEADER] = request_id
        duration = time.perf_counter() - started
        method = metrics.method_label(request.method)
        metrics.REQUEST_SECONDS.labels(route, method, metrics.status_class(response.status_code)).observe(
            duration
        )
        actor_kind, actor_id = _actor(request)
        request_log.log_request(
            method=method,
            route=route,
            status=response.status_code,
            duration_ms=duration * 1000,
            channel=_channel(request.path, route),
            actor_kind=actor_kind,
            actor_id=actor_id,
            quiet=route in _QUIET,
        )
        return response

    def _answer(self, request: HttpRequest) -> tuple[str, HttpResponse]:
        """(route label, response): a probe answered here, or the rest of the stack."""
        path = request.path_info
        probe = _PROBES.get(path)
        if probe is not None:
            return path[1:], probe(request)
        if path == "/metrics" and request.method in ("GET", "HEAD") and scrape_allowed(request):
            return "metrics", views.metrics(request)
        response = self.get_response(request)
        return _route(request), response


def _forget_request_id(**kwargs) -> None:
    request_log.bind_request_id(None)


request_finished.connect(_forget_request_id, dispatch_uid="rempart.ops.forget_request_id")


def _route(request: HttpRequest) -> str:
    """The URL pattern that answered (``api/v1/payments/<reference>``), never the path itself."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.route or match.view_name or "unnamed"


def _channel(path: str, route: str) -> str:
    if route in ("healthz", "readyz", "metrics"):
        return "ops"
    for prefix, channel in _CHANNELS:
        if path.startswith(prefix):
            return channel
    return "portal"


def _actor(request: HttpRequest) -> tuple[str, int | None]:
    """Who asked, as an internal id: the API token, else the user — only if the request already read it
    (a log line must not cost a session and a user query)."""
    token = getattr(request, "api_token", None)
    if token is not None:
        return "token", token.pk
    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", user)
    if user is None or wrapped is empty:
        return "anonymous", None
    if getattr(user, "is_authenticated", False):
        return "user", user.pk
    return "anonymous", None
