"""/metrics: who may read it, what it shows, and the gunicorn hook of multiprocess mode.

Not public. A scrape is allowed with ``Authorization: Bearer <REMPART_METRICS_TOKEN>`` (compared in constant
time; an empty setting allows no token) or from a client address inside ``REMPART_METRICS_ALLOW_NETS``, the
address being the one every security check uses (rempart.lib.http.client_ip: ``X-Forwarded-For`` is read
only behind ``REMPART_TRUSTED_PROXY_COUNT`` proxies). Anyone else gets the site's 404.

Under gunicorn with several workers, each worker has its own counters: with ``PROMETHEUS_MULTIPROC_DIR`` set
in the environment before the processes start, prometheus-client keeps them in files of that directory and
a scrape adds them up (docs/observability.md). Metric objects are defined in rempart.lib.metrics.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
from functools import cache

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from rempart.lib.http import client_ip

log = logging.getLogger("rempart.ops")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_STATUS = re.compile(r"[a-z_]{1,20}")
# The classic text format, which every Prometheus reads (prometheus-client's newest announces 1.0.0); our
# names and labels need none of 1.0.0's escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# --- who may scrape


def scrape_allowed(request: HttpRequest) -> bool:
    return _token_matches(request.META.get("HTTP_AUTHORIZATION", "")) or _address_allowed(request)


def _token_matches(header: str) -> bool:
    expected = settings.REMPART_METRICS_TOKEN
    scheme, _space, presented = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def _address_allowed(request: HttpRequest) -> bool:
    networks = allowed_networks(tuple(settings.REMPART_METRICS_ALLOW_NETS))
    if not networks:
        return False
    address = client_ip(request)
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip.version == net.version and ip in net for net in networks)


@cache
def allowed_networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of the setting; an entry that is not a network is logged and allows nothing."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.warning("REMPART_METRICS_ALLOW_NETS: %r is not a network; ignored", entry[:60])
    return tuple(networks)


def settings_problems() -> list[str]:
    """What is wrong with the metrics settings, for the deployment checks (empty: nothing)."""
    problems = []
    token = settings.REMPART_METRICS_TOKEN
    if token and len(token) < 32:
        problems.append("REMPART_METRICS_TOKEN is shorter than 32 characters")
    for entry in settings.REMPART_METRICS_ALLOW_NETS:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            problems.append(f"REMPART_METRICS_ALLOW_NETS: {entry[:60]!r} is not a network")
    directory = os.environ.get(MULTIPROC_ENV)
    if directory and not os.path.isdir(directory):
        problems.append(f"{MULTIPROC_ENV}: {directory} is not a directory")
    return problems


# --- what a scrape shows


class JobsCollector:
    """The job queue's depth by status, read from the database at scrape time (rempart.jobs.stats).

    A scrape must answer even when the jobs app cannot (not installed yet, database down): the family is
    then left out, and the rest is shown.
    """

    def describe(self):
        """What it collects, without reading the database (asked when the collector is registered)."""
        yield self._family()

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("rempart_jobs", "Jobs in the queue table, by status.", labels=["status"])

    def collect(self):
        try:
            from rempart.jobs.stats import snapshot

            counts = snapshot()
        except (ImportError, AttributeError, DatabaseError) as exc:
            log.warning("metrics: job queue depth unavailable (%s)", type(exc).__name__)
            return
        family = self._family()
        for status, count in sorted(counts.items()):
            if isinstance(status, str) and _STATUS.fullmatch(status):
                family.add_metric([status], float(count))
        yield family


_jobs_collector = JobsCollector()


def exposition() -> tuple[bytes, str]:
    """The Prometheus text of this process, or of every process sharing the multiprocess directory."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_jobs_collector)
    else:
        registry = _single_process_registry()
    return generate_latest(registry), CONTENT_TYPE


@cache
def _single_process_registry() -> CollectorRegistry:
    """The default registry (our metrics, and the process's CPU, memory and GC), with the jobs collector."""
    REGISTRY.register(_jobs_collector)
    return REGISTRY


# --- gunicorn (deploy/gunicorn.conf.py: ``child_exit = gunicorn_child_exit``)


def gunicorn_child_exit(server, worker) -> None:
    """A worker is gone: drop its live gauges from the multiprocess directory (its counters stay counted)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, directory)
