"""Issue 14, the IBAN hold: a new IBAN is paid only after its hold, the previous one meanwhile (or nothing when
there is none); a cancelled change is never paid; every owner and the operator are told, masks only."""

from __future__ import annotations

import base64
import datetime as dt
import os
import re

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from rempart.accounts.models import Role, SecurityEvent
from rempart.lib import crypto
from rempart.lib.identifiers import InvalidIdentifier
from rempart.registry import bank_hold
from rempart.registry.bank_details import account_to_pay, change_bank_details, mark_iban_failed, mask_iban
from rempart.registry.bank_hold import BankChangeRefused
from rempart.registry.models import BankDetailsChange, Professional
from rempart.testing import make_user

OLD = "FR7630004000010001234567830"
NEW = "FR7630006000011234567890189"
OTHER = "DE89370400440532013000"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
Status = BankDetailsChange.Status


@pytest.fixture(autouse=True)
def operator_inbox(settings):
    settings.REMPART_OPERATOR_ALERT_EMAIL = ["tresorerie@operateur.test"]
    settings.REMPART_IBAN_HOLD_DAYS = 5


@pytest.fixture
def shop(cast) -> Professional:
    """The optician, paid on OLD (set as the operator's onboarding does: no hold for the first IBAN)."""
    professional = cast.optician.professional
    professional.set_iban(OLD)
    professional.bic = "BNPAFRPP"
    professional.save()
    return professional


def fresh(professional: Professional) -> Professional:
    return Professional.objects.get(pk=professional.pk)


def paid(professional: Professional, at: dt.datetime) -> str | None:
    return account_to_pay(fresh(professional), at).iban


def spellings(iban: str) -> list[str]:
    """An IBAN as it could leak: compact, grouped by 4, and its middle digits (the account number)."""
    grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return [iban, grouped, iban[4:-4]]


def assert_no_iban(text: str) -> None:
    for iban in (OLD, NEW, OTHER):
        for form in spellings(iban):
            assert form not in text, form


def all_mail() -> str:
    return "\n".join(f"{m.subject}\n{m.body}" for m in mail.outbox)


# --- the payment target during and after the hold --------------------------------------------------------


def test_during_the_hold_the_previous_iban_is_paid_and_after_it_the_new_one_without_the_command(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    assert change.status == Status.PENDING and change.hold_until == T0 + 5 * DAY
    assert change.iban_masked == "FR76 •••• 0189" and change.previous_iban_masked == "FR76 •••• 7830"
    for at in (
        T0 - DAY,
        T0,
        T0 + dt.timedelta(seconds=1),
        T0 + DAY,
        T0 + 4 * DAY,
        T0 + 5 * DAY - dt.timedelta(seconds=1),
    ):
        target = account_to_pay(fresh(shop), at)
        assert (target.iban, target.bic, target.masked, target.held_reason) == (
            OLD,
            "BNPAFRPP",
            "FR76 •••• 7830",
            "",
        ), at
    # The hold has ended: the new IBAN is paid although nothing was released yet.
    for at in (T0 + 5 * DAY, T0 + 30 * DAY):
        target = account_to_pay(fresh(shop), at)
        assert (target.iban, target.bic, target.masked) == (NEW, "AGRIFRPP", "FR76 •••• 0189"), at
    assert fresh(shop).masked_iban() == "FR76 •••• 7830"  # written down only at release

    released = bank_hold.release_due(now=T0 + 5 * DAY + dt.timedelta(minutes=3))
    assert [c.pk for c in released] == [change.pk]
    shop = fresh(shop)
    assert shop.masked_iban() == "FR76 •••• 0189" and shop.bic == "AGRIFRPP"
    change.refresh_from_db()
    assert change.status == Status.RELEASED and change.released_at is not None
    # The same answers as before the release, at every instant.
    assert paid(shop, T0 + DAY) == OLD and paid(shop, T0 + 5 * DAY) == NEW
    assert bank_hold.release_due(now=T0 + 6 * DAY) == []  # idempotent
    assert SecurityEvent.objects.filter(tag="bank.change_released", organisation=cast.optician).count() == 1


def test_without_a_previous_iban_payments_are_held_during_the_hold(cast):
    shop = cast.optician.professional
    assert account_to_pay(shop, T0).held_reason == "no_iban"
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    before = account_to_pay(fresh(shop), T0 - DAY)
    assert before.iban is None and before.held_reason == "no_iban"
    during = account_to_pay(fresh(shop), T0 + 2 * DAY)
    assert (during.iban, during.held_reason, during.masked) == (None, "iban_on_hold", "FR76 •••• 0189")
    assert paid(shop, T0 + 5 * DAY) == NEW
    bank_hold.release_due(now=T0 + 5 * DAY)
    assert paid(shop, T0 + 2 * DAY) is None and paid(shop, T0 + 6 * DAY) == NEW


def test_a_change_cancelled_by_an_owner_is_never_paid(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    mail.outbox.clear()
    bank_hold.cancel_change(change, by=cast.owner, now=T0 + DAY)
    for at in (T0 + DAY, T0 + 5 * DAY, T0 + 365 * DAY):
        assert paid(shop, at) == OLD
    assert bank_hold.release_due(now=T0 + 10 * DAY) == []
    assert fresh(shop).masked_iban() == "FR76 •••• 7830"
    change.refresh_from_db()
    assert change.status == Status.CANCELLED and change.cancelled_by == cast.owner
    event = SecurityEvent.objects.get(tag="bank.change_cancelled")
    assert event.organisation == cast.optician and event.details["iban"] == "FR76 •••• 0189"
    assert not event.details["by_operator"]
    told = {address for m in mail.outbox for address in m.to}
    assert told == {cast.owner.email, "tresorerie@operateur.test"}
    with pytest.raises(BankChangeRefused):  # once is enough
        bank_hold.cancel_change(change, by=cast.owner, now=T0 + 2 * DAY)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPPORT, Role.SECURITY, Role.TREASURY])
