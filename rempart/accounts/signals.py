"""Security events from Django's and allauth's signals, and the new-device notice."""

from __future__ import annotations

import hashlib
import secrets

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.core.mail import send_mail
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.utils import timezone

from rempart.accounts import throttle
from rempart.accounts.events import record_event
from rempart.accounts.models import KnownDevice, SecurityEvent
from rempart.lib.http import client_ip, user_agent

DEVICE_COOKIE = "rempart_device"


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs) -> None:
    if request is None:
        return
    now = timezone.now()
    request.session["rempart_started_at"] = now.timestamp()
    request.session["rempart_last_seen"] = now.timestamp()
    throttle.clear(throttle.email_key(user.email))
    ip = client_ip(request)
    known_before = SecurityEvent.objects.filter(user=user, tag="login.success").exists()
    address_known = SecurityEvent.objects.filter(user=user, tag="login.success", ip_address=ip).exists()
    device_id = request.COOKIES.get(DEVICE_COOKIE, "")
    device_hash = hashlib.sha256(device_id.encode()).hexdigest() if device_id else ""
    device = KnownDevice.objects.filter(user=user, device_hash=device_hash).first() if device_hash else None
    if device is None:
        device_id = secrets.token_urlsafe(32)
        device_hash = hashlib.sha256(device_id.encode()).hexdigest()
        KnownDevice.objects.create(user=user, device_hash=device_hash, user_agent=user_agent(request))
        request._rempart_new_device_cookie = device_id
    else:
        KnownDevice.objects.filter(pk=device.pk).update(last_seen=now)
    record_event("login.success", request=request, user=user)
    if known_before and (device is None or not address_known):
        record_event("login.new_device", request=request, user=user, new_device=device is None)
        send_mail(
            subject="Rempart — nouvelle connexion à votre compte",
            message=render_to_string(
                "accounts/email/new_device.txt",
                {"user": user, "when": timezone.localtime(now), "ip": ip, "user_agent": user_agent(request),
                 "base_url": settings.REMPART_BASE_URL},
            ),
            from_email=None,
            recipient_list=[user.email],
        )  # fmt: skip


@receiver(user_logged_out)
def on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        record_event("logout", request=request, user=user)


@receiver(mfa_signals.authenticator_used)
def on_factor_used(sender, request, user, authenticator, reauthenticated=False, **kwargs) -> None:
    if reauthenticated:
        record_event("mfa.step_up", request=request, user=user, factor=authenticator.type)


@receiver(account_signals.password_changed)
def on_password_changed(sender, request, user, **kwargs) -> None:
    record_event("account.password_changed", request=request, user=user)


@receiver(account_signals.password_reset)
def on_password_reset(sender, request, user, **kwargs) -> None:
    record_event("account.password_reset", request=request, user=user)


@receiver(mfa_signals.authenticator_added)
def on_factor_added(sender, request, user, authenticator, **kwargs) -> None:
    record_event("mfa.added", request=request, user=user, factor=authenticator.type)


@receiver(mfa_signals.authenticator_removed)
def on_factor_removed(sender, request, user, authenticator, **kwargs) -> None:
    record_event("mfa.removed", request=request, user=user, factor=authenticator.type)


@receiver(mfa_signals.authenticator_reset)
def on_factor_reset(sender, request, user, authenticator, **kwargs) -> None:
    record_event("mfa.recovery_codes_generated", request=request, user=user)


@receiver(mfa_signals.authentication_failed)
def on_factor_failed(sender, request, user, authenticator, reauthentication=False, **kwargs) -> None:
    record_event(
        "mfa.failed", request=request, user=user, factor=authenticator.type, step_up=reauthentication
    )
