"""Alerts sent on after commit — email to the security team, a signed webhook, a syslog line — without ever
holding up the request that raised them, and failures recorded. Servers on 127.0.0.1 only."""

import hashlib
import hmac
import http.server
import json
import socket
import socketserver
import threading
import time

import pytest
from django.core import mail
from django.db import transaction

from rempart.accounts.models import SecurityEvent
from rempart.surveillance import forwarding, labels
from rempart.surveillance.models import Alert

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "test-webhook-secret-0123456789"


class Hook(http.server.BaseHTTPRequestHandler):
    received: list = []
    status = 204
    delay = 0.0

    def do_POST(self):  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        time.sleep(type(self).delay)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook(settings):
    Hook.received, Hook.status, Hook.delay = [], 204, 0.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.REMPART_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/siem"
    settings.REMPART_ALERT_WEBHOOK_SECRET = SECRET
    settings.REMPART_ALERT_WEBHOOK_BACKOFF = 0.01
    settings.REMPART_ALERT_WEBHOOK_TIMEOUT = 2
    yield Hook
    server.shutdown()
    server.server_close()


def _raise(cast, **fields) -> Alert:
    values = {
        "severity": Alert.Severity.CRITICAL, "signal": "canary", "level": 3, "user": cast.staff,
        "organisation": cast.optician, "ip_address": "198.51.100.23", "response": labels.ACCOUNT_SUSPENDED,
        "evidence": {"canary": {"canary": 4, "insurer": 1, "severity": "critical", "iban": "FR76 •••• 0189"}},
    }  # fmt: skip
    with transaction.atomic():
        return Alert.objects.create(**{**values, **fields})


def _failures() -> list[dict]:
    return [e.details for e in SecurityEvent.objects.filter(tag="alert.forward_failed").order_by("pk")]


def test_the_webhook_gets_the_signed_event_without_personal_data(cast, hook):
    alert = _raise(cast)
    assert forwarding.flush()
    ((headers, body),) = hook.received
    timestamp = headers["X-Rempart-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Rempart-Signature"] == f"sha256={expected}"
    assert headers["X-Rempart-Event"] == "rempart.alert-event.v1"
    event = json.loads(body)
    assert event["format"] == "rempart.alert-event" and event["version"] == 1
    assert event["alert_id"] == alert.pk and event["signal"] == "canary" and event["severity"] == "critical"
    assert event["response"] == "account_suspended" and event["actor"] == {
        "kind": "account",
        "account_id": cast.staff.pk,
    }
    assert event["created_at"].endswith("Z") and event["evidence"] == {"canary": {"canary": 4, "insurer": 1}}
    text = body.decode()
    for personal in (cast.staff.email, "198.51.100.23", "FR76", cast.optician.name):
        assert personal not in text
    assert not _failures()


def test_a_rolled_back_alert_is_not_sent(cast, hook):
    with pytest.raises(RuntimeError), transaction.atomic():
        Alert.objects.create(severity="critical", signal="canary", level=3, user=cast.staff)
        raise RuntimeError
    assert forwarding.flush() and hook.received == []


def test_a_slow_siem_never_holds_up_the_request(cast, hook):
    hook.delay = 1.5
    started = time.monotonic()
    _raise(cast)
    assert time.monotonic() - started < 0.5  # committed and answered while the webhook still waits
    assert forwarding.flush() and len(hook.received) == 1