def test_operator_staff_of_every_role_may_cancel_and_it_is_never_paid(cast, shop, role):
    person = make_user(f"{role}-2@operator.test", cast.operator, role)
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    assert bank_hold.may_cancel(person, change)
    bank_hold.cancel_change(change, by=person, now=T0 + DAY)
    assert paid(shop, T0 + 6 * DAY) == OLD
    event = SecurityEvent.objects.get(tag="bank.change_cancelled")
    assert event.organisation == cast.optician and event.user == person and event.details["by_operator"]


def test_only_owners_ask_and_only_owners_and_operator_staff_cancel(cast, shop):
    assert bank_hold.may_request(cast.owner, shop)
    for person in (cast.staff, cast.outsider, cast.insurer_member, cast.analyst, cast.admin):
        assert not bank_hold.may_request(person, shop), person.email
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    for person in (cast.staff, cast.outsider, cast.insurer_member):
        assert not bank_hold.may_cancel(person, change), person.email
    assert bank_hold.may_cancel(cast.analyst, change) and bank_hold.may_cancel(cast.admin, change)


def test_after_the_hold_a_change_cannot_be_cancelled_any_more(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    with pytest.raises(BankChangeRefused, match="terminée"):
        bank_hold.cancel_change(change, by=cast.owner, now=T0 + 5 * DAY)
    assert paid(shop, T0 + 5 * DAY) == NEW


def test_a_second_change_replaces_the_waiting_one_and_the_hold_restarts(cast, shop):
    first = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    second = change_bank_details(shop, OTHER, "COBADEFF", by=cast.owner, now=T0 + 3 * DAY)
    first.refresh_from_db()
    assert first.status == Status.REPLACED and second.hold_until == T0 + 8 * DAY
    assert second.previous_iban_masked == "FR76 •••• 7830"
    assert paid(shop, T0 + 5 * DAY) == OLD  # the first one's hold end pays nothing new
    assert paid(shop, T0 + 8 * DAY) == OTHER
    for at in (T0 + DAY, T0 + 6 * DAY, T0 + 100 * DAY):
        assert paid(shop, at) != NEW
    replaced = SecurityEvent.objects.get(tag="bank.change_cancelled")
    assert replaced.details == {"change": first.pk, "iban": "FR76 •••• 0189", "replaced": True}
    requested = SecurityEvent.objects.filter(tag="bank.change_requested").order_by("created_at", "pk")
    assert [e.details["replaced"] for e in requested] == [None, first.pk]


def test_a_change_after_a_released_one_keeps_the_whole_history(cast, shop):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    # Asked after the first hold ended, without the command: the first is written down first.
    change_bank_details(shop, OTHER, "COBADEFF", by=cast.owner, now=T0 + 7 * DAY)
    assert [c.status for c in fresh(shop).bank_changes.order_by("pk")] == [Status.RELEASED, Status.PENDING]
    assert paid(shop, T0 + DAY) == OLD
    assert paid(shop, T0 + 6 * DAY) == NEW
    assert paid(shop, T0 + 11 * DAY) == NEW
    assert paid(shop, T0 + 12 * DAY) == OTHER


def test_the_same_account_again_is_refused_and_changes_nothing(cast, shop):
    with pytest.raises(BankChangeRefused, match="déjà celui"):
        change_bank_details(shop, OLD, "BNPAFRPP", by=cast.owner, now=T0)
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    with pytest.raises(BankChangeRefused, match="déjà en attente"):
        change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0 + DAY)
    assert fresh(shop).bank_changes.get().hold_until == T0 + 5 * DAY  # the hold did not restart


