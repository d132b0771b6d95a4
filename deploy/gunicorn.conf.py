"""gunicorn settings for Rempart's app servers: ``gunicorn -c deploy/gunicorn.conf.py`` (docs/deployment.md).

Every value comes from the environment (/etc/rempart/rempart.env, read by rempart-web.service), so one file in the
repository serves every host. The access log is off: the application writes one JSON line per request itself,
with its request id and without personal data, and a second, unfiltered log would only duplicate it.
"""

from __future__ import annotations

import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "rempart.wsgi:application"
# Several addresses separated by commas; a unix socket as "unix:/run/rempart-web/gunicorn.sock".
bind = [a.strip() for a in os.environ.get("REMPART_WEB_BIND", "127.0.0.1:8000").split(",") if a.strip()]

# Processes × threads: a rights check spends most of its time in PostgreSQL and Redis, so a few threads per
# process keep a CPU busy while others wait. Default: 2 processes per CPU, 4 threads each (gthread).
workers = _int("REMPART_WEB_WORKERS", 2 * (os.cpu_count() or 1))
threads = _int("REMPART_WEB_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"

# A request still running after `timeout` seconds is a stuck worker: killed and replaced. Long work (imports,
# notices, payment runs) runs on the job workers, never in a request, so 30 s is generous.
timeout = _int("REMPART_WEB_TIMEOUT", 30)
graceful_timeout = _int("REMPART_WEB_GRACEFUL_TIMEOUT", 30)
# Must be longer than the load balancer's idle timeout towards the app servers, or the balancer reuses a
# connection gunicorn is closing and answers 502.
keepalive = _int("REMPART_WEB_KEEPALIVE", 75)
# Each worker is replaced after this many requests (with jitter, so they don't all restart together): a bound
# on slow memory growth whatever its cause.
max_requests = _int("REMPART_WEB_MAX_REQUESTS", 20000)
max_requests_jitter = _int("REMPART_WEB_MAX_REQUESTS_JITTER", 2000)
# Not preloaded: `systemctl reload rempart-web` (HUP) then loads the new code in new workers, one by one.
preload_app = False
# The heartbeat file of each worker on a tmpfs (rempart-web.service: /run/rempart-web), so that a slow disk
# never makes a healthy worker look dead. Unset: the system's temporary directory.
worker_tmp_dir = os.environ.get("REMPART_WEB_TMP_DIR") or None

# Only these addresses (the load balancer's) are believed when they say the request came over HTTPS
# (X-Forwarded-Proto): Django's SECURE_PROXY_SSL_HEADER and REMPART_TRUSTED_PROXY_COUNT do the same in the app.
forwarded_allow_ips = os.environ.get("REMPART_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Requests larger than this are refused before Django sees them (headers; bodies are limited by the app).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

accesslog = None
errorlog = "-"
loglevel = os.environ.get("REMPART_WEB_LOG_LEVEL", "info")
capture_output = False
proc_name = "rempart-web"


def _metrics_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    return Path(value) if value else None


def on_starting(server) -> None:
    """Prepare prometheus-client's multiprocess directory: created if missing, emptied of a previous run's files.

    Files left by the processes of a previous run would be added to the new run's counters (and never shrink).
    Only prometheus-client's own files (``*.db``) are removed, so a wrong path never deletes anything else.
    """
    directory = _metrics_dir()
    if directory is None:
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    removed = 0
    for stale in directory.glob("*.db"):
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
            removed += 1
    server.log.info("metrics directory %s ready (%d stale files removed)", directory, removed)


def child_exit(server, worker) -> None:
    """A worker ended: its files leave the metrics directory and its counts are kept.

    rempart.ops.metrics.gunicorn_child_exit folds its counters and histograms into the directory's compacted
    files, so the directory does not grow with every worker ever started.

    Runs in the master process, which must never die for this: any failure is logged and the master goes on.
    Without rempart.ops.metrics (an older release, or one that cannot be imported here), prometheus-client is
    asked directly to drop the live gauges when multiprocess mode is in use.
    """
    try:
        try:
            from rempart.ops.metrics import gunicorn_child_exit
        except Exception:  # noqa: BLE001 - ImportError, or a module that needs Django set up
            gunicorn_child_exit = None
        if gunicorn_child_exit is not None:
            gunicorn_child_exit(server, worker)
        elif _metrics_dir() is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid, str(_metrics_dir()))
    except Exception:  # noqa: BLE001 - the master outlives any metrics problem
        server.log.exception("child_exit: metrics clean-up of worker %s failed", getattr(worker, "pid", "?"))
