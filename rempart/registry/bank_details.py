"""A professional's bank details: the account Rempart pays. A high-value fraud target, changed with care."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.utils import timezone

from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import mask_iban
from rempart.registry import bank_hold
from rempart.registry.bank_hold import PayTo
from rempart.registry.models import BankDetailsChange, Professional

__all__ = ["PayTo", "account_to_pay", "change_bank_details", "mark_iban_failed", "mask_iban"]

if TYPE_CHECKING:
    from rempart.accounts.models import User


def change_bank_details(
    professional: Professional,
    iban: str,
    bic: str,
    *,
    by: User | None = None,
    request=None,
    now: dt.datetime | None = None,
) -> BankDetailsChange:
    """Ask for a new IBAN: validated (schwifty), stored encrypted, **on hold** (rempart.registry.bank_hold).

    Nothing is paid to it before ``REMPART_IBAN_HOLD_DAYS``; every owner and the operator are told and may
    cancel it. Raises InvalidIdentifier or BankChangeRefused with a safe reason (never the IBAN).
    """
    return bank_hold.request_change(professional, iban, bic, by=by, request=request, now=now)


def account_to_pay(professional: Professional, at: dt.datetime | None = None) -> PayTo:
    """The account a payment made at ``at`` (default: now) must go to; the interface for payment runs.

    During a change's hold the previous IBAN is paid (``held_reason="iban_on_hold"`` when there is none);
    once the hold ended, the new one, whether or not the release was written down yet. Decided in
    rempart.registry.bank_hold so that no other module reads an IBAN in clear. For a run over many
    professionals, ``prefetch_related("bank_changes")`` spares one query each.
    """
    return bank_hold.account_at(professional, at or timezone.now())


def mark_iban_failed(
    professional: Professional,
    *,
    reason_code: str,
    at: dt.datetime,
    iban: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """The bank rejected a transfer to the current IBAN: pay it no more until the owner gives a new one.

    A change whose hold has ended is written down first, so the failure lands on the IBAN paid now. With
    ``iban`` (the one the rejected transfer went to), nothing is marked when it is no longer the
    organisation's: the IBAN that replaced it did not fail. Returns whether it was marked. Telling the
    owners is the caller's job (it knows which transfer and why). ``now``: the present, for the release
    (tests fix it; the default is the clock)."""
    bank_hold.release_due(professional=professional, now=now)
    professional.refresh_from_db(fields=["iban_cipher", "iban_index", "bic"])
    if iban is not None:
        compact = iban.replace(" ", "").upper()
        index = field_cipher().blind_index("iban", compact)
        if not professional.iban_index or bytes(professional.iban_index) != index:
            return False
    professional.iban_failed_at = at
    professional.iban_failed_reason = reason_code[:4]
    professional.save(update_fields=["iban_failed_at", "iban_failed_reason"])
    return True
