"""The job worker's own /metrics: what its jobs counted (job runs and failures, import rows, ledger appends).

Those counts are made where the job runs — in ``rempart worker``, or, with RQ, in the process it forks for
each job — and no web server sees them. With ``REMPART_WORKER_METRICS_BIND`` set (``10.0.3.7:9108``), the
worker answers ``GET /metrics`` there, on a thread of its own, under the same rules as the web servers'
(rempart.ops.metrics): the bearer ``REMPART_METRICS_TOKEN`` or an address in ``REMPART_METRICS_ALLOW_NETS``
(the peer's address as it is: a worker has no proxy in front), else 404. The job table's counts are not
repeated here; the web servers show them.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings

from rempart.ops import metrics
from rempart.ops.multiprocess import compact

log = logging.getLogger("rempart.ops")
REQUEST_TIMEOUT_SECONDS = 5


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per connection (a slow client does not hold the others up), never outliving the worker."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that timed out or hung up: not worth socketserver's traceback on stderr."""
        log.debug("worker metrics: a connection ended badly")


class _ServerV6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_SECONDS  # a client that sends nothing does not hold the listener

    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        """No access line: a scrape every 15 s is not worth one."""


def application(environ, start_response):
    """GET or HEAD /metrics for an authorised scraper; 404 for anything else, without saying more."""
    allowed = environ.get("PATH_INFO") == "/metrics" and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
    allowed = allowed and (
        metrics.token_allowed(environ.get("HTTP_AUTHORIZATION", ""))
        or metrics.address_in_allowed_networks(environ.get("REMOTE_ADDR"))
    )
    if not allowed:
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Not Found\n"]
    directory = os.environ.get(metrics.MULTIPROC_ENV)
    if directory:
        compact(directory)  # the processes RQ forked for finished jobs: folded, so the directory stays small
    body, content_type = metrics.exposition(jobs=False)
    start_response(
        "200 OK",
        [("Content-Type", content_type), ("Cache-Control", "no-store"), ("Content-Length", str(len(body)))],
    )
    return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9108`` for IPv6) into its parts; ValueError if it is not one."""
    host, sep, port = bind.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port: {bind[:60]!r}")
    return host.strip("[]"), int(port)


def start(bind: str) -> WSGIServer:
    """Listen on ``bind`` and answer scrapes on a daemon thread (it ends with the worker)."""
    host, port = parse_bind(bind)
    server_class = _ServerV6 if ":" in host else _Server
    server = make_server(host, port, application, server_class=server_class, handler_class=_Handler)
    thread = threading.Thread(target=server.serve_forever, name="rempart-worker-metrics", daemon=True)
    thread.start()
    return server


def start_from_settings() -> WSGIServer | None:
    """Called by ``rempart worker``: the listener if ``REMPART_WORKER_METRICS_BIND`` is set, else nothing.

    A bad setting or a port in use is logged, not fatal: the worker's jobs matter more than its metrics.
    """
    bind = getattr(settings, "REMPART_WORKER_METRICS_BIND", "")
    if not bind:
        return None
    if getattr(settings, "REMPART_TASKS_BACKEND", "") == "rq" and not os.environ.get(metrics.MULTIPROC_ENV):
        log.warning(
            "worker metrics: RQ runs each job in a forked process whose counts are lost without %s",
            metrics.MULTIPROC_ENV,
        )
    try:
        server = start(bind)
    except (OSError, ValueError) as exc:
        log.warning("worker metrics not served on %s (%s)", bind[:60], type(exc).__name__)
        return None
    log.info("worker metrics on %s:%s/metrics", *server.server_address[:2])
    return server
