"""The response ladder contains scripted abuse within a handful of records, and never bothers a normal counter."""

import pytest
from django.core import mail
from django.utils import timezone

from rempart.accounts.models import User
from rempart.gate import Actor, check_rights
from rempart.incidents.models import Incident
from rempart.surveillance import canaries
from rempart.surveillance.engine import CheckRefused
from rempart.surveillance.models import Alert

from .conftest import COL, card_of


def _portal(user, ip="198.51.100.23", proved=None):
    return Actor(channel="portal", organisation_id=user.membership.organisation_id, user_id=user.pk, ip=ip,
                 session_ref="hijacked", second_factor_at=proved)  # fmt: skip


def _script(actor, rows, clock, *, spacing=1.0, miss=False):
    """Run checks like a script: returns (confirmed, refused_at_attempt, attempts)."""
    confirmed, refused_at = 0, None
    for attempt, row in enumerate(rows, start=1):
        row = list(row)
        if miss:
            row[COL["adherent_number"]] = f"ZZ-{attempt:06d}"
        try:
            answer = check_rights(actor, card_of(row))
        except CheckRefused as exc:
            refused_at = refused_at or (attempt, exc.code)
        else:
            confirmed += answer.outcome != "no_match"
        clock.advance(spacing)
        if User.objects.get(pk=actor.user_id).suspended_at:
            return confirmed, refused_at, attempt
    return confirmed, refused_at, len(rows)


@pytest.mark.django_db(transaction=True)
def test_a_hijacked_session_at_one_per_second_is_suspended_before_20_confirmations(
    cast, population, clock, store
):
    rows = population.people[population.insurers[0].pk] + population.people[population.insurers[1].pk]
    confirmed, refused_at, attempts = _script(_portal(cast.staff), rows[:60], clock)
    staff = User.objects.get(pk=cast.staff.pk)
    assert staff.suspended_at is not None, "never suspended"
    assert confirmed < 20, confirmed
    assert refused_at[1] == "step_up_required" and refused_at[0] <= 8  # stepped up within the first minute
    alert = Alert.objects.filter(user=staff, level=3).get()
    assert alert.severity == "critical" and alert.incident is not None
    incident = alert.incident
    assert incident.source == Incident.Source.ALERT and incident.scopes.get().people == confirmed
    assert "suspendu" in mail.outbox[-1].body and mail.outbox[-1].to == [cast.owner.email]


@pytest.mark.django_db(transaction=True)
def test_a_guessing_script_is_suspended_within_50_misses(cast, population, clock, store):
    rows = population.people[population.insurers[0].pk] * 3
    confirmed, refused_at, attempts = _script(_portal(cast.staff), rows[:80], clock, spacing=20, miss=True)
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None
    assert attempts <= 50 and confirmed == 0


@pytest.mark.django_db(transaction=True)
def test_a_canary_stops_the_actor_at_the_first_hit(cast, population, clock):
    insurer = population.insurers[0]
    planted = canaries.plant(insurer, 2, seed=7)
    card = canaries.sealed_card(planted[0])
    row = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        row[COL[name]] = card[name]
    actor = _portal(cast.staff)
    answer = check_rights(actor, card_of(row))
    assert answer.outcome != "no_match"  # the canary answers like anyone: the actor learns nothing
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None
    alert = Alert.objects.get(signal="canary")
    assert alert.severity == "critical" and alert.evidence["canary"]["insurer"] == insurer.pk
    assert alert.incident is not None


@pytest.mark.django_db(transaction=True)
def test_a_normal_counter_day_is_never_stepped_up(cast, population, clock, store):
    """40 checks spread over opening hours (9:00-19:00), 10 % misses, two of them a family at once."""
    rows = population.people[population.insurers[0].pk]
    actor = _portal(cast.staff, ip="203.0.113.7", proved=timezone.now().timestamp())
    start = timezone.localtime().replace(hour=9, minute=0).timestamp()
    clock.now = start
    for n in range(40):
        row = list(rows[n % len(rows)])
        if n % 10 == 3:
            row[COL["birth_date"]] = "1901-01-01"  # a typo at the counter: no match
        check_rights(actor, card_of(row))  # raises CheckRefused if stepped up
        clock.advance(15 if n % 8 == 0 else 900)  # now and then two patients in a row
    assert not Alert.objects.filter(level__gte=2).exists()
    assert User.objects.get(pk=cast.staff.pk).suspended_at is None


@pytest.mark.django_db(transaction=True)
def test_a_stolen_token_is_throttled_then_suspended(cast, population, clock, store):
    from rempart.accounts import tokens

    token, _raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    actor = Actor(channel="api", organisation_id=cast.optician.pk, token_id=token.pk, ip="192.0.2.50")
    rows = population.people[population.insurers[0].pk]
    confirmed, codes = 0, []
    for row in rows[:40]:
        try:
            confirmed += check_rights(actor, card_of(row)).outcome != "no_match"
        except CheckRefused as exc:
            codes.append(exc.code)
            assert exc.status == 429 and exc.retry_after
        clock.advance(1)
        token.refresh_from_db()
        if token.suspended_at:
            break
    assert token.suspended_at is not None and confirmed <= 11 and codes[0] == "rate_limited"


@pytest.mark.django_db(transaction=True)
def test_step_up_passed_by_the_real_person_lets_them_go_on(cast, population, clock):
    rows = population.people[population.insurers[0].pk]
    actor = _portal(cast.staff)
    for row in rows[:7]:
        check_rights(actor, card_of(row))
    with pytest.raises(CheckRefused):
        check_rights(actor, card_of(rows[8]))
    proved = _portal(cast.staff, proved=timezone.now().timestamp() + 1)
    clock.advance(5)
    check_rights(proved, card_of(rows[9]))  # the second factor again: the counter goes on
    assert User.objects.get(pk=cast.staff.pk).suspended_at is None


def test_counters_are_shared_between_processes(cast, store, transactional_db):
    """Two server processes (forked) counting on the same key see one total."""
    import multiprocessing

    from django.db import connections

    from rempart.surveillance.counters import MINUTE, Count, get_store

    connections.close_all()
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        pool.map(_hit_many, [(store, 25)] * 2)
    values = get_store().update([Count("u:test-shared", MINUTE, add=0)], [])
    assert values["u:test-shared|minute"] == 50


def _hit_many(args):
    from django.conf import settings
    from django.db import connections

    from rempart.surveillance.counters import MINUTE, Count, get_store

    store_name, n = args
    connections.close_all()
    settings.REMPART_SURVEILLANCE_STORE = store_name
    for _ in range(n):
        get_store().update([Count("u:test-shared", MINUTE)], [])
    connections.close_all()
