"""allauth's second-factor forms with Rempart's throttle: wrong codes slow down, then lock, then the owner is told.

allauth alone allows 10 wrong codes per 5 minutes, indefinitely; with a phished password that is
thousands of guesses a day. Here: a few free tries, doubling delays, a lock after 10 and an email.
"""

from __future__ import annotations

from allauth.mfa.base import forms as allauth_forms
from django import forms
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.accounts import throttle
from rempart.accounts.events import record_event

TOO_MANY = "Trop de codes erronés. Réessayez dans {seconds} secondes."
PASSKEY_REQUIRED = _("Votre compte a une clé d'accès : confirmez avec elle, un code ne suffit pas ici.")


def mfa_key(user) -> str:
    return f"mfa:{user.pk}"


class ThrottledCodeMixin:
    def clean_code(self) -> str:
        wait = throttle.seconds_to_wait([mfa_key(self.user)])
        if wait:
            raise forms.ValidationError(TOO_MANY.format(seconds=wait))
        try:
            code = super().clean_code()
        except forms.ValidationError:
            _row, locked = throttle.record_failure(mfa_key(self.user), "mfa")
            if locked:
                self._tell_owner()
            raise
        throttle.clear(mfa_key(self.user))
        return code

    def _tell_owner(self) -> None:
        from allauth.core import context

        record_event("login.locked", request=context.request, user=self.user, factor="mfa")
        send_mail(
            subject="Rempart — trop de codes de second facteur erronés",
            message=render_to_string(
                "accounts/email/locked.txt",
                {"user": self.user, "when": timezone.localtime(), "ip": None, "second_factor": True,
                 "minutes": settings.REMPART_LOGIN_THROTTLE["mfa"]["lock_seconds"] // 60},
            ),
            from_email=None,
            recipient_list=[self.user.email],
        )  # fmt: skip


class AuthenticateForm(ThrottledCodeMixin, allauth_forms.AuthenticateForm):
    pass


class ReauthenticateForm(ThrottledCodeMixin, allauth_forms.ReauthenticateForm):
    def clean_code(self) -> str:
        # A person with a passkey steps up with it: a code can be phished and relayed, a passkey cannot.
        # Refused before the code is looked at, so a relayed code is not even spent.
        from allauth.core import context

        from rempart.accounts.stepup import has_passkey

        if has_passkey(self.user):
            record_event("mfa.failed", request=context.request, user=self.user, factor="totp", step_up=True,
                         reason="passkey_required")  # fmt: skip
            raise forms.ValidationError(PASSKEY_REQUIRED)
        return super().clean_code()
