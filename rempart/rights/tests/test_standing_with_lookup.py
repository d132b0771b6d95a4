"""A token accepted in the last second has its standing read with the rights check's lookup
(rempart.accounts.tokens.authenticate_token, rempart.gate.core._identify_with_standing): one round trip fewer,
and every refusal exactly as the token check would give it — same status, code and words, same security event,
no ledger row, nothing of the card compared."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken, SecurityEvent
from rempart.gate import core as gate_core
from rempart.ledger.models import Disclosure
from rempart.surveillance import switches
from rempart.surveillance.models import ActorState, Switch

from .test_channels import body, post


@pytest.fixture
def token(cast, monkeypatch):
    # A slow first request (a cold test process) must not let the second one fall out of the window.
    monkeypatch.setattr(tokens, "RECENT_SECONDS", 60.0)
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]


def _token_row(raw: str) -> ApiToken:
    return ApiToken.objects.get(prefix=raw.split("_")[1])


def _statements(client, raw, payload, **extra):
    sent = []

    def collect(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(collect):
        response = post(client, raw, payload, **extra)
    return response, sent


def _reads_token(sql: str) -> bool:
    return "FROM accounts_apitoken" in sql


def test_a_check_within_a_second_reads_the_token_with_its_lookup(client, cast, family, token):
    assert post(client, token, body(family)).status_code == 200
    response, sent = _statements(client, token, body(family))
    assert response.json()["outcome"] == "covered"
    token_reads = [sql for sql in sent if _reads_token(sql)]
    assert len(token_reads) == 1 and "FROM registry_insurer" in token_reads[0]  # one statement for both
    assert not any("FROM registry_insurer" in sql for sql in sent if sql not in token_reads)


def test_after_a_second_or_from_another_address_the_token_is_read_on_its_own(
    client, cast, family, token, monkeypatch
):
    assert post(client, token, body(family)).status_code == 200
    _response, sent = _statements(client, token, body(family), REMOTE_ADDR="203.0.113.9")
    assert any(_reads_token(sql) and "registry_insurer" not in sql for sql in sent)
    monkeypatch.setattr(tokens, "RECENT_SECONDS", 0.0)
    _response, sent = _statements(client, token, body(family))
    assert any(_reads_token(sql) and "registry_insurer" not in sql for sql in sent)


def _revoke(raw, cast):
    ApiToken.objects.filter(prefix=raw.split("_")[1]).update(revoked_at=timezone.now())


def _suspend(raw, cast):
    ApiToken.objects.filter(prefix=raw.split("_")[1]).update(suspended_at=timezone.now())


def _expire(raw, cast):
    ApiToken.objects.filter(prefix=raw.split("_")[1]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )


def _suspend_organisation(raw, cast):
    type(cast.optician).objects.filter(pk=cast.optician.pk).update(status="suspended")


def _suspend_creator(raw, cast):
    type(cast.owner).objects.filter(pk=cast.owner.pk).update(suspended_at=timezone.now())


def _deactivate_creator(raw, cast):
    type(cast.owner).objects.filter(pk=cast.owner.pk).update(is_active=False)


@pytest.mark.parametrize(
    "change, status, code",
    [
        (_revoke, 401, "token_revoked"),
        (_suspend, 403, "token_suspended"),
        (_expire, 401, "token_expired"),
        (_suspend_organisation, 403, "organisation_suspended"),
        (_suspend_creator, 403, "creator_suspended"),
        (_deactivate_creator, 403, "creator_suspended"),
    ],
)
@pytest.mark.parametrize("domain", ["OPTI", "PHAR"])  # PHAR: a domain the shop does not practise
def test_a_token_refused_within_the_second_gets_the_token_checks_answer(
    client, cast, family, token, change, status, code, domain
):
    assert post(client, token, body(family)).status_code == 200
    rows, events = Disclosure.objects.count(), SecurityEvent.objects.filter(tag="token.rejected").count()
    change(token, cast)
    within = post(client, token, body(family, domain=domain), HTTP_ACCEPT_LANGUAGE="en")
    assert (within.status_code, within.json()["code"]) == (status, code)
    assert Disclosure.objects.count() == rows  # nothing recorded: nothing was looked up nor refused by domain
    assert SecurityEvent.objects.filter(tag="token.rejected").count() == events + 1
    tokens.forget_recent()  # the same refusal by the token check itself
    alone = post(client, token, body(family, domain=domain), HTTP_ACCEPT_LANGUAGE="en")
    assert (alone.status_code, alone.json()) == (within.status_code, within.json())
    assert Disclosure.objects.count() == rows
    assert post(client, token, body(family)).status_code == status  # and it stays refused


def test_a_throttled_token_is_held_back_within_the_second_as_before(client, cast, family, token, settings):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    assert post(client, token, body(family)).status_code == 200
    rows = Disclosure.objects.count()
    until = timezone.now() + dt.timedelta(seconds=30)
    ActorState.objects.update_or_create(
        actor=f"t:{_token_row(token).pk}", defaults={"throttled_until": until}
    )
    within = post(client, token, body(family))
    assert within.status_code == 429 and within.json()["code"] == "rate_limited" and within["Retry-After"]
    tokens.forget_recent()
    alone = post(client, token, body(family))
    assert (alone.status_code, alone.json()["code"]) == (429, "rate_limited")
    assert Disclosure.objects.count() == rows


def test_a_switch_cut_within_the_second_answers_after_the_standing(client, cast, family, token):
    assert post(client, token, body(family)).status_code == 200
    switches.switch_off(target=Switch.Target.CHANNEL, channel="api", reason="test")
    switches.forget()
    _revoke(token, cast)
    assert post(client, token, body(family)).json()["code"] == "token_revoked"  # not switched_off
    switches.forget()


def test_a_token_deleted_within_the_second_is_invalid(client, cast, family, token):
    assert post(client, token, body(family)).status_code == 200
    _token_row(token).delete()
    answer = post(client, token, body(family))
    assert (answer.status_code, answer.json()["code"]) == (401, "token_invalid")


def test_the_lookup_compares_nothing_for_a_refused_token(cast, family, token):
    """The combined statement itself: with the standing refused, no registry row comes back for a card
    that matches (the lookup did not run), and the standing says why."""
    from rempart.rights.cards import read_card_data

    card = read_card_data(
        **{**body(family), "birth_rank": None, "care_date": None}, today=timezone.localdate()
    )
    params = [_token_row(token).pk, *gate_core._lookup_params(card)]
    width = tokens.standing_width()
    statement = gate_core._lookup_with_standing()
    rows = statement.rows(params)
    assert rows[0][0] and any(row[width] is not None for row in rows)  # in good standing: the registry rows
    _revoke(token, cast)
    rows = statement.rows(params)
    assert len(rows) == 1 and not rows[0][0] and all(value is None for value in rows[0][width:])


def test_a_lookup_held_back_by_the_guard_runs_when_nothing_refuses(client, cast, family, token, settings):
    """Surveillance off: a throttled state refuses nothing, though the statement's guard held the lookup back;
    the gate then looks the card up on its own and answers as usual."""
    settings.REMPART_SURVEILLANCE_ENABLED = False
    assert post(client, token, body(family)).status_code == 200
    until = timezone.now() + dt.timedelta(seconds=30)
    ActorState.objects.update_or_create(
        actor=f"t:{_token_row(token).pk}", defaults={"throttled_until": until}
    )
    response, sent = _statements(client, token, body(family))
    assert response.status_code == 200 and response.json()["outcome"] == "covered"
    assert len([sql for sql in sent if "FROM registry_insurer" in sql]) == 2  # guarded, then on its own


@pytest.mark.parametrize(
    "bad", [{"birth_date": "1985-13-45"}, {"domain": "NOPE"}, {"nir": 12}], ids=["card", "domain", "type"]
)
def test_bad_input_from_a_token_revoked_within_the_second_gets_the_refusal_first(
    client, cast, family, token, bad
):
    assert post(client, token, body(family)).status_code == 200
    _revoke(token, cast)
    answer = post(client, token, body(family, **bad))
    assert (answer.status_code, answer.json()["code"]) == (401, "token_revoked")
    tokens.forget_recent()
    assert (
        post(client, token, body(family, **bad)).json()["code"] == "token_revoked"
    )  # as the token check says


def test_bad_input_from_a_good_token_within_the_second_is_still_bad_input(client, cast, family, token):
    assert post(client, token, body(family)).status_code == 200
    answer = post(client, token, body(family, birth_date="1985-13-45"))
    assert answer.status_code == 400 and answer.json()["code"] == "invalid"
