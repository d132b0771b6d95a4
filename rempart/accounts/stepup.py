"""Step-up: sensitive actions, and surveillance, ask for the second factor again.

What counts as a proof, here and for surveillance (``Actor.second_factor_at``): a second factor proved in
*this* session, from *this* context (address and device: rempart.accounts.sessions), and, when the person
has a passkey, with the passkey. A TOTP code can be phished and relayed; a passkey cannot.
"""

from __future__ import annotations

import functools
import time

from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from rempart.accounts.sessions import CONTEXT_FIELD, context_of

# Reached from a session that must prove the second factor again: the prompts themselves, and leaving.
STEP_UP_URL_NAMES = {"mfa_reauthenticate", "mfa_reauthenticate_webauthn", "account_logout", "set_language"}


def has_passkey(user) -> bool:
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).exists()


def step_up_methods(user) -> list[dict]:
    """The ways to prove the second factor again, exactly: the passkey when the person has one, else a code.
    Never the password nor an emailed code (allauth's other re-authentication methods prove neither)."""
    if not user.is_authenticated:
        return []
    types = set(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    if Authenticator.Type.WEBAUTHN in types:
        return [
            {
                "id": "mfa_reauthenticate:webauthn",
                "description": _("Utiliser ma clé d'accès"),
                "url": reverse("mfa_reauthenticate_webauthn"),
            }
        ]
    if types & {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}:
        return [
            {
                "id": "mfa_reauthenticate",
                "description": _("Code de l'application ou code de secours"),
                "url": reverse("mfa_reauthenticate"),
            }
        ]
    return []


def last_second_factor_at(request: HttpRequest) -> float | None:
    """When this session last proved a second factor from here (login or step-up), as a timestamp; for a
    person with a passkey, only a passkey counts."""
    passkey_only = has_passkey(request.user)
    here = context_of(request).id
    times = [
        r.get("at", 0)
        for r in get_authentication_records(request, request.user)
        if r.get("method") == "mfa"
        and r.get(CONTEXT_FIELD, here) == here  # untagged: made by this very request
        and (not passkey_only or r.get("type") == Authenticator.Type.WEBAUTHN)
    ]
    return max(times, default=None)


def second_factor_is_fresh(request: HttpRequest) -> bool:
    at = last_second_factor_at(request)
    return at is not None and time.time() - at < settings.REMPART_STEP_UP_SECONDS


def step_up_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the second-factor prompt that satisfies step-up (the passkey's when the person has one), then back."""
    target = request.get_full_path() if request.method == "GET" else request.META.get("HTTP_REFERER", "/")
    prompt = reverse("mfa_reauthenticate_webauthn" if has_passkey(request.user) else "mfa_reauthenticate")
    return HttpResponseRedirect(f"{prompt}?{urlencode({'next': target})}")


def step_up_required(view):
    """Decorator for a view: demand a fresh second factor; a person still enrolling their first one passes."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if user.is_authenticated and not second_factor_is_fresh(request):
            if Authenticator.objects.filter(user=user).exists():
                return step_up_redirect(request)
        return view(request, *args, **kwargs)

    return wrapper
