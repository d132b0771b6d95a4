"""Step-up: sensitive actions ask for the second factor again when the last one is older than 5 minutes."""

from __future__ import annotations

import functools
import time

from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode


def last_second_factor_at(request: HttpRequest) -> float | None:
    """When this session last proved a second factor (login or re-authentication), as a timestamp."""
    times = [
        r.get("at", 0) for r in get_authentication_records(request, request.user) if r.get("method") == "mfa"
    ]
    return max(times, default=None)


def second_factor_is_fresh(request: HttpRequest) -> bool:
    at = last_second_factor_at(request)
    return at is not None and time.time() - at < settings.REMPART_STEP_UP_SECONDS


def step_up_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the second-factor prompt (a passkey first when the person has one), then back to the page."""
    target = request.get_full_path() if request.method == "GET" else request.META.get("HTTP_REFERER", "/")
    has_key = Authenticator.objects.filter(user=request.user, type=Authenticator.Type.WEBAUTHN).exists()
    prompt = reverse("mfa_reauthenticate_webauthn" if has_key else "mfa_reauthenticate")
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
