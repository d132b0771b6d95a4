"""Structured logs: one JSON line per request and per job, every record carrying its request id.

The request id ties the lines of one request together (the load balancer's, the app's, a job enqueued by
it) and is handed back in the ``X-Request-ID`` response header so that a support call can name it. An
incoming id is kept only if it is plainly an id (a strict pattern, and nothing a NIR or IBAN filter would
mask): it is copied into every log line and header, so it must not be a way to write into them.

Lines carry internal ids only (a user's or token's primary key), never an email, a name, a NIR or an IBAN;
the JSON line is passed through :func:`rempart.lib.redact.redact` once more as it is written, after the
redaction every record already gets when it is created.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid

from rempart.lib import metrics
from rempart.lib.redact import redact

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("rempart_request_id", default=None)

request_log = logging.getLogger("rempart.request")
job_log = logging.getLogger("rempart.jobs.run")

# The only extra fields a JSON line carries: each is an id, a code or a number (see docs/observability.md).
# Anything else a caller passes in ``extra`` (Django's ``request`` object, whose text is the full path with
# its query string) is left out.
FIELDS = (
    "request_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "channel",
    "actor_kind",
    "actor_id",
    "job_kind",
    "job_id",
    "job_status",
    "attempts",
    "status_code",
)


def accepted_request_id(value: str | None) -> str | None:
    """``value`` if it may be used as the request id as it is, else None."""
    if not value or not _ACCEPTED_ID.fullmatch(value) or redact(value) != value:
        return None
    return value


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The request id of the request being answered in this thread, if any (for jobs it enqueues)."""
    return _request_id.get()


def bind_request_id(value: str | None) -> None:
    """The id of the request this thread now answers (None: between requests)."""
    _request_id.set(value)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request), for both formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get() or "-"
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None and isinstance(value, str | int | float | bool):
                line[name] = value
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return redact(json.dumps(line, ensure_ascii=False, separators=(",", ":")))


class TextFormatter(logging.Formatter):
    """The demo's and the tests' lines: time, level, logger, request id, message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get() or "-"
        return redact(super().format(record))


def log_request(
    *,
    method: str,
    route: str,
    status: int,
    duration_ms: float,
    channel: str,
    actor_kind: str,
    actor_id: int | None,
    quiet: bool = False,
) -> None:
    """The line of one answered request. ``quiet``: a probe (health, metrics) — at DEBUG when it succeeded,
    so that a load balancer's probe every second does not drown the log; a refused or failed one is shown."""
    if status >= 500:
        level = logging.WARNING
    elif quiet and status < 400:
        level = logging.DEBUG
    else:
        level = logging.INFO
    if not request_log.isEnabledFor(level):
        return
    request_log.log(
        level,
        "%s %s %s %.1f ms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "channel": channel,
            "actor_kind": actor_kind,
            "actor_id": actor_id,
        },
    )


def log_job(job_kind: str, job_id, status: str, duration_ms: float | None, attempts: int) -> None:
    """The line of one job attempt, and its metrics; called by the jobs runner when an attempt ends.

    ``job_id`` is the job's internal id; ``status`` what the attempt ended as (succeeded, retrying, failed…).
    ``duration_ms`` is None for an attempt whose worker was lost (the sweeper ends it; nobody timed it).
    """
    label = _kind_label(job_kind)
    status_label = status if status in metrics.JOB_STATUSES else metrics.OTHER
    metrics.JOB_RUNS.labels(label, status_label).inc()
    if duration_ms is not None:
        metrics.JOB_SECONDS.labels(label).observe(max(0.0, duration_ms) / 1000)
    if status_label == "failed":
        metrics.JOB_FAILURES.labels(label).inc()
    # The line names the kind as the job row does, even one no longer registered, if it is plainly a name.
    kind = job_kind if isinstance(job_kind, str) and metrics.is_plain_name(job_kind) else metrics.OTHER
    extra = {"job_kind": kind, "job_id": str(job_id), "job_status": status_label, "attempts": int(attempts)}
    if duration_ms is None:
        message, args = "job %s %s %s (attempt %s, worker lost)", (kind, job_id, status_label, attempts)
    else:
        extra["duration_ms"] = round(duration_ms, 2)
        message = "job %s %s %s after %.1f ms (attempt %s)"
        args = (kind, job_id, status_label, duration_ms, attempts)
    job_log.log(logging.WARNING if status_label == "failed" else logging.INFO, message, *args, extra=extra)


def _kind_label(job_kind: str) -> str:
    """A registered kind as it is, anything else ``other`` (as in the job table's counts, rempart.ops.metrics)."""
    try:
        from rempart.jobs.kinds import get_kind
    except ImportError:
        return metrics.job_kind_label(job_kind)
    return metrics.job_kind_label(job_kind) if get_kind(job_kind) is not None else metrics.OTHER
