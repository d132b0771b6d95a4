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
from rempart.lib.metrics import OTHER
from rempart.ops.multiprocess import LockedCollector, compact

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
    return address_in_allowed_networks(client_ip(request))


def address_in_allowed_networks(address: str | None) -> bool:
    networks = allowed_networks(tuple(settings.REMPART_METRICS_ALLOW_NETS))
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in networks)


def token_allowed(authorization: str) -> bool:
    """The bearer token of an ``Authorization`` header (the job worker's listener, rempart.ops.worker_metrics)."""
    return _token_matches(authorization)


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


# Succeeded jobs are not counted: the table keeps them all, so counting them would read a table that only
# grows, at every scrape of every server; how many succeed is rempart_job_runs_total's job.
COUNTED_JOB_STATUSES = ("queued", "running", "retrying", "failed", "cancelled")


class JobsCollector:
    """The job queue by kind and status, read from the job table at scrape time.

    The table is the truth for every worker on every host (rempart.jobs.models): what waits, what runs,
    what failed for good — whichever process ran it, and even if that process is never scraped. Kinds
    are the registered ones (anything else is ``other``); every registered kind shows every status, zeros
    included, so that a series does not vanish when its count drops to nothing.

    A scrape must answer even when the jobs app cannot (not installed yet, database down): the family is
    then left out, and the rest is shown.
    """

    def describe(self):
        """What it collects, without reading the database (asked when the collector is registered)."""
        yield self._family()

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "rempart_jobs", "Jobs in the job table, by kind and status (succeeded not counted).",
            labels=["kind", "status"],
        )  # fmt: skip

    def collect(self):
        try:
            counts = job_counts()
        except (ImportError, AttributeError, DatabaseError) as exc:
            log.warning("metrics: job queue depth unavailable (%s)", type(exc).__name__)
            return
        family = self._family()
        for (kind, status), count in sorted(counts.items()):
            family.add_metric([kind, status], float(count))
        yield family


def job_counts() -> dict[tuple[str, str], int]:
    """(kind, status) -> jobs, for the statuses counted; one GROUP BY on the status index."""
    from django.db.models import Count

    from rempart.jobs.kinds import all_kinds
    from rempart.jobs.models import Job

    kinds = set(all_kinds())
    counts = {(kind, status): 0 for kind in kinds for status in COUNTED_JOB_STATUSES}
    rows = (
        Job.objects.order_by()
        .filter(status__in=COUNTED_JOB_STATUSES)
        .values("kind", "status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        if not _STATUS.fullmatch(row["status"]):
            continue
        key = (row["kind"] if row["kind"] in kinds else OTHER, row["status"])
        counts[key] = counts.get(key, 0) + row["n"]
    return counts


_jobs_collector = JobsCollector()


def exposition(*, jobs: bool = True) -> tuple[bytes, str]:
    """The Prometheus text of this process, or of every process sharing the multiprocess directory.

    ``jobs``: with the job table's counts (the web servers); a job worker's own listener leaves them out,
    so that the same table is not shown twice by every kind of process.
    """
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        registry = CollectorRegistry()
        registry.register(LockedCollector(None, path=directory))
        if jobs:
            registry.register(_jobs_collector)
    else:
        registry = _single_process_registry() if jobs else REGISTRY
    return generate_latest(registry), CONTENT_TYPE


@cache
def _single_process_registry() -> CollectorRegistry:
    """A registry of the default one (our metrics, and the process's CPU, memory and GC) and the jobs."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DefaultRegistry())
    registry.register(_jobs_collector)
    return registry


class _DefaultRegistry:
    """prometheus-client's default registry, as one collector (left as it is for everything else)."""

    def collect(self):
        return REGISTRY.collect()


# --- gunicorn (deploy/gunicorn.conf.py: ``child_exit = gunicorn_child_exit``)


def gunicorn_child_exit(server, worker) -> None:
    """A worker is gone: its live gauges go, its counters and histograms are folded into the compacted
    files (still counted, in two files rather than two per worker ever started; rempart.ops.multiprocess)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        compact(directory, dead=[worker.pid])
