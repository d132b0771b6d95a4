"""Issue 12: surveillance's step-up is released per session (and a throttle is held per token).

Before: when the real person answered the second-factor prompt, the account's hold was lifted, and a
session the attacker held (a phishing relay's login, a second stolen session) went on too. Now every
session of the account is held, and only a session that proved the factor again, from where it is used,
goes on. Played over HTTP with separate test clients (own cookies, addresses and browsers).
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from rempart.accounts import tokens
from rempart.accounts.tests.passkey import SoftPasskey
from rempart.gate import Actor, check_rights
from rempart.ledger.models import Disclosure
from rempart.surveillance.engine import CheckRefused
from rempart.surveillance.models import ActorState, Alert
from rempart.testing import login, totp_code

from .conftest import COL, card_of

SHOP, RELAY = "203.0.113.7", "198.51.100.66"
CODE_PROMPT, PASSKEY_PROMPT = "/accounts/2fa/reauthenticate/", "/accounts/2fa/webauthn/reauthenticate/"
REFERENCE = re.compile(r'id="check-reference">([^<]+)<')


def counter_form(row: list[str]) -> dict:
    own_nir = row[COL["nir"]]
    year, month, day = row[COL["birth_date"]].split("-")
    return {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": own_nir or row[COL["ouvrant_droit_nir"]],
        "birth_date": f"{day}/{month}/{year}",
        "birth_rank": "" if own_nir else row[COL["birth_rank"]],
        "domain": "OPTI",
        "care_date": "",
    }


def check(client: Client, row: list[str]) -> str:
    """'answered', 'code' / 'passkey' for the step-up prompt the counter sends to, or 'signed out'."""
    response = client.post("/comptoir/droits/", counter_form(row))
    if response.status_code == 200 and REFERENCE.search(response.content.decode()):
        return "answered"
    assert response.status_code == 302, response.status_code
    if response.url.startswith("/accounts/login/"):
        return "signed out"
    if response.url.startswith(PASSKEY_PROMPT):
        return "passkey"
    assert response.url.startswith(CODE_PROMPT), response.url
    return "code"


def people(population) -> list[list[str]]:
    first, second = population.insurers
    return population.people[first.pk] + population.people[second.pk]


def session_ref_of(user, address: str) -> str:
    refs = set(
        Disclosure.objects.filter(user_id=user.pk, ip_address=address).values_list("session_ref", flat=True)
    )
    assert len(refs) == 1, refs
    return refs.pop()


def test_the_real_person_passing_step_up_does_not_release_the_attackers_session(cast, population, clock):
    secret = cast.secrets[cast.staff.email]
    relay = Client(REMOTE_ADDR=RELAY)  # a phishing relay logged in with the password and a relayed code
    login(relay, cast.staff, secret, step=-1)
    shop = Client(REMOTE_ADDR=SHOP)  # the real person at the counter, in their own session
    login(shop, cast.staff, secret)
    rows = people(population)

    answered = 0
    for row in rows[:20]:  # the script, one check a second, until surveillance steps the account up
        outcome = check(relay, row)
        clock.advance(1)
        if outcome != "answered":
            break
        answered += 1
    assert outcome == "code" and answered <= 7, (outcome, answered)
    assert Alert.objects.get(user=cast.staff, level=2).signal == "velocity_minute"

    assert check(shop, rows[30]) == "code"  # the hold is on the account: the counter is asked too
    proved = shop.post(f"{CODE_PROMPT}?next=/comptoir/droits/", {"code": totp_code(secret, 1)})
    assert proved.status_code == 302 and proved.url == "/comptoir/droits/"
    clock.advance(5)
    assert check(shop, rows[31]) == "answered"  # the person goes on

    for row in rows[20:23]:  # the relay's session stays held, however long it waits
        clock.advance(30)
        assert check(relay, row) == "code"
    assert check(shop, rows[32]) == "answered"
    relay_ref, shop_ref = session_ref_of(cast.staff, RELAY), session_ref_of(cast.staff, SHOP)
    assert relay_ref != shop_ref
    assert Disclosure.objects.filter(session_ref=relay_ref).count() == answered  # nothing after the step-up
    assert Disclosure.objects.filter(session_ref=shop_ref).count() == 2
    assert ActorState.objects.get(actor=f"u:{cast.staff.pk}").holds_sessions(timezone.now())

    # Pushing on: the sixth refused attempt of the hour (the counter's one included) suspends the account.
    assert check(relay, rows[23]) == "signed out"
    cast.staff.refresh_from_db()
    assert cast.staff.suspended_at is not None
    assert Alert.objects.get(user=cast.staff, level=3).signal == "blocked_attempts"


def test_a_new_login_after_the_hold_is_a_proof(cast, population, clock):
    secret = cast.secrets[cast.staff.email]
    shop = Client(REMOTE_ADDR=SHOP)
    login(shop, cast.staff, secret, step=-1)
    rows = people(population)
    outcomes = []
    for row in rows[:10]:
        outcomes.append(check(shop, row))
        clock.advance(1)
    assert "code" in outcomes
    again = Client(REMOTE_ADDR=SHOP)  # the person logs in again (another browser): the second factor, now
    login(again, cast.staff, secret)
    clock.advance(120)
    assert check(again, rows[20]) == "answered"
    assert check(shop, rows[21]) == "code"  # the old session still has to prove it


def test_a_person_with_a_passkey_is_stepped_up_with_the_passkey_only(cast, population, clock):
    key = SoftPasskey()
    key.enrol(cast.staff)
    secret = cast.secrets[cast.staff.email]
    shop = Client(REMOTE_ADDR=SHOP)
    login(shop, cast.staff, secret, step=-1)
    rows = people(population)
    outcomes = []
    for row in rows[:10]:
        outcomes.append(check(shop, row))
        clock.advance(1)
        if outcomes[-1] != "answered":
            break
    assert outcomes[-1] == "passkey"  # the counter sends to the passkey prompt
    relayed = shop.post(CODE_PROMPT, {"code": totp_code(secret)})  # a right code is not enough
    assert relayed.status_code == 302 and relayed.url.startswith(PASSKEY_PROMPT)
    assert check(shop, rows[11]) == "passkey"
    prompt = f"{PASSKEY_PROMPT}?next=/comptoir/droits/"
    signed = shop.post(prompt, {"credential": key.sign(shop.get(prompt).content.decode())})
    assert signed.status_code == 302 and signed.url == "/comptoir/droits/"
    clock.advance(5)
    assert check(shop, rows[12]) == "answered"


def test_a_token_is_throttled_on_its_own(cast, population, clock):
    _token, raw = tokens.create_token(cast.optician, "LGO caisse 1", ["rights:check"], cast.owner)
    _other, other_raw = tokens.create_token(cast.optician, "LGO caisse 2", ["rights:check"], cast.owner)
    api = Client(REMOTE_ADDR=SHOP)
    rows = people(population)

    def call(secret: str, row: list[str]) -> int:
        body = {
            "amc_number": row[COL["amc_number"]],
            "adherent_number": row[COL["adherent_number"]],
            "nir": row[COL["nir"]] or row[COL["ouvrant_droit_nir"]],
            "birth_date": row[COL["birth_date"]],
            "domain": "OPTI",
        }
        if not row[COL["nir"]]:
            body["birth_rank"] = int(row[COL["birth_rank"]])
        response = api.post("/api/v1/rights/check", body, content_type="application/json",
                            headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
        return response.status_code

    statuses = []
    for row in rows[:12]:
        statuses.append(call(raw, row))
        clock.advance(1)
    assert statuses[-1] == 429
    assert call(other_raw, rows[13]) == 200  # the shop's other till goes on
    owner = Client(REMOTE_ADDR=SHOP)
    login(owner, cast.owner, cast.secrets[cast.owner.email])  # a person proving a factor releases no token
    assert call(raw, rows[14]) == 429


@pytest.mark.django_db
def test_at_the_gate_only_the_session_that_proved_goes_on(cast, population, clock):
    def portal(session: str, proved: float | None) -> Actor:
        return Actor(channel="portal", organisation_id=cast.optician.pk, user_id=cast.staff.pk, ip=SHOP,
                     session_ref=session, second_factor_at=proved)  # fmt: skip

    rows = population.people[population.insurers[0].pk]
    logged_in = timezone.now().timestamp() - 60
    with pytest.raises(CheckRefused):
        for row in rows[:10]:
            check_rights(portal("other", logged_in), card_of(row))
            clock.advance(1)
    later = timezone.now().timestamp() + 1
    check_rights(portal("counter", later), card_of(rows[11]))  # proved after the hold
    for session in ("other", "another"):
        with pytest.raises(CheckRefused) as refused:
            check_rights(portal(session, logged_in), card_of(rows[12]))
        assert refused.value.code == "step_up_required"
    check_rights(portal("counter", later), card_of(rows[13]))
