"""Alerts sent on: an email to the security team, and a JSON event to a SIEM by webhook or syslog.

Once the transaction that raised an alert has committed, its event (docs/formats/alert-event-v1.md: codes
and references, no personal data) is handed to one background thread per process: the request that
raised the alert never waits for a mail server or a SIEM. The webhook is an HTTPS POST signed with
HMAC-SHA256 (REMPART_ALERT_WEBHOOK_SECRET), with a timeout and a bounded number of attempts; syslog is
one RFC 5424 line over UDP or TCP. A delivery that fails for good is recorded as a security event
(``alert.forward_failed``) and logged, with the alert's number only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import close_old_connections, connection, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import translation

from rempart.surveillance.models import Alert

log = logging.getLogger("rempart.surveillance.forwarding")

FORMAT = "rempart.alert-event"
VERSION = 1
SEVERITY_ORDER = {"info": 0, "warning": 1, "critical": 2}
SYSLOG_SEVERITY = {"info": 6, "warning": 4, "critical": 2}  # RFC 5424: informational, warning, critical
SYSLOG_FACILITY = 10  # security/authorization (authpriv)
MAX_ATTEMPTS = 5  # whatever the setting says
QUEUE_SIZE = 1000
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class ForwardingError(Exception):
    """One channel could not deliver an event (message without personal data)."""


# --- configuration --------------------------------------------------------------------------------------


def _passes(alert_severity: str, minimum: str) -> bool:
    return SEVERITY_ORDER.get(alert_severity, 0) >= SEVERITY_ORDER.get(minimum, 0)


def email_recipients() -> list[str]:
    return list(getattr(settings, "REMPART_SECURITY_ALERT_EMAIL", []) or [])


def webhook_url() -> str:
    return getattr(settings, "REMPART_ALERT_WEBHOOK_URL", "") or ""


def syslog_target() -> str:
    return getattr(settings, "REMPART_ALERT_SYSLOG", "") or ""


def configured() -> bool:
    return bool(email_recipients() or webhook_url() or syslog_target())


# --- the event ------------------------------------------------------------------------------------------


def event(alert: Alert) -> dict:
    """The alert as a SIEM reads it (format v1): codes and references only, never a name, an email or an IBAN."""
    base = settings.REMPART_BASE_URL.rstrip("/")
    actor: dict = {"kind": "none"}
    if alert.token_id:
        actor = {"kind": "token", "token_id": alert.token_id}
        if alert.token is not None:
            actor["token_prefix"] = f"rmp_{alert.token.prefix}"
    elif alert.user_id:
        actor = {"kind": "account", "account_id": alert.user_id}
    elif alert.organisation_id:
        actor = {"kind": "organisation"}
    numbers = {
        signal: {k: v for k, v in facts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for signal, facts in (alert.evidence or {}).items()
        if isinstance(facts, dict)
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "alert_id": alert.pk,
        "created_at": alert.created_at.astimezone(dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "severity": alert.severity,
        "level": alert.level,
        "signal": alert.signal,
        "response": alert.response if _is_code(alert.response) else "legacy",
        "response_params": alert.response_params or {},
        "status": alert.status,
        "actor": actor,
        "organisation_id": alert.organisation_id,
        "incident_id": alert.incident_id,
        "evidence": {signal: facts for signal, facts in numbers.items() if facts},
        "console_url": f"{base}/operateur/surveillance/?signal={alert.signal}#alert-{alert.pk}",
    }


def _is_code(response: str) -> bool:
    from rempart.surveillance.labels import RESPONSES

    return response in RESPONSES


def body(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, timestamp: str, data: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<body>``, hex: what X-Rempart-Signature carries after ``sha256=``."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + data, hashlib.sha256).hexdigest()


# --- channels -------------------------------------------------------------------------------------------


def _attempts() -> int:
    return max(1, min(MAX_ATTEMPTS, int(getattr(settings, "REMPART_ALERT_WEBHOOK_ATTEMPTS", 3))))


def post_webhook(payload: dict) -> int:
    """POST the event; retried on failure (bounded, with a growing pause). Returns the attempts made."""
    url = webhook_url()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise ForwardingError("webhook: an https:// address is required")
    secret = getattr(settings, "REMPART_ALERT_WEBHOOK_SECRET", "") or ""
    if not secret:
        raise ForwardingError("webhook: REMPART_ALERT_WEBHOOK_SECRET is not set; nothing sent unsigned")
    data = body(payload)
    timeout = float(getattr(settings, "REMPART_ALERT_WEBHOOK_TIMEOUT", 5))
    pause = float(getattr(settings, "REMPART_ALERT_WEBHOOK_BACKOFF", 2))
    attempts = _attempts()
    last = ""
    for attempt in range(1, attempts + 1):
        timestamp = str(int(time.time()))
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url,
            data=data,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Rempart-alerts/1",
                "X-Rempart-Event": f"{FORMAT}.v{VERSION}",
                "X-Rempart-Timestamp": timestamp,
                "X-Rempart-Signature": "sha256=" + signature(secret, timestamp, data),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                if 200 <= response.status < 300:
                    return attempt
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break  # refused as such (a bad signature, say): sending again would not help
        except (urllib.error.URLError, OSError) as exc:
            last = type(getattr(exc, "reason", exc)).__name__
        if attempt < attempts:
            time.sleep(pause * attempt)
    raise ForwardingError(f"webhook: {last} after {attempt} attempt(s)")


def syslog_line(payload: dict) -> bytes:
    """One RFC 5424 message whose MSG is the event's JSON."""
    pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY.get(payload["severity"], 6)
    host = (socket.gethostname() or "-").split(".")[0][:255] or "-"
    structured = f'[rempart@32473 alert="{payload["alert_id"]}" signal="{payload["signal"]}"]'
    header = f"<{pri}>1 {payload['created_at']} {host} rempart - alert {structured} "
    return header.encode() + body(payload)


