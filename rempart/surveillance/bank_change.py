"""The hijacked-account pattern: an IBAN change that follows a new device or address, or comes shortly after a
password reset or a second-factor change, raises an alert for the analyst.

The change itself is already held (rempart.registry.bank_hold) and every owner and the operator are told;
this alert says *why this one looks like a takeover*, so that the operator calls the owners before the hold
ends. Thresholds: ``bank_change_new_context_days`` and ``bank_change_credentials_days`` in the policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from rempart.accounts.models import KnownDevice, SecurityEvent, User
from rempart.accounts.sessions import network_of
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.lib.http import client_ip
from rempart.registry.bank_hold import bank_change_requested, organisation_of
from rempart.registry.models import BankDetailsChange, Professional
from rempart.surveillance import engine, policy
from rempart.surveillance import labels as words
from rempart.surveillance.models import Alert
from rempart.surveillance.policy import ALERT

SIGNAL = "bank_change_suspicious"
CREDENTIAL_TAGS = (
    "account.password_reset",
    "account.password_changed",
    "mfa.added",
    "mfa.removed",
    "mfa.recovery_codes_generated",
)
CONTEXT_TAGS = ("login.new_device", "session.context_changed")


def sign_labels() -> dict[str, str]:
    """The signs of a takeover in words (the alert's evidence keeps their codes)."""
    return _sign_labels()


def _sign_labels() -> dict[str, str]:
    return {
        "login.new_device": _("connexion depuis un nouvel appareil ou une nouvelle adresse"),
        "session.context_changed": _("session utilisée depuis une autre adresse ou un autre appareil"),
        "new_address": _("demandé depuis une adresse jamais vue pour cette personne"),
        "new_device": _("demandé depuis un appareil jamais vu pour cette personne"),
        "account.password_reset": _("mot de passe réinitialisé"),
        "account.password_changed": _("mot de passe modifié"),
        "mfa.added": _("second facteur ajouté"),
        "mfa.removed": _("second facteur supprimé"),
        "mfa.recovery_codes_generated": _("codes de secours régénérés"),
        "iban_shared": _("IBAN déjà donné par une autre organisation"),
    }


def _local(moment: dt.datetime) -> str:
    return date_format(
        timezone.localtime(moment), "DATETIME_FORMAT"
    )  # "1 déc. 2026, 14:05" (rempart/formats)


def _enrolment_ends(user: User) -> list[tuple[dt.datetime, dt.datetime]]:
    """The windows in which a person enrolled their factors after accepting an invitation: not a change."""
    window = dt.timedelta(seconds=settings.REMPART_ENROLMENT_WINDOW_SECONDS)
    accepted = SecurityEvent.objects.filter(user=user, tag="invitation.accepted").values_list(
        "created_at", flat=True
    )
    return [(at, at + window) for at in accepted]


def _established_before(user: User, since: dt.datetime) -> bool:
    """Had the person logged in before the window? Otherwise every address and device is new to them."""
    return SecurityEvent.objects.filter(user=user, tag="login.success", created_at__lt=since).exists()


def takeover_signs(user: User, request, at: dt.datetime) -> list[tuple[str, dt.datetime | None]]:
    """What in the person's recent history looks like someone else holding the account: (sign, when)."""
    signs: list[tuple[str, dt.datetime | None]] = []
    context_since = at - dt.timedelta(days=policy.threshold("bank_change_new_context_days"))
    credentials_since = at - dt.timedelta(days=policy.threshold("bank_change_credentials_days"))
    recent = SecurityEvent.objects.filter(user=user, created_at__lte=at)
    for tag, when in recent.filter(tag__in=CONTEXT_TAGS, created_at__gte=context_since).values_list(
        "tag", "created_at"
    ):
        signs.append((tag, when))
    enrolments = _enrolment_ends(user)
    for tag, when in recent.filter(tag__in=CREDENTIAL_TAGS, created_at__gte=credentials_since).values_list(
        "tag", "created_at"
    ):
        if not any(start <= when <= end for start, end in enrolments):
            signs.append((tag, when))
    if request is not None and _established_before(user, context_since):
        network = network_of(client_ip(request))
        before = SecurityEvent.objects.filter(user=user, tag="login.success", created_at__lt=context_since)
        known = {network_of(ip) for ip in before.values_list("ip_address", flat=True).distinct() if ip}
        if network and network not in known:
            signs.append(("new_address", None))
        cookie = request.COOKIES.get(DEVICE_COOKIE, "")
        device = (
            KnownDevice.objects.filter(
                user=user, device_hash=hashlib.sha256(cookie.encode()).hexdigest()
            ).first()
            if cookie
            else None
        )
        if device is None or device.first_seen >= context_since:
            signs.append(("new_device", device.first_seen if device else None))
    return signs


def shared_iban(change: BankDetailsChange) -> bool:
    """The same account given by another organisation (its IBAN, or a change of its own): a mule account."""
    index = bytes(change.iban_index)
    others = Professional.objects.exclude(pk=change.professional_id)
    if others.filter(iban_index=index).exists():
        return True
    return (
        BankDetailsChange.objects.filter(iban_index=index)
        .exclude(professional_id=change.professional_id)
        .exclude(status__in=[BankDetailsChange.Status.CANCELLED, BankDetailsChange.Status.REPLACED])
        .exists()
    )


@receiver(bank_change_requested)
def judge_bank_change(
    sender, change: BankDetailsChange, user: User | None, request=None, **kwargs
) -> list[str]:
    """Raise the alert when the change looks like a takeover; return the warnings for the notices (French,
    like the notices themselves)."""
    if not engine.enabled() or user is None:
        return []
    signs = takeover_signs(user, request, change.requested_at)
    if shared_iban(change):
        signs.append(("iban_shared", None))
    if not signs:
        return []
    with translation.override(settings.LANGUAGE_CODE):
        labels = _sign_labels()
        lines = sorted(
            {f"{labels[sign]} ({_local(when)})" if when else str(labels[sign]) for sign, when in signs}
        )
        organisation = organisation_of(change.professional)
        Alert.objects.create(
            severity=Alert.Severity.CRITICAL,
            signal=SIGNAL,
            level=ALERT,
            response=words.IBAN_HELD,
            response_params={"until": change.hold_until.isoformat()},
            user=user,
            organisation=organisation,
            ip_address=client_ip(request) if request is not None else None,
            evidence={
                SIGNAL: {
                    "signs": sorted({sign for sign, _when in signs}),  # codes, in words when shown
                    "sign_times": {sign: when.isoformat() for sign, when in signs if when},
                    "bank_change": change.pk,
                    "iban": change.iban_masked,
                    "hold_until": change.hold_until.isoformat(),
                }
            },
        )
    return lines
