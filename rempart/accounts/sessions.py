"""Sessions: ending them at once (log out everywhere, removal, suspension), and binding each one to where it
logged in, so that a cookie replayed from another address or device proves the second factor again.

A session remembers the *contexts* it may be used from: the address (IPv4, or the IPv6 /64) and the device
(the ``rempart_device`` cookie and the user agent) of its login, plus each context from which the second
factor was proved again in this session. Each second-factor record allauth keeps in the session is tagged
with the context that made it, so a proof made from one place never counts for a request from another.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from dataclasses import dataclass

from allauth.account.internal.flows.login import (
    AUTHENTICATION_METHODS_SESSION_KEY,
    get_authentication_records,
)
from allauth.usersessions.models import UserSession
from django.contrib.auth.signals import user_logged_in
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from rempart.lib.http import client_ip, user_agent

CONTEXTS_KEY = "rempart_contexts"  # [{"id", "network", "device", "at"}], the most recent last
REPORTED_KEY = "rempart_contexts_reported"  # context ids already reported as foreign to this session
MAX_CONTEXTS = 4
CONTEXT_FIELD = "ctx"  # added to allauth's second-factor records: the context that proved it

# Sent at each request of a session from a context it was not bound to (``first``: the first time for that
# context; ``attempted``: the request tried to change something, a POST). Surveillance raises its alert and
# counts the refused attempts; accounts does not depend on surveillance.
context_refused = Signal()


def end_sessions(**filters) -> int:
    """End every tracked session matching the filters (e.g. ``user=…``); return how many were ended."""
    sessions = list(UserSession.objects.filter(**filters))
    for session in sessions:
        session.end()
    return len(sessions)


def log_out_if_suspended(request) -> bool:
    """Surveillance may suspend the account during this very request (its sessions are then ended): log the
    browser out cleanly, on a fresh session, instead of letting Django try to save the ended one."""
    from django.contrib.auth import logout

    from rempart.accounts.models import User

    if User.objects.filter(pk=request.user.pk, suspended_at__isnull=False).exists():
        logout(request)
        return True
    return False


# --- binding a session to its context ----------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Where a request comes from, as far as a session is concerned."""

    network: str  # the IPv4 address, or the IPv6 /64 (one household or shop holds a whole /64)
    device: str  # a hash of the device cookie and the user agent

    @property
    def id(self) -> str:
        return hashlib.sha256(f"{self.network}|{self.device}".encode()).hexdigest()[:16]


def network_of(ip: str | None) -> str:
    if not ip:
        return ""
    address = ipaddress.ip_address(ip)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(address)


def context_of(request: HttpRequest) -> Context:
    """The request's context; at login, the device cookie the response is about to set counts already."""
    from rempart.accounts.signals import DEVICE_COOKIE

    device_cookie = getattr(request, "_rempart_new_device_cookie", None) or request.COOKIES.get(
        DEVICE_COOKIE, ""
    )
    device = hashlib.sha256(f"{device_cookie}\n{user_agent(request)}".encode()).hexdigest()[:16]
    return Context(network=network_of(client_ip(request)), device=device)


def session_ref(request: HttpRequest) -> str:
    """The session's reference as the ledger records it (a hash of the session key, never the key)."""
    key = request.session.session_key or ""
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else ""


def bound_contexts(request: HttpRequest) -> list[dict]:
    contexts = request.session.get(CONTEXTS_KEY)
    return contexts if isinstance(contexts, list) else []


def is_bound_here(request: HttpRequest) -> bool:
    """May this session be used from this request's context without proving the second factor again?"""
    here = context_of(request).id
    return any(c.get("id") == here for c in bound_contexts(request))


def _bind(request: HttpRequest, *, reset: bool = False) -> None:
    here = context_of(request)
    contexts = [] if reset else [c for c in bound_contexts(request) if c.get("id") != here.id]
    contexts.append({"id": here.id, "network": here.network, "device": here.device, "at": time.time()})
    request.session[CONTEXTS_KEY] = contexts[-MAX_CONTEXTS:]
    if reset:
        request.session.pop(REPORTED_KEY, None)


def _tag_new_proofs(request: HttpRequest) -> bool:
    """Tag the second-factor records made by this request with its context; True if there were any."""
    records = get_authentication_records(request, request.user)
    new = [r for r in records if r.get("method") == "mfa" and CONTEXT_FIELD not in r]
    if not new:
        return False
    here = context_of(request).id
    for record in new:
        record[CONTEXT_FIELD] = here
    request.session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    return True


@receiver(user_logged_in)
def _bind_at_login(sender, request, user, **kwargs) -> None:
    # The binding is written when the response is ready (SessionBindingMiddleware), once the device cookie
    # of a new browser has been chosen. A login without an address (Django's test client's force_login) is
    # no HTTP request: that session is bound at its first request instead.
    if request is not None and client_ip(request):
        request._rempart_logged_in = True


def bind_after_response(request: HttpRequest) -> None:
    """After each request of a logged-in session: a login binds the session to here; a second factor proved
    here (step-up) adds here to its contexts."""
    if getattr(request, "_rempart_logged_in", False):
        _tag_new_proofs(request)
        _bind(request, reset=True)
    elif _tag_new_proofs(request):
        _bind(request)


def check_binding(request: HttpRequest) -> bool:
    """True if the session may go on from here. A session not yet bound (opened before binding existed, or by
    force_login) is bound to its first request's context, its earlier records with it."""
    if bound_contexts(request):
        return is_bound_here(request)
    if not client_ip(request):
        return True
    _tag_new_proofs(request)
    _bind(request)
    return True


def report_foreign_context(request: HttpRequest) -> None:
    """Record, once per context, that this session was used from a context it is not bound to; tell
    surveillance at each request (it counts the refused attempts)."""
    from rempart.accounts.events import record_event

    here = context_of(request)
    reported = request.session.get(REPORTED_KEY) or []
    first = here.id not in reported
    login = bound_contexts(request)[0]
    evidence = {
        "session": session_ref(request),
        "address": client_ip(request),
        "login_network": login.get("network"),
        "address_changed": all(c.get("network") != here.network for c in bound_contexts(request)),
        "device_changed": all(c.get("device") != here.device for c in bound_contexts(request)),
    }
    if first:
        request.session[REPORTED_KEY] = [*reported, here.id][-MAX_CONTEXTS * 4 :]
        record_event("session.context_changed", request=request, user=request.user, **evidence)
    context_refused.send(
        sender=Context, request=request, first=first, attempted=request.method == "POST", evidence=evidence
    )
