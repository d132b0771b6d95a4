"""The IBAN hold: a new IBAN is paid only once ``REMPART_IBAN_HOLD_DAYS`` have passed, and everyone is told.

The *fraude au changement de RIB*: someone who took over an owner's account (or holds their phished factor)
swaps the IBAN and waits for the next payment run. Here the new IBAN waits; every owner and the operator are
emailed at once (mask only) and any of them can cancel it; meanwhile the organisation is paid on the previous
IBAN, or not at all when it had none. A second request while one waits *replaces* it and the hold restarts
(the owners are told again): a typo is corrected in one step, and a thief gains nothing by it.

Rules only, no HTTP: views pass the request so that events carry the address and user agent. Releasing is
lazy: ``account_at`` answers as if every hold that ended had been released, whether or not
``rempart release-bank-changes`` ran; the command (and every request) only writes it down.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Membership, Organisation, Role, User
from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import mask_iban, validate_bic, validate_iban
from rempart.registry.models import BankDetailsChange, Professional


@dataclass(frozen=True)
class PayTo:
    """Where a payment made now goes: the IBAN in clear (for the bank file only), or why it is held."""

    iban: str | None
    bic: str
    masked: str
    held_reason: str = ""  # "no_iban" | "iban_on_hold" | "iban_failed" when iban is None


log = logging.getLogger("rempart.registry")
Status = BankDetailsChange.Status
LIVE = (Status.PENDING, Status.RELEASED)  # the changes that were or will be paid; the others never are

# Operator staff who may cancel a pending change (every operator role: cancelling only protects).
CANCELLER_ROLES = {Role.ADMIN, Role.SUPPORT, Role.SECURITY, Role.TREASURY}
# Who at the operator is emailed when REMPART_OPERATOR_ALERT_EMAIL is empty.
OPERATOR_NOTICE_ROLES = (Role.SECURITY, Role.ADMIN, Role.TREASURY)

# Sent inside the request's transaction once a change is recorded (``change``, ``user``, ``request``).
# Receivers (rempart.surveillance.bank_change) return a list of warnings in words, added to the notices;
# the registry does not depend on surveillance.
bank_change_requested = Signal()


class BankChangeRefused(Exception):
    """A request or cancellation that cannot be done; the message is safe to show (never an IBAN)."""


def hold_period() -> dt.timedelta:
    return dt.timedelta(days=max(0, settings.REMPART_IBAN_HOLD_DAYS))


# --- who may -------------------------------------------------------------------------------------------


def organisation_of(professional: Professional) -> Organisation | None:
    return Organisation.objects.filter(professional=professional).first()


def may_request(user: User, professional: Professional) -> bool:
    """Only an owner of the professional's own organisation asks for a new IBAN (with a fresh factor)."""
    membership = user.membership
    return (
        membership is not None
        and membership.role == Role.OWNER
        and membership.organisation.professional_id == professional.pk
    )


def may_cancel(user: User, change: BankDetailsChange) -> bool:
    """Any owner of the organisation, or any operator staff member."""
    return may_request(user, change.professional) or roles.is_operator(user, CANCELLER_ROLES)


# --- reading -------------------------------------------------------------------------------------------


def pending_change(professional: Professional) -> BankDetailsChange | None:
    return professional.bank_changes.filter(status=Status.PENDING).first()


def pending_changes() -> Iterable[BankDetailsChange]:
    """Every change still waiting, the soonest to be applied first (the operator console)."""
    return (
        BankDetailsChange.objects.filter(status=Status.PENDING)
        .select_related("professional", "requested_by")
        .order_by("hold_until", "pk")
    )


def _decrypt(blob) -> str:
    return field_cipher().decrypt("iban", bytes(blob))


def account_at(professional: Professional, at: dt.datetime) -> PayTo:
    """Where a payment made at ``at`` goes, from the professional's changes (prefetch ``bank_changes`` for many).

    The first live change whose hold has not ended at ``at`` is not paid yet: what was there before it is
    (its previous IBAN, kept with it). When every hold has ended, the latest change is paid, released or not.
    """
    changes = sorted(
        (c for c in professional.bank_changes.all() if c.status in LIVE), key=lambda c: (c.hold_until, c.pk)
    )
    upcoming = next((c for c in changes if c.hold_until > at), None)
    if upcoming is not None:
        if upcoming.previous_iban_cipher is None:
            reason = "iban_on_hold" if at >= upcoming.requested_at else "no_iban"
            return PayTo(None, upcoming.bic, upcoming.iban_masked, reason)
        iban = _decrypt(upcoming.previous_iban_cipher)
        # A failure marks the IBAN paid now: the previous one of the pending change (not an older one).
        if upcoming.status == Status.PENDING and professional.iban_failed_at:
            return PayTo(None, upcoming.previous_bic, mask_iban(iban), "iban_failed")
        return PayTo(iban, upcoming.previous_bic, mask_iban(iban))
    latest = changes[-1] if changes else None
    if latest is not None and latest.status == Status.PENDING:  # its hold ended; not written down yet
        failed = professional.iban_failed_at is not None and professional.iban_failed_at >= latest.hold_until
        if failed:
            return PayTo(None, latest.bic, latest.iban_masked, "iban_failed")
        return PayTo(_decrypt(latest.iban_cipher), latest.bic, latest.iban_masked)
    if not professional.iban_cipher:
        return PayTo(None, "", "", "no_iban")
    iban = _decrypt(professional.iban_cipher)
    if professional.iban_failed_at:
        return PayTo(None, professional.bic, mask_iban(iban), "iban_failed")
    return PayTo(iban, professional.bic, mask_iban(iban))


