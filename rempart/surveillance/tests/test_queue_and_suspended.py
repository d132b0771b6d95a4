"""The analyst's daily tools: one list of everything suspended (who or what, why, since when), an alert
queue that is filtered, searched, refreshed by itself and assigned — and refused to anyone else."""

import datetime as dt

import pytest
from django.utils import timezone

from rempart.accounts import tokens
from rempart.accounts.models import Organisation, SecurityEvent, User
from rempart.surveillance import labels, responses, switches
from rempart.surveillance.models import Alert, Switch
from rempart.surveillance.policy import SUSPEND, Finding
from rempart.testing import login

from .conftest import actor_for

QUEUE = "/operateur/surveillance/"
LIVE = "/operateur/surveillance/direct/"
SUSPENDED = "/operateur/surveillance/suspendus/"


@pytest.fixture
def analyst(client, cast):
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    return client


def _alert(cast, **fields) -> Alert:
    values = {
        "severity": Alert.Severity.WARNING, "signal": "velocity_minute", "level": 2, "user": cast.staff,
        "organisation": cast.optician, "ip_address": "198.51.100.23", "response": labels.STEP_UP,
        "evidence": {"velocity_minute": {"checks_last_minute": 9, "ceiling": 6}},
    }  # fmt: skip
    return Alert.objects.create(**{**values, **fields})


def _ids(page: str, alerts) -> set[int]:
    return {a.pk for a in alerts if f'id="alert-{a.pk}"' in page}


# --- everything suspended ---------------------------------------------------------------------------


def test_the_list_says_who_or_what_suspended_each_thing_and_why(analyst, cast):
    # The surveillance suspends the staff account (its alert names the signal).
    responses.apply(actor_for(cast.staff), SUSPEND, [Finding("misses", SUSPEND, {"misses_last_hour": 30})])
    by_system = Alert.objects.get(level=SUSPEND)
    assert by_system.response == labels.ACCOUNT_SUSPENDED
    # A person suspends a token, with a motive, and an organisation; a switch cuts a channel.
    token, _raw = tokens.create_token(cast.optician, "LGO caisse", ["rights:check"], cast.owner)
    analyst.post(
        f"/operateur/surveillance/jetons/{token.pk}/suspendre/", {"reason": "jeton publié sur un forum"}
    )
    other = cast.outsider.membership.organisation
    analyst.post(f"/operateur/organisations/{other.pk}/suspendre/")
    switches.switch_off(
        target=Switch.Target.CHANNEL, channel="api_rights", reason="maintenance SIEM", by=cast.analyst
    )

    page = analyst.get(SUSPENDED).content.decode()
    assert cast.staff.email in page and "la surveillance" in page
    assert f"alerte n° {by_system.pk}" in page and "trop de vérifications sans correspondance" in page
    assert f"rmp_{token.prefix}_" in page and "jeton publié sur un forum" in page
    assert page.count(cast.analyst.email) >= 3  # the token, the organisation and the switch: by the analyst
    assert other.name in page and "aucun motif indiqué" in page
    assert "maintenance SIEM" in page and "tout le monde" in page
    # Links to lift, through the console's existing actions.
    assert f'action="/operateur/surveillance/comptes/{cast.staff.pk}/retablir/"' in page
    assert f'action="/operateur/surveillance/jetons/{token.pk}/retablir/"' in page
    assert "rate_limited" not in page and "account_suspended" not in page  # codes never shown

    only_tokens = analyst.get(SUSPENDED + "?kind=token").content.decode()
    assert f"rmp_{token.prefix}_" in only_tokens and cast.staff.email not in only_tokens.split("<table")[1]
    assert analyst.get(SUSPENDED + "?kind=nonsense").status_code == 200  # an unknown kind: everything


def test_a_person_suspending_an_account_is_named_and_lifting_it_asks_the_second_factor(analyst, cast):
    analyst.post(f"/operateur/surveillance/comptes/{cast.staff.pk}/suspendre/", {"reason": "poste volé"})
    page = analyst.get(SUSPENDED + "?kind=account").content.decode()
    assert "poste volé" in page and cast.analyst.email in page and "second facteur demandé" in page
    assert "la surveillance" not in page.split("<table")[1]