def send_syslog(payload: dict) -> None:
    target = urllib.parse.urlsplit(syslog_target())
    if target.scheme not in ("udp", "tcp") or not target.hostname:
        raise ForwardingError("syslog: REMPART_ALERT_SYSLOG must read udp://host:port or tcp://host:port")
    line = syslog_line(payload)
    address = (target.hostname, target.port or 514)
    timeout = float(getattr(settings, "REMPART_ALERT_WEBHOOK_TIMEOUT", 5))
    try:
        if target.scheme == "udp":
            with socket.socket(
                socket.AF_INET6 if ":" in target.hostname else socket.AF_INET, socket.SOCK_DGRAM
            ) as sock:
                sock.settimeout(timeout)
                sock.sendto(line, address)
        else:
            with socket.create_connection(address, timeout=timeout) as sock:
                sock.sendall(str(len(line)).encode() + b" " + line)  # RFC 6587 octet counting
    except OSError as exc:
        raise ForwardingError(f"syslog: {type(exc).__name__}") from None


def send_email(alert_id: int, payload: dict, subject: str, text: str) -> None:
    try:
        send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, email_recipients())
    except Exception as exc:  # noqa: BLE001 - whatever the mail backend raises is a failed delivery
        raise ForwardingError(f"email: {type(exc).__name__}") from None


def _email_words(alert: Alert, payload: dict) -> tuple[str, str]:
    """The email in the site's language (French): signal, gravity, response, a link; no beneficiary."""
    from rempart.surveillance.labels import response_label, when
    from rempart.surveillance.responses import SIGNAL_LABELS

    with translation.override(settings.LANGUAGE_CODE):
        signal = str(SIGNAL_LABELS.get(alert.signal, alert.signal))
        subject = f"Rempart : alerte n° {alert.pk} ({alert.get_severity_display().lower()}) — {signal}"
        text = (
            f"Alerte de surveillance n° {alert.pk}, {when(alert.created_at)}.\n\n"
            f"Gravité : {alert.get_severity_display()} (palier {alert.level})\n"
            f"Signal : {signal}\n"
            f"Réponse automatique : {response_label(alert)}\n\n"
            f"À traiter dans la console : {payload['console_url']}\n\n— Rempart"
        )
    return subject, text