def test_an_invalid_iban_or_bic_records_nothing(cast, shop):
    for iban, bic in (
        (NEW[:-1] + "0", "AGRIFRPP"),
        (NEW, "NOTABIC"),
        (NEW, "COBADEFF"),
    ):  # BIC of another country
        with pytest.raises(InvalidIdentifier) as refused:
            change_bank_details(shop, iban, bic, by=cast.owner, now=T0)
        assert NEW not in str(refused.value)
    assert not BankDetailsChange.objects.exists() and not SecurityEvent.objects.exists() and not mail.outbox


def test_if_the_notices_cannot_be_sent_nothing_is_recorded(cast, shop, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(bank_hold, "send_mail", broken)
    with pytest.raises(OSError):
        change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    assert not BankDetailsChange.objects.exists()
    assert not SecurityEvent.objects.filter(tag__startswith="bank.").exists()
    assert paid(shop, T0 + 10 * DAY) == OLD


# --- a failed IBAN ----------------------------------------------------------------------------------------


def test_a_failure_of_the_previous_iban_during_the_hold_holds_payments_and_the_release_clears_it(cast, shop):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    assert mark_iban_failed(fresh(shop), reason_code="AC04", at=T0 + DAY, iban=OLD, now=T0 + DAY)
    held = account_to_pay(fresh(shop), T0 + 2 * DAY)
    assert (held.iban, held.held_reason, held.masked) == (None, "iban_failed", "FR76 •••• 7830")
    assert paid(shop, T0 + 5 * DAY) == NEW  # the new IBAN did not fail
    bank_hold.release_due(now=T0 + 5 * DAY)
    shop = fresh(shop)
    assert shop.iban_failed_at is None and shop.iban_failed_reason == ""
    assert paid(shop, T0 + 6 * DAY) == NEW


def test_a_failure_reported_once_the_hold_ended_lands_on_the_new_iban(cast, shop):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0 - 6 * DAY)
    assert mark_iban_failed(fresh(shop), reason_code="AC01", at=timezone.now(), iban=NEW)
    shop = fresh(shop)
    assert shop.masked_iban() == "FR76 •••• 0189" and shop.iban_failed_reason == "AC01"
    assert account_to_pay(shop).held_reason == "iban_failed"


def test_a_late_return_for_the_previous_iban_does_not_mark_the_new_one(cast, shop):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0 - 6 * DAY)
    assert not mark_iban_failed(fresh(shop), reason_code="AC04", at=T0 - 5 * DAY, iban=OLD)
    shop = fresh(shop)
    assert shop.iban_failed_at is None and account_to_pay(shop).iban == NEW


def test_giving_the_failed_iban_again_goes_through_the_hold(cast, shop):
    mark_iban_failed(fresh(shop), reason_code="AC04", at=T0 - DAY)
    change_bank_details(shop, OLD, "BNPAFRPP", by=cast.owner, now=T0)  # the owner checked it with the bank
    assert account_to_pay(fresh(shop), T0 + DAY).held_reason == "iban_failed"  # not during the hold
    assert paid(shop, T0 + 5 * DAY) == OLD  # the failure is older than the hold: given again, paid again
    bank_hold.release_due(now=T0 + 5 * DAY)
    assert fresh(shop).iban_failed_at is None and paid(shop, T0 + 6 * DAY) == OLD


# --- notices and events -----------------------------------------------------------------------------------


def test_every_owner_and_the_operator_are_told_at_once_with_masks_only(cast, shop):
    co_owner = make_user("co-owner@shop.test", cast.optician, Role.OWNER)
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    owners = [m for m in mail.outbox if m.to == sorted([cast.owner.email, co_owner.email])]
    operator = [m for m in mail.outbox if m.to == ["tresorerie@operateur.test"]]
    assert len(owners) == 1 and len(operator) == 1
    body = owners[0].body
    assert "FR76 •••• 0189" in body and "FR76 •••• 7830" in body and "6 déc. 2026" in body
    assert "/organisation/banque/" in body and "Annuler ce changement" in body
    assert cast.optician.name in operator[0].subject and "/operateur/banque/" in operator[0].body
    assert cast.staff.email not in {a for m in mail.outbox for a in m.to}  # staff are not owners
    assert_no_iban(all_mail())


