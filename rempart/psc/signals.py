"""A completed Pro Santé Connect login is recorded (``psc.login``) with what it proved."""

from __future__ import annotations

from allauth.account.signals import user_logged_in
from django.dispatch import receiver

from rempart.psc import admission
from rempart.psc.config import PROVIDER_ID
from rempart.psc.stages import ASKED_KEY


@receiver(user_logged_in)
def on_psc_login(sender, request, user, sociallogin=None, **kwargs) -> None:
    if request is not None:
        request.session.pop(ASKED_KEY, None)
    if sociallogin is not None and sociallogin.account.provider == PROVIDER_ID:
        admission.on_login(request, user, sociallogin)