@pytest.mark.parametrize("who", ["owner", "staff", "insurer_member", "outsider"])
def test_nobody_else_reaches_the_lists_or_the_actions(client, cast, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    alert = _alert(cast)
    for url in (SUSPENDED, QUEUE, LIVE):
        assert client.get(url).status_code == 404, url
    response = client.post(f"/operateur/surveillance/alertes/{alert.pk}/attribuer/", {"assignee": "me"})
    assert response.status_code == 404
    assert Alert.objects.get(pk=alert.pk).assigned_to is None


# --- the queue: filters, search, refresh ------------------------------------------------------------


def test_the_queue_is_filtered_by_actor_organisation_signal_and_period(analyst, cast):
    token, _raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    other = cast.outsider.membership.organisation
    staff = _alert(cast)
    by_token = _alert(cast, user=None, token=token, signal="misses", ip_address="192.0.2.9")
    elsewhere = _alert(cast, user=cast.outsider, organisation=other, signal="canary")
    old = _alert(cast, created_at=timezone.now() - dt.timedelta(days=20))
    every = [staff, by_token, elsewhere, old]

    assert _ids(analyst.get(QUEUE, {"actor": cast.staff.email.upper()}).content.decode(), every) == {
        staff.pk,
        old.pk,
    }
    assert _ids(analyst.get(QUEUE, {"actor": f"rmp_{token.prefix}"}).content.decode(), every) == {by_token.pk}
    assert _ids(analyst.get(QUEUE, {"actor": "192.0.2.9"}).content.decode(), every) == {by_token.pk}
    assert _ids(analyst.get(QUEUE, {"organisation": other.pk}).content.decode(), every) == {elsewhere.pk}
    assert _ids(analyst.get(QUEUE, {"signal": "misses"}).content.decode(), every) == {by_token.pk}
    today = timezone.localdate().isoformat()
    recent = analyst.get(QUEUE, {"since": today, "until": today}).content.decode()
    assert _ids(recent, every) == {staff.pk, by_token.pk, elsewhere.pk}
    long_ago = (timezone.localdate() - dt.timedelta(days=20)).isoformat()
    assert _ids(analyst.get(QUEUE, {"until": long_ago}).content.decode(), every) == {old.pk}
    # The live part takes the same filters (the page's script asks it with the page's own query).
    live = analyst.get(LIVE, {"signal": "canary"})
    assert live.status_code == 200 and _ids(live.content.decode(), every) == {elsewhere.pk}
    assert "<html" not in live.content.decode() and 'id="open-counts"' in live.content.decode()


def test_bad_filters_are_said_and_left_out_the_others_still_apply(analyst, cast):
    staff = _alert(cast)
    canary = _alert(cast, signal="canary")
    response = analyst.get(QUEUE, {"since": "32/13/2026", "signal": "canary", "organisation": "abc"})
    page = response.content.decode()
    assert response.status_code == 200 and 'id="filter-errors"' in page
    assert 'id="id_since-error"' in page and 'id="id_organisation-error"' in page
    assert _ids(page, [staff, canary]) == {canary.pk}  # the valid signal filter still applies
    backwards = analyst.get(QUEUE, {"since": "2026-12-02", "until": "2026-11-01"}).content.decode()
    assert 'id="id_until-error"' in backwards and _ids(backwards, [staff, canary]) == {staff.pk, canary.pk}
    unknown = analyst.get(QUEUE, {"signal": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert(1)</script>" not in unknown and 'id="id_signal-error"' in unknown


def test_the_queue_refreshes_by_itself_with_or_without_javascript(analyst, cast):
    page = analyst.get(QUEUE, {"severity": "warning"}).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="30"></noscript>' in page  # reloads the same address
    assert 'data-live-url="/operateur/surveillance/direct/"' in page and "rempart/alerts.js" in page
    fresh = _alert(cast)
    live = analyst.get(LIVE, {"severity": "warning"}).content.decode()
    assert f'id="alert-{fresh.pk}"' in live  # what the script swaps in
    assert (
        'name="next" value="/operateur/surveillance/?severity=warning"' in live
    )  # actions come back to the page


def test_responses_and_refusals_are_words_in_french_and_english(analyst, cast):
    _alert(
        cast, signal="blocked_attempts", level=3, response=labels.THROTTLED,
        response_params={"until": "2026-12-01T13:05:00+00:00"},
        evidence={"blocked_attempts": {"refused_attempts_last_hour": 7, "refusal": "rate_limited"}},
    )  # fmt: skip
    page = analyst.get(QUEUE).content.decode()
    until = labels.when("2026-12-01T13:05:00+00:00")  # the page's own date format, in Paris time
    assert "1 déc. 2026" in until and "14:05" in until
    assert f"jeton ralenti (429) jusqu&#x27;à {until}" in page
    assert "jeton ralenti (trop de vérifications)" in page
    english = analyst.get(QUEUE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "rate_limited" not in page and "rate_limited" not in english and "throttled" not in english
    assert "token slowed down (429) until" in english


# --- assignment -------------------------------------------------------------------------------------


def test_an_alert_is_assigned_to_a_security_member_and_that_is_recorded(analyst, cast):
    alert = _alert(cast)
    url = f"/operateur/surveillance/alertes/{alert.pk}/attribuer/"
    response = analyst.post(url, {"assignee": cast.admin.pk, "next": QUEUE}, follow=True)
    alert.refresh_from_db()
    assert alert.assigned_to == cast.admin and alert.assigned_at is not None
    assert f"Suivie par {cast.admin.email}" in response.content.decode()
    event = SecurityEvent.objects.get(tag="alert.assigned")
    assert event.user == cast.analyst and event.details["alert"] == alert.pk
    assert event.details["assignee"] == cast.admin.email and event.details["previous"] is None
    analyst.post(url, {"assignee": "me"})
    assert Alert.objects.get(pk=alert.pk).assigned_to == cast.analyst
    mine = analyst.get(QUEUE, {"assigned": "me"}).content.decode()
    assert f'id="alert-{alert.pk}"' in mine
    analyst.post(url, {"assignee": ""})
    assert Alert.objects.get(pk=alert.pk).assigned_to is None
    assert SecurityEvent.objects.filter(tag="alert.assigned").count() == 3
    assert f'id="alert-{alert.pk}"' in analyst.get(QUEUE, {"assigned": "nobody"}).content.decode()


@pytest.mark.parametrize("who", ["staff", "owner", "insurer_member", "suspended_analyst", "missing", "text"])
def test_an_alert_is_never_assigned_outside_the_security_team(analyst, cast, who):
    alert = _alert(cast)
    if who == "suspended_analyst":
        from rempart.testing import make_user

        colleague = make_user("soc2@operator.test", cast.operator, "security", totp_secret="JBSWY3DPEHPK3PXP")
        User.objects.filter(pk=colleague.pk).update(suspended_at=timezone.now())
        choice = colleague.pk
    elif who == "missing":
        choice = 999999
    elif who == "text":
        choice = "soc@operator.test"
    else:
        choice = getattr(cast, who).pk
    response = analyst.post(
        f"/operateur/surveillance/alertes/{alert.pk}/attribuer/", {"assignee": choice}, follow=True
    )
    assert response.status_code == 200
    assert Alert.objects.get(pk=alert.pk).assigned_to is None
    assert not SecurityEvent.objects.filter(tag="alert.assigned").exists()
    page = response.content.decode()
    assert "équipe sécurité" in page or "n&#x27;existe pas" in page


def test_the_assignment_choices_are_only_the_security_team(analyst, cast):
    _alert(cast)
    page = analyst.get(QUEUE).content.decode()
    page = page.split('name="assignee"', 1)[1].split("</select>", 1)[0]  # the assignment's choices
    assert f'<option value="{cast.admin.pk}"' in page and f'<option value="{cast.analyst.pk}"' in page
    assert f'<option value="{cast.staff.pk}"' not in page and f'<option value="{cast.owner.pk}"' not in page


def test_the_organisation_suspension_by_surveillance_is_listed_with_its_alert(analyst, cast):
    responses._suspend_organisation(cast.optician.pk, [Finding("suspended_actors", 4, {"actors": 2})])
    assert Organisation.objects.get(pk=cast.optician.pk).is_suspended
    alert = Alert.objects.get(level=4)
    assert alert.response == labels.ORGANISATION_SUSPENDED
    page = analyst.get(SUSPENDED + "?kind=organisation").content.decode()
    assert cast.optician.name in page and f"alerte n° {alert.pk}" in page
    assert "plusieurs comptes ou jetons suspendus" in page
    queue = analyst.get(QUEUE).content.decode()
    assert f"organisation « {cast.optician.name} » suspendue automatiquement" in queue.replace("&#x27;", "'")