def test_without_a_configured_address_the_operators_security_admin_and_treasury_staff_are_told(
    cast, shop, settings
):
    settings.REMPART_OPERATOR_ALERT_EMAIL = []
    treasurer = make_user("treso@operator.test", cast.operator, Role.TREASURY)
    support = make_user("support@operator.test", cast.operator, Role.SUPPORT)
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    operator = [m for m in mail.outbox if cast.owner.email not in m.to]
    assert operator[0].to == sorted([cast.analyst.email, cast.admin.email, treasurer.email])
    assert support.email not in operator[0].to


def test_requested_cancelled_and_released_are_security_events_without_the_iban(cast, shop):
    first = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    bank_hold.cancel_change(first, by=cast.analyst, now=T0 + DAY)
    second = change_bank_details(shop, OTHER, "COBADEFF", by=cast.owner, now=T0 + 2 * DAY)
    bank_hold.release_due(now=T0 + 7 * DAY)
    events = SecurityEvent.objects.filter(tag__startswith="bank.").order_by("created_at", "pk")
    assert [e.tag for e in events] == [
        "bank.change_requested",
        "bank.change_cancelled",
        "bank.change_requested",
        "bank.change_released",
    ]
    assert all(e.organisation == cast.optician for e in events)
    assert events[0].user == cast.owner and events[1].user == cast.analyst and events[3].user is None
    assert events[2].details["change"] == second.pk and events[2].details["iban"] == mask_iban(OTHER)
    assert events[2].details["previous"] == "FR76 •••• 7830"
    assert_no_iban(repr([e.details for e in events]))
    assert_no_iban(all_mail())


def test_the_release_command_writes_down_due_changes_and_tells_the_owners(cast, shop, capsys):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=timezone.now() - 6 * DAY)
    change_bank_details(cast.other_shop.professional, OTHER, "COBADEFF", by=cast.outsider)  # still waiting
    mail.outbox.clear()
    call_command("release_bank_changes")
    out = capsys.readouterr().out
    assert "1 change(s) released, 1 still on hold" in out
    assert_no_iban(out)
    assert fresh(shop).masked_iban() == "FR76 •••• 0189"
    assert [m.to for m in mail.outbox] == [[cast.owner.email]] and "appliquées" in mail.outbox[0].subject
    assert_no_iban(all_mail())


def test_a_payment_run_reads_every_hold_in_one_query(cast, shop, django_assert_num_queries):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    professionals = list(Professional.objects.prefetch_related("bank_changes").order_by("pk"))
    with django_assert_num_queries(0):
        targets = [account_to_pay(p, T0 + DAY) for p in professionals]
    assert [t.iban for t in targets] == [OLD, None]


def test_the_masks_show_country_key_and_last_four_only():
    assert mask_iban(NEW) == "FR76 •••• 0189"
    assert mask_iban("fr76 3000 6000 0112 3456 7890 189") == "FR76 •••• 0189"
    assert mask_iban("FR76") == "••••"
    assert re.fullmatch(r"[A-Z]{2}\d{2} •••• \w{4}", mask_iban(OTHER))


def test_key_rotation_reencrypts_the_ibans_on_hold_and_their_previous_ones(cast, shop, settings):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=T0)
    new_key = base64.b64encode(os.urandom(32)).decode()
    settings.REMPART_DATA_KEYS = f"{settings.REMPART_DATA_KEYS},2:{new_key}"
    settings.REMPART_DATA_KEY_ID = "2"
    crypto.field_cipher.cache_clear()
    try:
        call_command("rotate_keys")
        settings.REMPART_DATA_KEYS = f"2:{new_key}"  # the old key removed: everything still opens
        crypto.field_cipher.cache_clear()
        change = BankDetailsChange.objects.get()
        assert crypto.field_cipher().key_id_of(bytes(change.iban_cipher)) == 2
        assert crypto.field_cipher().key_id_of(bytes(change.previous_iban_cipher)) == 2
        assert paid(shop, T0 + DAY) == OLD and paid(shop, T0 + 5 * DAY) == NEW
    finally:
        crypto.field_cipher.cache_clear()