def test_a_webhook_that_is_down_is_retried_a_bounded_number_of_times_then_recorded(cast, settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REMPART_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/siem"
    settings.REMPART_ALERT_WEBHOOK_SECRET = SECRET
    settings.REMPART_ALERT_WEBHOOK_BACKOFF = 0.01
    settings.REMPART_ALERT_WEBHOOK_ATTEMPTS = 50  # bounded whatever the setting says
    alert = _raise(cast)
    assert forwarding.flush()
    (failure,) = _failures()
    assert failure["alert"] == alert.pk and failure["channel"] == "webhook"
    assert f"after {forwarding.MAX_ATTEMPTS} attempt(s)" in failure["error"]


def test_a_refusing_siem_is_not_hammered(cast, hook):
    hook.status = 401  # e.g. it does not accept the signature
    _raise(cast)
    assert forwarding.flush()
    assert len(hook.received) == 1 and "HTTP 401 after 1 attempt" in _failures()[0]["error"]


def test_a_server_error_is_retried(cast, hook, settings):
    settings.REMPART_ALERT_WEBHOOK_ATTEMPTS = 2
    hook.status = 503
    _raise(cast)
    assert forwarding.flush() and len(hook.received) == 2 and "HTTP 503 after 2" in _failures()[0]["error"]


def test_without_a_secret_nothing_is_sent_unsigned(cast, hook, settings):
    settings.REMPART_ALERT_WEBHOOK_SECRET = ""
    _raise(cast)
    assert forwarding.flush() and hook.received == []
    assert "REMPART_ALERT_WEBHOOK_SECRET" in _failures()[0]["error"]


def test_a_plain_http_webhook_elsewhere_than_this_machine_is_refused(cast, settings):
    settings.REMPART_ALERT_WEBHOOK_URL = "http://siem.example.test/hook"
    settings.REMPART_ALERT_WEBHOOK_SECRET = SECRET
    _raise(cast)
    assert forwarding.flush() and "https://" in _failures()[0]["error"]


def test_the_security_team_gets_an_email_from_the_gravity_set(cast, settings):
    settings.REMPART_SECURITY_ALERT_EMAIL = ["soc@operator.test"]
    settings.REMPART_ALERT_EMAIL_MIN_SEVERITY = "warning"
    _raise(cast, severity=Alert.Severity.INFO, signal="new_address", response="")
    alert = _raise(cast)
    assert forwarding.flush()
    (message,) = mail.outbox
    assert message.to == ["soc@operator.test"] and f"alerte n° {alert.pk}" in message.subject
    assert "bénéficiaire témoin" in message.subject and "suspendu automatiquement" in message.body
    assert "/operateur/surveillance/" in message.body and "account_suspended" not in message.body


def test_a_udp_syslog_line_is_rfc_5424_with_the_event(cast, settings):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        settings.REMPART_ALERT_SYSLOG = f"udp://127.0.0.1:{listener.getsockname()[1]}"
        alert = _raise(cast)
        line, _sender = listener.recvfrom(65535)
    assert forwarding.flush()
    text = line.decode()
    assert text.startswith("<82>1 ")  # authpriv (10) × 8 + critical (2)
    header, payload = text.split(" {", 1)
    assert header.split(" ")[3:6] == ["rempart", "-", "alert"]
    assert f'alert="{alert.pk}"' in header
    assert json.loads("{" + payload)["alert_id"] == alert.pk


def test_a_tcp_syslog_line_is_octet_counted(cast, settings):
    received = []

    class Sink(socketserver.BaseRequestHandler):
        def handle(self):
            received.append(self.request.recv(65535))

    server = socketserver.TCPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.handle_request, daemon=True).start()
    settings.REMPART_ALERT_SYSLOG = f"tcp://127.0.0.1:{server.server_address[1]}"
    _raise(cast, severity=Alert.Severity.WARNING)
    assert forwarding.flush()
    server.server_close()
    length, line = received[0].split(b" ", 1)
    assert int(length) == len(line) and line.startswith(b"<84>1 ")


def test_a_syslog_that_is_down_is_recorded(cast, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.REMPART_ALERT_SYSLOG = f"tcp://127.0.0.1:{port}"
    _raise(cast)
    assert forwarding.flush() and _failures()[0]["channel"] == "syslog"


def test_nothing_configured_nothing_queued(cast):
    _raise(cast)
    assert forwarding._jobs.unfinished_tasks == 0 and not _failures() and not mail.outbox
