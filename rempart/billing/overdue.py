"""Insurers that do not pay: an operator alert past the contract's limit, and the kill switch for their cards.

How late an insurer is, at a date: its receipts (the ``receipt`` credits of its receivable in the money ledger)
settle its issued statements in due-date order (FIFO); the first statement they do not cover in full is the
oldest unpaid one, and the insurer is ``days`` late when its due date is ``days`` behind. Past the contract's
``overdue_alert_days`` an Alert (signal ``insurer_overdue``) is raised in the surveillance queue, once while
an earlier one for the same insurer is still open or acknowledged. ``rempart billing overdue`` runs the check
(for a scheduler, daily).

From the alert (or the treasury's ageing page) the operator may cut tiers payant for the insurer's cards with
the existing kill switch (``Switch.Target.INSURER``): the rights checks of its cards are refused with a clear
message, everyone else's go on (``surveillance/switches.py``). Switching back on is the surveillance panel's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.accounting import service as accounting
from rempart.accounting.models import Posting, TransactionKind
from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, Role
from rempart.billing.models import BillingContract, Statement
from rempart.registry.models import Insurer
from rempart.surveillance import switches
from rempart.surveillance.labels import TREASURY_MAY_SWITCH_OFF
from rempart.surveillance.models import Alert, Switch

SIGNAL = "insurer_overdue"
SWITCH_ROLES = {Role.TREASURY, Role.ADMIN, Role.SECURITY}


@dataclass(frozen=True)
class Overdue:
    insurer_id: int
    amc_number: str
    name: str
    days: int  # behind the due date of the oldest unpaid statement
    limit_days: int
    statement_number: str
    due_date: dt.date
    unpaid_cents: int  # issued statements not covered by receipts

    @property
    def beyond_limit(self) -> bool:
        return self.days > self.limit_days


def received_cents(insurer_id: int, at: dt.date) -> int:
    """Receipts credited to the insurer's receivable, effective on or before ``at`` (positive)."""
    account = accounting.insurer_receivable(insurer_id)
    total = Posting.objects.filter(
        account=account, effective_date__lte=at, transaction__kind=TransactionKind.RECEIPT
    ).aggregate(s=Sum("amount_cents", default=0))["s"]
    return -total


def lateness(insurer, at: dt.date) -> Overdue | None:
    """How late the insurer is at ``at`` (None: nothing due and unpaid). Without a billing contract, the
    contract's default limit applies."""
    contract = getattr(insurer, "billing_contract", None)
    limit = (
        contract.overdue_alert_days
        if contract
        else BillingContract._meta.get_field("overdue_alert_days").default
    )
    left = received_cents(insurer.pk, at)
    due = Statement.objects.filter(insurer=insurer, due_date__lt=at).order_by("due_date", "issued_at", "pk")
    oldest, unpaid = None, 0
    for statement in due.only("number", "due_date", "total_cents"):
        covered = (
            min(max(left, 0), statement.total_cents) if statement.total_cents > 0 else statement.total_cents
        )
        left -= statement.total_cents
        if statement.total_cents > 0 and covered < statement.total_cents:
            unpaid += statement.total_cents - covered
            oldest = oldest or statement
    if oldest is None:
        return None
    return Overdue(insurer.pk, insurer.amc_number, insurer.name, (at - oldest.due_date).days,
                   limit, oldest.number, oldest.due_date, unpaid)  # fmt: skip


def overdue_insurers(at: dt.date | None = None) -> list[Overdue]:
    """Every insurer with an unpaid statement past its due date, the latest first."""
    at = at or timezone.localdate()
    insurers = (
        Insurer.objects.filter(statements__due_date__lt=at).distinct().select_related("billing_contract")
    )
    found = [lateness(insurer, at) for insurer in insurers]
    return sorted((o for o in found if o is not None), key=lambda o: (-o.days, o.amc_number))


def raise_alerts(at: dt.date | None = None) -> list[Alert]:
    """An alert per insurer overdue beyond its contract's limit (none while an earlier one is unresolved)."""
    raised = []
    for late in overdue_insurers(at):
        if not late.beyond_limit:
            continue
        if Alert.objects.filter(
            signal=SIGNAL, evidence__insurer_overdue__insurer_id=late.insurer_id,
            status__in=(Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED),
        ).exists():  # fmt: skip
            continue
        organisation = Organisation.objects.filter(insurer_id=late.insurer_id).first()
        evidence = {
            "insurer_id": late.insurer_id, "amc_number": late.amc_number, "name": late.name, "days": late.days,
            "limit_days": late.limit_days, "statement": late.statement_number,
            "due_date": late.due_date.isoformat(), "unpaid_cents": late.unpaid_cents,
        }  # fmt: skip
        raised.append(
            Alert.objects.create(
                severity=Alert.Severity.CRITICAL
                if late.days > 2 * late.limit_days
                else Alert.Severity.WARNING,
                signal=SIGNAL,
                level=1,
                organisation=organisation,
                evidence={SIGNAL: evidence},
                response=TREASURY_MAY_SWITCH_OFF,  # a code, in words when shown (rempart.surveillance.labels)
            )  # fmt: skip
        )
    return raised


def can_switch_off(user) -> bool:
    return bool(user and user.is_authenticated and roles.is_operator(user, SWITCH_ROLES))


def active_switch(insurer) -> Switch | None:
    return Switch.objects.filter(
        target=Switch.Target.INSURER, insurer=insurer, on_at__isnull=True, channel="", domain=""
    ).first()


def switch_off_insurer(
    insurer, *, user, reason: str = "", alert: Alert | None = None, request=None
) -> Switch:
    """Cut tiers payant for the insurer's cards (every channel and domain): the existing insurer kill switch.

    Idempotent: an active switch for the insurer is returned as is."""
    if not can_switch_off(user):
        raise PermissionError("operator treasury, admin or security only")
    existing = active_switch(insurer)
    if existing is not None:
        return existing
    reason = reason.strip() or _("Assureur %(amc)s en retard de paiement") % {"amc": insurer.amc_number}
    switch = switches.switch_off(target=Switch.Target.INSURER, insurer=insurer, reason=reason, by=user)
    switch = Switch.objects.select_related("insurer").get(pk=switch.pk)
    record_event("switch.off", request=request, **switches.event_owner(switch), **switches.event_details(switch),
                 by=user.email)  # fmt: skip
    record_event("billing.overdue_switch_off", request=request, user=user, insurer=insurer.amc_number,
                 switch=switch.pk, alert=alert.pk if alert else None)  # fmt: skip
    if alert is not None and alert.status == Alert.Status.OPEN:
        Alert.objects.filter(pk=alert.pk).update(
            status=Alert.Status.ACKNOWLEDGED, handled_by=user, handled_at=timezone.now()
        )
    return switch
