"""django-allauth adapters: no sign-up, our login throttle, our encryption for factor secrets."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django import forms
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from rempart.accounts import throttle
from rempart.accounts.events import record_event
from rempart.accounts.models import User
from rempart.lib.crypto import field_cipher
from rempart.lib.http import client_ip

THROTTLED = "Trop de tentatives de connexion. Réessayez dans {seconds} secondes."


@dataclass(frozen=True)
class RempartSite:
    """What allauth's emails call the site: Rempart and its public address, never the request's host."""

    name: str
    domain: str


def rempart_site() -> RempartSite:
    return RempartSite(name="Rempart", domain=settings.REMPART_BASE_URL)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False  # people join by invitation only

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """allauth's emails say « Rempart », not the host that served the request (« c'est 127.0.0.1:8000 »)."""
        super().send_mail(template_prefix, email, {**context, "current_site": rempart_site()})

    def pre_authenticate(self, request, **credentials) -> None:
        keys = [throttle.email_key(credentials.get("email", "")), throttle.address_key(client_ip(request))]
        wait = throttle.seconds_to_wait(keys)
        if wait:
            raise forms.ValidationError(THROTTLED.format(seconds=wait))
        super().pre_authenticate(request, **credentials)

    def authentication_failed(self, request, **credentials) -> None:
        email = credentials.get("email", "")
        user = User.objects.filter(email__iexact=email.strip()).first()
        _row, locked = throttle.record_failure(throttle.email_key(email), "account")
        throttle.record_failure(throttle.address_key(client_ip(request)), "address")
        record_event("login.failed", request=request, user=user)
        if locked and user is not None:
            record_event("login.locked", request=request, user=user)
            send_mail(
                subject="Rempart — votre compte est temporairement verrouillé",
                message=render_to_string(
                    "accounts/email/locked.txt",
                    {"user": user, "when": timezone.localtime(), "ip": client_ip(request),
                     "minutes": settings.REMPART_LOGIN_THROTTLE["account"]["lock_seconds"] // 60},
                ),
                from_email=None,
                recipient_list=[user.email],
            )  # fmt: skip
        super().authentication_failed(request, **credentials)

    def get_login_stages(self) -> list[str]:
        """allauth's stages, its second-factor one replaced by ours: it records that the password was right
        and tells the person when that comes from a new device or address (password_notice.py)."""
        from rempart.accounts.password_notice import ALLAUTH_STAGE, STAGE

        return [STAGE if path == ALLAUTH_STAGE else path for path in super().get_login_stages()]

    def get_login_redirect_url(self, request) -> str:
        return "/"

    def get_reauthentication_methods(self, user) -> list[dict]:
        """Only what satisfies Rempart's step-up: the passkey if the person has one, else a code; allauth's
        other pages (password, emailed code) then redirect to it instead of offering a weaker proof."""
        from rempart.accounts.stepup import step_up_methods

        return step_up_methods(user)


class MFAAdapter(DefaultMFAAdapter):
    """TOTP secrets and pending recovery codes are encrypted with the platform's AES-GCM keys."""

    def encrypt(self, text: str) -> str:
        return base64.b64encode(field_cipher().encrypt("mfa", text)).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return field_cipher().decrypt("mfa", base64.b64decode(encrypted_text))

    def get_totp_issuer(self) -> str:
        return "Rempart"
