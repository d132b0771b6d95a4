"""Balances and ageing from the ledger; the overdue alert; the insurer kill switch through the rights check."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from rempart.accounts.models import Role, SecurityEvent
from rempart.billing import ageing, overdue, receipts
from rempart.billing.models import BillingContract
from rempart.gate import check_rights
from rempart.incidents.tests.conftest import actor_for, card_of, population  # noqa: F401 - fixture
from rempart.surveillance import switches
from rempart.surveillance.engine import CheckRefused
from rempart.surveillance.models import Alert, Switch
from rempart.testing import make_user

from .receivables_support import accepted_claim, statement

TODAY = dt.date(2026, 12, 1)


@pytest.fixture
def treasurer(cast):
    return make_user("tresor1@operator.test", cast.operator, Role.TREASURY)


@pytest.mark.django_db
def test_ageing_buckets_fifo_and_balance_at_any_date(cast, treasurer):
    insurer = cast.insurer.insurer
    for cents, day in [(1_000, TODAY - dt.timedelta(days=100)), (2_000, TODAY - dt.timedelta(days=65)),
                       (4_000, TODAY - dt.timedelta(days=31)), (8_000, TODAY - dt.timedelta(days=2))]:  # fmt: skip
        accepted_claim(insurer, cast.optician, cents, day)
    receipts.record_receipt(
        insurer, 1_500, received_on=TODAY - dt.timedelta(days=1), user=treasurer, reference="V1"
    )

    row = ageing.position(insurer, TODAY)
    assert row.balance_cents == 15_000 - 1_500
    # FIFO: the 15,00 € paid settle the 100-day debit and half of the 65-day one
    assert (row.ageing.days_90_plus_cents, row.ageing.days_60_cents) == (0, 1_500)
    assert (row.ageing.days_30_cents, row.ageing.current_cents) == (4_000, 8_000)
    assert row.ageing.total_cents == row.balance_cents
    earlier = ageing.position(insurer, TODAY - dt.timedelta(days=50))  # before the last two and the receipt
    assert earlier.balance_cents == 3_000 and earlier.ageing.days_30_cents == 1_000
    assert ageing.totals(ageing.positions(TODAY)).balance_cents == 13_500


@pytest.mark.django_db
def test_overdue_alert_raised_past_the_limit_once(cast, treasurer):
    insurer = cast.insurer.insurer
    BillingContract.objects.create(insurer=insurer, overdue_alert_days=30)
    today = timezone.localdate()
    old = statement(insurer, 10_000, due=today - dt.timedelta(days=45))
    statement(insurer, 3_000, due=today - dt.timedelta(days=5))

    late = overdue.overdue_insurers()[0]
    assert (late.days, late.statement_number, late.unpaid_cents) == (45, old.number, 13_000)
    alerts = overdue.raise_alerts()
    assert len(alerts) == 1 and alerts[0].signal == "insurer_overdue"
    assert alerts[0].organisation == cast.insurer and alerts[0].evidence["insurer_overdue"]["days"] == 45
    assert overdue.raise_alerts() == []  # not again while the first one is open

    receipts.record_receipt(insurer, 10_000, received_on=today, user=treasurer, reference="V2")
    late = overdue.overdue_insurers()[0]
    assert (
        late.days == 5 and not late.beyond_limit
    )  # the old statement is settled; the next one is 5 days late
    Alert.objects.update(status=Alert.Status.RESOLVED)
    assert overdue.raise_alerts() == []


@pytest.mark.django_db
def test_overdue_command_for_the_scheduler(cast):
    insurer = cast.insurer.insurer
    BillingContract.objects.create(insurer=insurer, overdue_alert_days=10)
    statement(insurer, 500, due=timezone.localdate() - dt.timedelta(days=11))
    out = io.StringIO()
    call_command("billing", "overdue", stdout=out)
    assert "123456789" in out.getvalue() and "11" in out.getvalue()
    assert Alert.objects.filter(signal="insurer_overdue").count() == 1


@pytest.mark.django_db
def test_switch_off_cuts_only_that_insurers_cards_with_a_clear_message(cast, population, treasurer):  # noqa: F811
    first, second = population.insurers
    mine, theirs = population.people[first.pk], population.people[second.pk]
    actor = actor_for(cast.staff)
    BillingContract.objects.create(insurer=first, overdue_alert_days=30)
    statement(first, 10_000, due=timezone.localdate() - dt.timedelta(days=40))
    alert = overdue.raise_alerts()[0]

    switch = overdue.switch_off_insurer(first, user=treasurer, alert=alert)
    assert overdue.switch_off_insurer(first, user=treasurer) == switch  # once
    switches.forget()
    with pytest.raises(CheckRefused) as refused:
        check_rights(actor, card_of(mine[0]))
    assert refused.value.code == "switched_off" and refused.value.status == 503
    assert "cartes de Mutuelle Test" in refused.value.message and "tiers payant" in refused.value.message
    assert check_rights(actor, card_of(theirs[0])) is not None  # everyone else goes on
    assert check_rights(actor_for(cast.outsider), card_of(theirs[1], "PHAR")) is not None
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.handled_by == treasurer
    assert SecurityEvent.objects.filter(tag="billing.overdue_switch_off").exists()
    assert SecurityEvent.objects.filter(tag="switch.off").exists()

    switches.switch_on(switch)
    assert check_rights(actor, card_of(mine[1])) is not None
    with pytest.raises(PermissionError):
        overdue.switch_off_insurer(first, user=cast.staff)
    assert Switch.objects.count() == 1
