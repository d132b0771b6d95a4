"""A correct password stopped at the second factor: recorded, and from a new device or address, told.

Whoever reaches the second-factor page has the person's password. That is the start of the 2024
breaches, so it must not pass in silence: every such stop is a ``login.password_only`` event, and when
it comes from a device or an address the person never completed a login from, the person (and their
organisation's owners) get "someone knows your password", once per device per period. The page at
the keyboard stays exactly the same, whatever happens here.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from allauth.mfa.stages import AuthenticateStage
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from rempart.accounts.events import record_event
from rempart.accounts.models import KnownDevice, Membership, Role, SecurityEvent, User
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.lib.http import client_ip, user_agent

TAG = "login.password_only"
ALLAUTH_STAGE = "allauth.mfa.stages.AuthenticateStage"
STAGE = "rempart.accounts.password_notice.SecondFactorStage"


class SecondFactorStage(AuthenticateStage):
    """allauth's second-factor stage, which also notes that the password was right."""

    def handle(self) -> tuple:
        response, cont = super().handle()
        if response is not None and self.login.user is not None:
            password_known(self.request, self.login.user)
        return response, cont


def _device_key(request) -> str:
    """The device as far as we can tell: its cookie if it sent one, else its address."""
    cookie = request.COOKIES.get(DEVICE_COOKIE, "")
    if cookie:
        return "d:" + hashlib.sha256(cookie.encode()).hexdigest()[:32]
    return f"ip:{client_ip(request) or ''}"


def password_known(request, user: User) -> SecurityEvent:
    """Record that ``user``'s password was typed correctly here; notify if the device or address is new."""
    ip = client_ip(request)
    cookie = request.COOKIES.get(DEVICE_COOKIE, "")
    device_hash = hashlib.sha256(cookie.encode()).hexdigest() if cookie else ""
    new_device = not (device_hash and KnownDevice.objects.filter(user=user, device_hash=device_hash).exists())
    new_address = not SecurityEvent.objects.filter(user=user, tag="login.success", ip_address=ip).exists()
    key = _device_key(request)
    notify = (new_device or new_address) and _may_notify(user, key)
    event = record_event(
        TAG,
        request=request,
        user=user,
        new_device=new_device,
        new_address=new_address,
        device=key,
        notified=notify,
    )
    if notify:
        _send(request, user, event)
    return event


def _may_notify(user: User, key: str) -> bool:
    limits = settings.REMPART_PASSWORD_NOTICE
    now = timezone.now()
    sent = SecurityEvent.objects.filter(user=user, tag=TAG, details__notified=True)
    if sent.filter(
        details__device=key, created_at__gte=now - dt.timedelta(seconds=limits["per_device_seconds"])
    ).exists():
        return False  # this device was the subject of a notice a moment ago
    return sent.filter(created_at__gte=now - dt.timedelta(days=1)).count() < limits["max_per_day"]


def _bilingual(template: str, context: dict) -> str:
    """French first, then English: the person's language is not known, and a warning must be understood."""
    parts = []
    for language in ("fr", "en"):
        with translation.override(language):
            parts.append(render_to_string(template, context).strip())
    return f"{parts[0]}\n\n— English —\n\n{parts[1]}\n"


def _subject(key: str) -> str:
    texts = []
    for language in ("fr", "en"):
        with translation.override(language):
            if key == "person":
                texts.append(gettext("quelqu'un connaît votre mot de passe"))
            else:
                texts.append(gettext("le mot de passe d'un membre est connu de quelqu'un"))
    return f"Rempart — {texts[0]} / {texts[1]}"


def _send(request, user: User, event: SecurityEvent) -> None:
    context = {
        "user": user,
        "when": timezone.localtime(event.created_at),
        "ip": event.ip_address,
        "user_agent": user_agent(request),
        "base_url": settings.REMPART_BASE_URL,
    }
    send_mail(
        subject=_subject("person"),
        message=_bilingual("accounts/email/password_known.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )
    owners = _owners_to_tell(user)
    if owners:
        send_mail(
            subject=_subject("owners"),
            message=_bilingual("accounts/email/password_known_owner.txt", context),
            from_email=None,
            recipient_list=owners,
        )


def _owners_to_tell(user: User) -> list[str]:
    """The owners of the person's organisation, but the person: their mailbox may be reached with the
    same password, and they can remove or suspend the member. (The operator's organisation has no owners:
    its security analysts see the event on their console.)"""
    membership = user.membership
    if membership is None:
        return []
    return list(
        Membership.objects.filter(
            organisation_id=membership.organisation_id, role=Role.OWNER, user__is_active=True
        )
        .exclude(user=user)
        .values_list("user__email", flat=True)
    )