# --- the background sender ------------------------------------------------------------------------------


@dataclass
class Job:
    alert_id: int
    payload: dict
    email: tuple[str, str] | None
    webhook: bool
    syslog: bool


_jobs: queue.Queue[Job] = queue.Queue(maxsize=QUEUE_SIZE)
_worker: threading.Thread | None = None
_lock = threading.Lock()


def _record_failure(job: Job, channel: str, error: str) -> None:
    log.error("alert %s not forwarded by %s: %s", job.alert_id, channel, error)
    try:
        from rempart.accounts.events import record_event

        record_event("alert.forward_failed", alert=job.alert_id, channel=channel, error=error[:200])
    except Exception:  # noqa: BLE001 - the log line above is the record of last resort
        log.exception("the failure to forward alert %s could not be recorded", job.alert_id)


def deliver(job: Job) -> None:
    """Every channel of one job, each on its own (one failing does not stop the others)."""
    channels = []
    if job.email:
        channels.append(("email", lambda: send_email(job.alert_id, job.payload, *job.email)))
    if job.webhook:
        channels.append(("webhook", lambda: post_webhook(job.payload)))
    if job.syslog:
        channels.append(("syslog", lambda: send_syslog(job.payload)))
    for name, send in channels:
        try:
            send()
        except ForwardingError as exc:
            _record_failure(job, name, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug here must not kill the sender thread
            _record_failure(job, name, type(exc).__name__)


def _run() -> None:
    while True:
        job = _jobs.get()
        try:
            deliver(job)
        finally:
            close_old_connections()
            connection.close()  # this thread's own connection, opened only when a failure was recorded
            _jobs.task_done()


def _ensure_worker() -> None:
    global _worker
    with _lock:
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_run, name="rempart-alert-forwarding", daemon=True)
            _worker.start()


def flush(timeout: float = 30.0) -> bool:
    """Wait until every queued event was handled (tests, and a clean shutdown). Returns whether it was."""
    deadline = time.monotonic() + timeout
    while _jobs.unfinished_tasks:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def forward(alert_id: int) -> Job | None:
    """Build the event of a committed alert and queue its deliveries (called after commit)."""
    if not configured():
        return None
    alert = Alert.objects.select_related("user", "token", "organisation").filter(pk=alert_id).first()
    if alert is None:
        return None
    payload = event(alert)
    email_minimum = getattr(settings, "REMPART_ALERT_EMAIL_MIN_SEVERITY", "warning")
    siem_minimum = getattr(settings, "REMPART_ALERT_FORWARD_MIN_SEVERITY", "info")
    job = Job(
        alert_id=alert.pk,
        payload=payload,
        email=_email_words(alert, payload)
        if email_recipients() and _passes(alert.severity, email_minimum)
        else None,
        webhook=bool(webhook_url()) and _passes(alert.severity, siem_minimum),
        syslog=bool(syslog_target()) and _passes(alert.severity, siem_minimum),
    )
    if not (job.email or job.webhook or job.syslog):
        return None
    try:
        _jobs.put_nowait(job)
    except queue.Full:
        _record_failure(job, "queue", f"more than {QUEUE_SIZE} alerts waiting: this one was dropped")
        return None
    _ensure_worker()
    return job


@receiver(post_save, sender=Alert, dispatch_uid="rempart.surveillance.forwarding")
def alert_raised(sender, instance: Alert, created: bool, **kwargs) -> None:
    """A new alert is sent on once its transaction commits (nothing is sent for one rolled back)."""
    if created and configured():
        alert_id = instance.pk
        transaction.on_commit(lambda: forward(alert_id))
