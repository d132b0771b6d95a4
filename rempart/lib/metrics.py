"""Every Prometheus metric Rempart records, defined once, importable from any layer (the gate and below).

Recording is a counter increment or a histogram observation (a microsecond or two, no I/O, no lock held
beyond prometheus-client's own per-value one). Label values are always from a closed set named in code —
a channel, a purpose, a route pattern, a status class — never from what a client sent: a label value is a
time series, and one per NIR, token or raw path would be both a leak and a memory bomb.

With ``PROMETHEUS_MULTIPROC_DIR`` set before the process starts (gunicorn with several workers), values live
in per-process files that /metrics adds up (rempart/ops/metrics.py, docs/observability.md).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter, Histogram

# Seconds. The rights check answers in a few milliseconds; a slow page or an import page takes seconds.
_REQUEST_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_APPEND_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0)
_JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

CHECKS = Counter(
    "rempart_checks",
    "Answers recorded in the disclosure ledger (rights checks, PECs, invoices, exposure lists).",
    ["channel", "purpose", "outcome"],
)
SURVEILLANCE_REFUSALS = Counter(
    "rempart_surveillance_refusals",
    "Checks refused by surveillance before any lookup, by the step that refused them.",
    ["step"],
)
REQUEST_SECONDS = Histogram(
    "rempart_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern (never the raw path), method and status class.",
    ["route", "method", "status"],
    buckets=_REQUEST_BUCKETS,
)
LEDGER_APPEND_SECONDS = Histogram(
    "rempart_ledger_append_duration_seconds",
    "Time to append ledger rows: one row (one), or a batch of one actor's rows in one call (many).",
    ["kind"],
    buckets=_APPEND_BUCKETS,
)
LEDGER_ROWS = Counter("rempart_ledger_rows_appended", "Ledger rows appended, by way of appending.", ["kind"])
IMPORT_ROWS = Counter(
    "rempart_import_rows",
    "Rows of committed imports (rights files, invoice lots), accepted or rejected.",
    ["kind", "outcome"],
)
JOB_RUNS = Counter("rempart_job_runs", "Job attempts finished, by job kind and status.", ["kind", "status"])
JOB_FAILURES = Counter("rempart_job_failures", "Jobs that failed for good, by job kind.", ["kind"])
JOB_SECONDS = Histogram(
    "rempart_job_duration_seconds", "Time a job attempt ran, by job kind.", ["kind"], buckets=_JOB_BUCKETS
)

# --- closed sets of label values

SURVEILLANCE_STEPS = frozenset(
    {"suspended", "switched_off", "rate_limited", "step_up_required", "session_context_changed"}
)
# The ledger's channels and outcomes (rempart.ledger.models.Disclosure; a test keeps the two in step).
CHANNELS = frozenset({"portal", "api", "console", "cli"})
OUTCOMES = frozenset({"covered", "not_covered", "no_match", "listed", "rejected", "refused"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# What an attempt ends as (rempart.jobs.runner): a job's statuses, plus "superseded" (a stale attempt whose
# outcome was not written: another attempt owns the job) and "unrecorded" (the database stayed away).
JOB_STATUSES = frozenset(
    {"succeeded", "failed", "retrying", "cancelled", "running", "queued", "superseded", "unrecorded"}
)
OTHER = "other"
_NAME = re.compile(r"[a-z][a-z0-9_.]{0,79}")
MAX_JOB_KINDS = 100
MAX_PURPOSES = 50


class BoundedNames:
    """Names accepted as label values as they come (job kinds), up to ``limit``; then ``other``.

    Job kinds are registered in code, so the cap is never reached in practice: it is the guarantee that a
    bug or a hostile caller cannot grow the number of series without bound.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str:
        if name in self._seen:
            return name
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            return OTHER
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(name)
        return name


def is_plain_name(name: str) -> bool:
    """A dotted lower-case name (a job kind, a purpose): safe in a label or a log line."""
    return bool(_NAME.fullmatch(name))


job_kind_label = BoundedNames(MAX_JOB_KINDS)
purpose_label = BoundedNames(MAX_PURPOSES)


def method_label(method: str | None) -> str:
    return method if method in METHODS else OTHER


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else OTHER


# --- recording helpers called from the apps


def _answer_labels(channel: str, purpose: str, outcome: str) -> tuple[str, str, str]:
    return (
        channel if channel in CHANNELS else OTHER,
        purpose_label(purpose),
        outcome if outcome in OUTCOMES else OTHER,
    )


def record_answer(channel: str, purpose: str, outcome: str) -> None:
    """Count one ledger answer (rempart.ledger.recording)."""
    CHECKS.labels(*_answer_labels(channel, purpose, outcome)).inc()


def record_answers(channel: str, purpose: str, outcomes: Iterable[str]) -> None:
    """Count a chunk's ledger answers of one actor and purpose: one increment per outcome."""
    for outcome, count in Tally(outcomes).items():
        CHECKS.labels(*_answer_labels(channel, purpose, outcome)).inc(count)


def record_surveillance_refusal(step: str) -> None:
    SURVEILLANCE_REFUSALS.labels(step if step in SURVEILLANCE_STEPS else OTHER).inc()


def record_import(kind: str, accepted: int, rejected: int) -> None:
    """Rows of one committed import; ``rate()`` over the counter is the rows per second."""
    if accepted:
        IMPORT_ROWS.labels(kind, "accepted").inc(accepted)
    if rejected:
        IMPORT_ROWS.labels(kind, "rejected").inc(rejected)


def ledger_appended(kind: str, seconds: float, rows: int = 1) -> None:
    """An append measured by its caller (rempart.ledger.fast_append), as :func:`timed_ledger_append` does."""
    LEDGER_APPEND_SECONDS.labels(kind).observe(seconds)
    LEDGER_ROWS.labels(kind).inc(rows)


def timed_ledger_append(kind: str):
    """Decorate a ledger append function (rempart.ledger.chain): its duration and the rows it appended.

    Only appends that return are measured: one that raises is rolled back with the answer's transaction.
    """
    seconds, rows = LEDGER_APPEND_SECONDS.labels(kind), LEDGER_ROWS.labels(kind)

    def decorate(append):
        @functools.wraps(append)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            result = append(*args, **kwargs)
            seconds.observe(time.perf_counter() - started)
            rows.inc(len(result) if isinstance(result, list) else 1)
            return result

        return timed

    return decorate