# --- asking, cancelling, releasing ---------------------------------------------------------------------


def request_change(
    professional: Professional,
    iban: str,
    bic: str,
    *,
    by: User | None,
    request=None,
    now: dt.datetime | None = None,
) -> BankDetailsChange:
    """Record a new IBAN on hold, replace a change still waiting, tell every owner and the operator.

    Raises InvalidIdentifier (bad IBAN or BIC) or BankChangeRefused with a safe reason. The notices are sent
    inside the transaction: if they cannot be sent, nothing is recorded (a change nobody was told of is the
    very thing the hold prevents); the caller gets the mail error.
    """
    iban = validate_iban(iban)
    bic = validate_bic(bic, iban)
    now = now or timezone.now()
    cipher = field_cipher()
    index = cipher.blind_index("iban", iban)
    with transaction.atomic():
        release_due(now=now, professional=professional)
        professional = Professional.objects.select_for_update().get(pk=professional.pk)
        current = bytes(professional.iban_index) if professional.iban_index else None
        if current == index and not professional.iban_failed_at:
            raise BankChangeRefused(_("Ce compte est déjà celui sur lequel vous êtes payé."))
        replaced = pending_change(professional)
        if replaced is not None and bytes(replaced.iban_index) == index:
            raise BankChangeRefused(_("Ce compte est déjà en attente : rien n'a été changé."))
        organisation = organisation_of(professional)
        if replaced is not None:
            replaced.status, replaced.cancelled_by, replaced.cancelled_at = Status.REPLACED, by, now
            replaced.save(update_fields=["status", "cancelled_by", "cancelled_at"])
            record_event(
                "bank.change_cancelled", request=request, user=by, organisation=organisation,
                change=replaced.pk, iban=replaced.iban_masked, replaced=True,
            )  # fmt: skip
        previous_iban = _decrypt(professional.iban_cipher) if professional.iban_cipher else None
        change = BankDetailsChange.objects.create(
            professional=professional,
            iban_cipher=cipher.encrypt("iban", iban),
            iban_index=index,
            iban_masked=mask_iban(iban),
            bic=bic,
            previous_iban_cipher=professional.iban_cipher if previous_iban else None,
            previous_iban_masked=mask_iban(previous_iban) if previous_iban else "",
            previous_bic=professional.bic if previous_iban else "",
            requested_by=by,
            requested_at=now,
            hold_until=now + hold_period(),
        )
        record_event(
            "bank.change_requested", request=request, user=by, organisation=organisation, change=change.pk,
            iban=change.iban_masked, previous=change.previous_iban_masked,
            hold_until=change.hold_until.isoformat(), replaced=replaced.pk if replaced else None,
        )  # fmt: skip
        answers = bank_change_requested.send(
            sender=BankDetailsChange, change=change, user=by, request=request
        )
        warnings = [str(w) for _receiver, found in answers for w in (found or [])]
        _notify_requested(change, organisation, by, warnings, replaced=replaced is not None)
    return change


def cancel_change(
    change: BankDetailsChange, *, by: User, request=None, now: dt.datetime | None = None
) -> BankDetailsChange:
    """Cancel a change still on hold: it is never paid. The owners and the operator are told."""
    now = now or timezone.now()
    with transaction.atomic():
        change = (
            BankDetailsChange.objects.select_for_update().select_related("professional").get(pk=change.pk)
        )
        if change.status != Status.PENDING:
            raise BankChangeRefused(_("Ce changement n'est plus en attente : il ne peut plus être annulé."))
        if change.hold_until <= now:
            raise BankChangeRefused(
                _(
                    "La période d'attente de ce changement est terminée : il est appliqué. Demandez un autre changement."
                )
            )
        change.status, change.cancelled_by, change.cancelled_at = Status.CANCELLED, by, now
        change.save(update_fields=["status", "cancelled_by", "cancelled_at"])
        organisation = organisation_of(change.professional)
        record_event(
            "bank.change_cancelled", request=request, user=by, organisation=organisation, change=change.pk,
            iban=change.iban_masked, by_operator=roles.is_operator(by),
        )  # fmt: skip
    _notify_cancelled(change, organisation, by)
    return change


