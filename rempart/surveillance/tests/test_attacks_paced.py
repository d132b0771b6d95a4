"""Issue 12's campaign replayed over HTTP: scripts at a person's pace (one check every 6-10 s) against a shop
with a clientele, working through people the shop never saw. Before the new-identities budget, a session
confirmed 31 people and a stolen token 32 before anything stopped them; now at most 10.

Same live server, browser and clock as test_attacks.py; the clock here also drives Django's time, so that a
throttle can be waited out as a patient script would.
"""

from __future__ import annotations

import random

import pytest

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken, User
from rempart.surveillance.models import Alert

from .test_attacks import (
    VICTIM_ADDRESS,
    Browser,
    _assert_scope_tells_the_ledger,
    _ledger_of,
    _portal_answer,
    _suspension,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def behind_one_proxy(settings):
    settings.REMPART_TRUSTED_PROXY_COUNT = 1


@pytest.fixture
def shop(cast, crowd, remember):
    """The optician with two years of clientele (its owner's checks), remembered from the ledger."""
    from rempart.gate import Actor

    owner = Actor(
        channel="portal", organisation_id=cast.optician.pk, user_id=cast.owner.pk, ip=VICTIM_ADDRESS
    )
    remember(owner, crowd.clientele[:150], "OPTI")
    return cast


def test_a_session_scripted_from_the_victims_browser_at_a_human_pace_stops_at_5_new_identities(
    live_server, shop, crowd, synced_clock
):
    victim = Browser(live_server.url, VICTIM_ADDRESS)
    victim.log_in(shop.staff, shop.secrets[shop.staff.email])
    victim.open_counter()
    script = Browser(live_server.url, VICTIM_ADDRESS)  # malware: same address, same browser, same cookies
    script.take_over_browser_of(victim)
    script.open_counter()
    pace = random.Random(12)
    seen, stepped_up_at, signed_out_at = [], None, None
    for attempt, row in enumerate(crowd.strangers[:40], start=1):
        page = script.check_at_counter(row)
        synced_clock.advance(pace.uniform(6, 10))
        if (answer := _portal_answer(page)) is not None:
            seen.append(answer)
        elif page.status == 302 and page.location.startswith("/accounts/2fa/reauthenticate"):
            stepped_up_at = stepped_up_at or attempt
        elif page.status == 302 and page.location.startswith("/accounts/login/"):
            signed_out_at = attempt
            break
        else:
            pytest.fail(f"unexpected answer at attempt {attempt}: {page.status} {page.location}")
    confirmed = [a for a in seen if a.outcome != "no_match"]
    print(
        f"\nHTTP session, 6-10 s: {len(confirmed)} new identities, stepped up at {stepped_up_at}, out at {signed_out_at}"
    )
    assert len(confirmed) == 5 and stepped_up_at == 6 and signed_out_at is not None
    staff = User.objects.get(pk=shop.staff.pk)
    assert staff.suspended_at is not None

    rows = _ledger_of(user_id=staff.pk)
    assert [r.reference for r in rows] == [a.reference for a in seen]
    step_up = Alert.objects.get(user=staff, level=2)
    assert step_up.signal == "new_identities_hour"
    assert step_up.evidence["new_identities_hour"]["new_identities_last_hour"] == 5
    alert, incident = _suspension(user=staff)
    assert alert.signal == "blocked_attempts"
    _assert_scope_tells_the_ledger(incident, rows, user_id=staff.pk, token_id=None)


def test_a_stolen_token_at_a_human_pace_waiting_out_each_429_is_suspended_within_10_new_identities(
    live_server, shop, crowd, synced_clock
):
    token, raw = tokens.create_token(shop.optician, "LGO de la boutique", ["rights:check"], shop.owner)
    thief = Browser(live_server.url, VICTIM_ADDRESS)
    pace = random.Random(32)
    references, throttled, suspended_at = [], [], None
    queue = list(crowd.strangers[:40])
    for attempt in range(1, 80):
        page = thief.check_by_api(raw, queue[0])
        if page.status == 200:
            references.append(page.json()["reference"])
            queue.pop(0)
            synced_clock.advance(pace.uniform(6, 10))
        elif page.status == 429:
            throttled.append(attempt)
            synced_clock.advance(int(page.headers["Retry-After"]))  # a patient script waits as told
        elif page.status == 403:
            suspended_at = attempt
            break
        else:
            pytest.fail(f"unexpected answer at attempt {attempt}: {page.status} {page.text[:200]}")
    print(f"\nHTTP token, 6-10 s, waits out 429: {len(references)} new identities, throttled {throttled}")
    assert suspended_at is not None and throttled and len(references) <= 10
    assert ApiToken.objects.get(pk=token.pk).suspended_at is not None

    rows = _ledger_of(token_id=token.pk)
    assert [r.reference for r in rows] == references and all(r.beneficiary_id for r in rows)
    assert Alert.objects.filter(token=token, level=2, signal="new_identities_hour").exists()  # the throttle
    alert, incident = _suspension(token=token)
    assert alert.signal in ("repeated", "new_identities_day")
    _assert_scope_tells_the_ledger(incident, rows, token_id=token.pk, user_id=None)
