"""The Pro Santé Connect buttons: nothing at all while PSC is not configured."""

from __future__ import annotations

from allauth.account.internal.flows.login import get_authentication_records
from django import template

from rempart.accounts.stepup import has_passkey
from rempart.psc.config import PROVIDER_ID, is_enabled

register = template.Library()


@register.inclusion_tag("psc/login_button.html", takes_context=True)
def psc_login_button(context) -> dict:
    request = context.get("request")
    return {
        "enabled": is_enabled(),
        "csrf_token": context.get("csrf_token"),
        "next": request.GET.get("next", "") if request is not None else "",
    }


@register.inclusion_tag("psc/step_up_button.html", takes_context=True)
def psc_step_up_button(context) -> dict:
    """Offered where PSC was used: this session logged in with it. Not to a person with a passkey, whose
    step-up is the passkey only (an e-CPS approval, like a code, can be relayed by a phishing proxy)."""
    request = context.get("request")
    shown = (
        request is not None
        and is_enabled()
        and request.user.is_authenticated
        and used_psc(request)
        and not has_passkey(request.user)
    )
    return {
        "shown": shown,
        "csrf_token": context.get("csrf_token"),
        "next": request.GET.get("next", "") if request is not None else "",
    }


def used_psc(request) -> bool:
    return any(
        r.get("method") == "socialaccount" and r.get("provider") == PROVIDER_ID
        for r in get_authentication_records(request, request.user)
    )