def release_due(
    *, now: dt.datetime | None = None, professional: Professional | None = None
) -> list[BankDetailsChange]:
    """Write down every change whose hold has ended: it becomes the organisation's IBAN (a failure recorded
    before the release was about the previous IBAN and is cleared). Idempotent; owners are told."""
    now = now or timezone.now()
    due = BankDetailsChange.objects.filter(status=Status.PENDING, hold_until__lte=now)
    if professional is not None:
        due = due.filter(professional=professional)
    released = []
    for pk in list(due.values_list("pk", flat=True)):
        with transaction.atomic():
            change = (
                BankDetailsChange.objects.select_for_update().filter(pk=pk, status=Status.PENDING).first()
            )
            if change is None:  # released or cancelled meanwhile
                continue
            target = Professional.objects.select_for_update().get(pk=change.professional_id)
            target.iban_cipher = change.iban_cipher
            target.iban_index = change.iban_index
            target.bic = change.bic
            fields = ["iban_cipher", "iban_index", "bic"]
            if target.iban_failed_at is None or target.iban_failed_at < change.hold_until:
                target.iban_failed_at, target.iban_failed_reason = None, ""
                fields += ["iban_failed_at", "iban_failed_reason"]
            target.save(update_fields=fields)
            change.status, change.released_at = Status.RELEASED, now
            change.save(update_fields=["status", "released_at"])
            organisation = organisation_of(target)
            record_event(
                "bank.change_released", organisation=organisation, change=change.pk, iban=change.iban_masked,
                hold_until=change.hold_until.isoformat(),
            )  # fmt: skip
        _notify_released(change, organisation)
        released.append(change)
    return released


# --- notices -------------------------------------------------------------------------------------------


def owner_emails(organisation: Organisation | None) -> list[str]:
    if organisation is None:
        return []
    owners = Membership.objects.filter(organisation=organisation, role=Role.OWNER).select_related("user")
    return sorted({m.user.email for m in owners if m.user.is_active})


def operator_emails() -> list[str]:
    """REMPART_OPERATOR_ALERT_EMAIL, or the operator's security, admin and treasury staff."""
    configured = list(getattr(settings, "REMPART_OPERATOR_ALERT_EMAIL", []) or [])
    if configured:
        return configured
    staff = Membership.objects.filter(
        organisation__kind=Organisation.Kind.OPERATOR, role__in=OPERATOR_NOTICE_ROLES, user__is_active=True
    ).values_list("user__email", flat=True)
    return sorted(set(staff))


def _urls() -> dict[str, str]:
    base = settings.REMPART_BASE_URL.rstrip("/")
    return {
        "portal_url": base + reverse("accounts:bank_details"),
        "console_url": base + reverse("accounts:operator_bank_changes"),
    }


def _context(change: BankDetailsChange, organisation: Organisation | None, **extra) -> dict:
    return {
        "change": change,
        "organisation": organisation,
        "professional": change.professional,
        "requested_at": timezone.localtime(change.requested_at),
        "hold_until": timezone.localtime(change.hold_until),
        **_urls(),
        **extra,
    }


def _send(subject: str, template: str, context: dict, recipients: list[str], *, fail_silently: bool) -> None:
    if not recipients:
        return
    try:
        send_mail(subject, render_to_string(template, context), None, recipients)
    except OSError:
        if not fail_silently:
            raise
        log.warning("bank change %s: notice %s could not be sent", context["change"].pk, template)


def _notify_requested(change, organisation, by, warnings: list[str], *, replaced: bool) -> None:
    context = _context(change, organisation, actor=by, warnings=warnings, replaced=replaced)
    _send(
        "Rempart — demande de changement de coordonnées bancaires",
        "accounts/email/bank_change_requested.txt", context, owner_emails(organisation), fail_silently=False,
    )  # fmt: skip
    _send(
        f"Rempart — changement d'IBAN en attente : {change.professional.name}",
        "accounts/email/bank_change_operator.txt", context, operator_emails(), fail_silently=False,
    )  # fmt: skip


def _notify_cancelled(change, organisation, by) -> None:
    context = _context(change, organisation, actor=by, by_operator=roles.is_operator(by))
    recipients = sorted(set(owner_emails(organisation)) | set(operator_emails()))
    _send(
        "Rempart — changement de coordonnées bancaires annulé",
        "accounts/email/bank_change_cancelled.txt", context, recipients, fail_silently=True,
    )  # fmt: skip


def _notify_released(change, organisation) -> None:
    _send(
        "Rempart — nouvelles coordonnées bancaires appliquées",
        "accounts/email/bank_change_released.txt", _context(change, organisation),
        owner_emails(organisation), fail_silently=True,
    )  # fmt: skip
