"""The security console: only operator security staff; alerts handled and recorded; actor pages without
identities; switches with a reason; what the system did is undone only with a fresh second factor."""

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken, SecurityEvent, User
from rempart.accounts.tests.helpers import age_second_factor
from rempart.gate import Actor, check_rights
from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.surveillance import canaries, switches, views
from rempart.surveillance.engine import CheckRefused
from rempart.surveillance.models import Alert, Canary, Switch
from rempart.testing import login

from .conftest import COL, actor_for, card_of

PAGES = [
    "/operateur/surveillance/",
    "/operateur/surveillance/coupures/",
    "/operateur/surveillance/canaris/",
]


@pytest.fixture
def analyst(client, cast):
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    return client


def _alert(cast, **fields) -> Alert:
    values = {
        "severity": Alert.Severity.WARNING, "signal": "velocity_minute", "level": 2, "user": cast.staff,
        "organisation": cast.optician, "ip_address": "198.51.100.23",
        "response": "second facteur redemandé avant la prochaine vérification",
        "evidence": {"velocity_minute": {"checks_last_minute": 9, "ceiling": 6}},
    }  # fmt: skip
    return Alert.objects.create(**{**values, **fields})


def _canary_row(canary) -> list[str]:
    card = canaries.sealed_card(canary)
    row = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        row[COL[name]] = card[name]
    return row


def _words(page: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", page) is not None


# --- access ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "staff", "insurer_member", "outsider"])
def test_only_operator_security_staff_reach_the_console(client, cast, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    alert = _alert(cast)
    token, _raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    switch = switches.switch_off(target=Switch.Target.CHANNEL, channel="api_rights", reason="test")
    gets = [*PAGES, f"/operateur/surveillance/comptes/{cast.staff.pk}/", f"/operateur/surveillance/jetons/{token.pk}/",
            f"/operateur/surveillance/canaris/{cast.insurer.insurer.pk}/cartes/"]  # fmt: skip
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = [f"/operateur/surveillance/alertes/{alert.pk}/statut/", f"/operateur/surveillance/comptes/{cast.staff.pk}/suspendre/",
             f"/operateur/surveillance/comptes/{cast.staff.pk}/retablir/", f"/operateur/surveillance/jetons/{token.pk}/suspendre/",
             f"/operateur/surveillance/jetons/{token.pk}/retablir/", f"/operateur/surveillance/coupures/{switch.pk}/retablir/",
             "/operateur/surveillance/coupures/", "/operateur/surveillance/canaris/"]  # fmt: skip
    for url in posts:
        assert (
            client.post(url, {"status": "resolved", "reason": "x", "target": "channel"}).status_code == 404
        ), url
    assert Alert.objects.get().status == Alert.Status.OPEN and switch.active
    assert User.objects.get(pk=cast.staff.pk).suspended_at is None
    assert "/operateur/surveillance/" not in client.get("/").content.decode()  # no link in the menu


@pytest.mark.parametrize("who", ["analyst", "admin"])
def test_security_analysts_and_admins_reach_the_console(client, cast, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    assert 'href="/operateur/surveillance/"' in client.get("/").content.decode()


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get("/operateur/surveillance/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


# --- the alert queue -------------------------------------------------------------------------------


def test_the_queue_shows_open_alerts_first_in_words(analyst, cast):
    resolved = _alert(cast, severity=Alert.Severity.CRITICAL, status=Alert.Status.RESOLVED, signal="misses",
                      evidence={"misses": {"misses_last_hour": 25, "checks_last_hour": 30, "ratio": 0.83}})  # fmt: skip
    open_ = _alert(cast, created_at=timezone.now() - timezone.timedelta(hours=2))
    page = analyst.get("/operateur/surveillance/").content.decode()
    assert page.index(f'id="alert-{open_.pk}"') < page.index(f'id="alert-{resolved.pk}"')
    assert "trop de vérifications par minute" in page  # SIGNAL_LABELS
    assert "vérifications dans la dernière minute" in page and ">9<" in page  # evidence, key: value
    assert "83 %" in page
    assert "second facteur redemandé avant la prochaine vérification" in page  # the automatic response
    assert f'href="/operateur/surveillance/comptes/{cast.staff.pk}/"' in page and cast.staff.email in page
    assert "sev-critical" in page and "sev-warning" in page
    only_critical = analyst.get("/operateur/surveillance/?severity=critical").content.decode()
    assert f'id="alert-{resolved.pk}"' in only_critical and f'id="alert-{open_.pk}"' not in only_critical
    only_open = analyst.get("/operateur/surveillance/?status=open").content.decode()
    assert f'id="alert-{open_.pk}"' in only_open and f'id="alert-{resolved.pk}"' not in only_open


def test_acknowledge_then_resolve_an_alert_is_recorded(analyst, cast):
    alert = _alert(cast)
    url = f"/operateur/surveillance/alertes/{alert.pk}/statut/"
    response = analyst.post(url, {"status": "acknowledged", "next": "/operateur/surveillance/?status=open"})
    assert response.status_code == 302 and response.url == "/operateur/surveillance/?status=open"
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED and alert.handled_by == cast.analyst
    assert alert.handled_at is not None
    response = analyst.post(url, {"status": "resolved", "next": "https://evil.example/"})
    assert response.url == "/operateur/surveillance/"  # never sent off-site
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    analyst.post(url, {"status": "open"})
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED  # nothing reopens by hand-made posts


def test_the_queue_links_the_incident_for_analysts(analyst, cast):
    from rempart.incidents import workflow

    incident = workflow.open_incident(title="Suspension automatique", detected_at=timezone.now())
    _alert(cast, level=3, severity="critical", incident=incident)
    page = analyst.get("/operateur/surveillance/").content.decode()
    assert f'href="/operateur/incidents/{incident.pk}/"' in page and incident.number in page


# --- the actor page --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_actor_page_shows_activity_without_identities(analyst, cast, population, clock):
    rows = population.people[population.insurers[0].pk][:8] + population.people[population.insurers[1].pk][:4]
    actor = actor_for(cast.staff, ip="198.51.100.23")
    references = []
    for n, row in enumerate(rows):
        row = list(row)
        if n % 4 == 3:
            row[COL["birth_date"]] = "1901-01-01"  # a miss
        references.append(check_rights(actor, card_of(row)).reference)
        clock.advance(20)
    response = analyst.get(f"/operateur/surveillance/comptes/{cast.staff.pk}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in page and page.count('class="bar-hit"') == 1 and page.count('class="bar-miss"') == 1
    assert "12 vérifications sur 14 jours, dont 3 sans correspondance" in page
    assert all(reference in page for reference in references)
    assert "198.51.100.23" in page and "Aucune correspondance" in page and "OPTI" in page
    for row in rows:  # not one beneficiary's identity
        for identifier in (row[COL["nir"]], row[COL["ouvrant_droit_nir"]], row[COL["adherent_number"]]):
            assert not identifier or identifier not in page
        for name in (row[COL["last_name"]], row[COL["first_name"]]):
            assert not _words(page, name), name
    assert 'id="sessions"' in page and 'id="devices"' in page


def test_the_chart_counts_checks_per_day_with_misses_apart(analyst, cast):
    today = timezone.localdate()
    plan = {
        3: (5, 1),
        1: (2, 0),
        0: (4, 4),
        20: (9, 0),
    }  # days back: (checks, of which misses); 20 is too old
    with transaction.atomic():
        for back, (total, misses) in plan.items():
            at = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=back), dt.time(10, 0)))
            for n in range(total):
                chain.append(created_at=at, channel="portal", purpose="rights_check", organisation_id=cast.optician.pk,
                             user_id=cast.staff.pk, domain="OPTI", fields=[],
                             outcome="no_match" if n < misses else "covered")  # fmt: skip
    chart = views.activity_chart(Disclosure.objects.filter(user_id=cast.staff.pk))
    by_day = {bar["day"]: (bar["total"], bar["misses"]) for bar in chart["bars"]}
    assert len(by_day) == 14 and chart["total"] == 11 and chart["misses"] == 5 and chart["top"] == 5
    assert by_day[today - dt.timedelta(days=3)] == (5, 1) and by_day[today] == (4, 4)
    assert by_day[today - dt.timedelta(days=2)] == (0, 0)
    tallest = next(bar for bar in chart["bars"] if bar["total"] == 5)
    assert (
        tallest["hit_h"] + tallest["miss_h"] == chart["base"] - chart["top_y"]
    )  # the top bar is full height
    page = analyst.get(f"/operateur/surveillance/comptes/{cast.staff.pk}/").content.decode()
    assert page.count('class="bar-hit"') == 2 and page.count('class="bar-miss"') == 2
    assert "style=" not in page  # the content security policy forbids inline styles


def test_suspend_an_account_from_its_page_ends_its_sessions(analyst, client_class, cast):
    victim = client_class()
    login(victim, cast.staff, cast.secrets[cast.staff.email])
    response = analyst.post(f"/operateur/surveillance/comptes/{cast.staff.pk}/suspendre/")
    assert response.status_code == 302
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None
    assert victim.get("/comptoir/droits/").status_code == 302  # signed out at once
    event = SecurityEvent.objects.get(tag="account.suspended", user=cast.staff)
    assert event.details["by"] == cast.analyst.email
    page = analyst.get(f"/operateur/surveillance/comptes/{cast.staff.pk}/").content.decode()
    assert "par une personne" in page and "automatiquement" not in page


def test_an_analyst_cannot_suspend_their_own_account(analyst, cast):
    analyst.post(f"/operateur/surveillance/comptes/{cast.analyst.pk}/suspendre/")
    assert User.objects.get(pk=cast.analyst.pk).suspended_at is None


def test_lifting_an_automatic_suspension_shows_it_and_needs_step_up(analyst, cast, population):
    planted = canaries.plant(population.insurers[0], 1, seed=3)
    check_rights(actor_for(cast.staff), card_of(_canary_row(planted[0])))  # leaked data: suspended at once
    staff = User.objects.get(pk=cast.staff.pk)
    assert staff.suspended_at is not None
    page = analyst.get(f"/operateur/surveillance/comptes/{staff.pk}/").content.decode()
    assert 'id="system-suspension"' in page and "automatique" in page
    assert "bénéficiaire témoin (canari)" in page and "Lever la suspension automatique" in page

    age_second_factor(analyst, 400)
    response = analyst.post(
        f"/operateur/surveillance/comptes/{staff.pk}/retablir/",
        HTTP_REFERER=f"/operateur/surveillance/comptes/{staff.pk}/",
    )
    assert response.status_code == 302 and "reauthenticate" in response.url
    assert User.objects.get(pk=staff.pk).suspended_at is not None

    age_second_factor(analyst, 0)
    response = analyst.post(f"/operateur/surveillance/comptes/{staff.pk}/retablir/")
    assert response.status_code == 302 and response.url == f"/operateur/surveillance/comptes/{staff.pk}/"
    assert User.objects.get(pk=staff.pk).suspended_at is None
    event = SecurityEvent.objects.get(tag="account.restored", user=staff)
    assert event.details["automatic"] is True and event.details["by"] == cast.analyst.email
    assert "Suspension automatique levée" in analyst.get(response.url).content.decode()


def test_a_token_is_suspended_and_restored_with_step_up(analyst, cast):
    token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    page = analyst.get(f"/operateur/surveillance/jetons/{token.pk}/").content.decode()
    assert f"rmp_{token.prefix}_…" in page and "<svg" in page
    analyst.post(f"/operateur/surveillance/jetons/{token.pk}/suspendre/")
    assert ApiToken.objects.get(pk=token.pk).suspended_at is not None
    with pytest.raises(tokens.TokenRejected) as refused:
        tokens.authenticate_token(raw, "rights:check")
    assert refused.value.status == 403
    assert SecurityEvent.objects.filter(tag="token.suspended", organisation=cast.optician).exists()
    age_second_factor(analyst, 400)
    response = analyst.post(f"/operateur/surveillance/jetons/{token.pk}/retablir/")
    assert "reauthenticate" in response.url and ApiToken.objects.get(pk=token.pk).suspended_at is not None
    age_second_factor(analyst, 0)
    analyst.post(f"/operateur/surveillance/jetons/{token.pk}/retablir/")
    assert ApiToken.objects.get(pk=token.pk).suspended_at is None
    assert tokens.authenticate_token(raw, "rights:check").pk == token.pk
    assert SecurityEvent.objects.filter(tag="token.restored", organisation=cast.optician).exists()


# --- switches --------------------------------------------------------------------------------------


def test_a_switch_needs_a_reason_and_cuts_exactly_its_target(analyst, cast, population):
    row = population.people[population.insurers[0].pk][0]
    url = "/operateur/surveillance/coupures/"
    response = analyst.post(url, {"target": "organisation", "organisation": cast.optician.pk, "reason": "  "})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not Switch.objects.exists()

    response = analyst.post(url, {"target": "organisation", "organisation": cast.optician.pk,
                                  "reason": "Compte détourné, en attente du titulaire"})  # fmt: skip
    assert response.status_code == 302
    switch = Switch.objects.get()
    assert switch.active and switch.off_by == cast.analyst and not switch.by_system
    event = SecurityEvent.objects.get(tag="switch.off")
    assert event.organisation == cast.optician and event.details["reason"].startswith("Compte détourné")
    with pytest.raises(CheckRefused) as refused:
        check_rights(actor_for(cast.staff), card_of(row))
    assert refused.value.code == "switched_off"
    check_rights(actor_for(cast.outsider), card_of(row))  # another organisation goes on
    page = analyst.get(url).content.decode()
    assert "Compte détourné, en attente du titulaire" in page and cast.analyst.email in page

    response = analyst.post(f"/operateur/surveillance/coupures/{switch.pk}/retablir/")
    assert response.status_code == 302
    switch.refresh_from_db()
    assert not switch.active and switch.on_by == cast.analyst
    assert SecurityEvent.objects.filter(tag="switch.on", organisation=cast.optician).exists()
    check_rights(actor_for(cast.staff), card_of(row))


def test_switch_targets_account_token_insurer_channel_and_domain(analyst, cast, population):
    token, _raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    url = "/operateur/surveillance/coupures/"
    first, second = population.insurers
    cases = [
        {"target": "account", "email": cast.staff.email.upper()},
        {"target": "token", "token": f"rmp_{token.prefix}_…"},
        {"target": "insurer", "amc_number": first.amc_number},
        {"target": "channel", "channel": "portal_rights", "domain": "OPTI"},
    ]
    for case in cases:
        assert analyst.post(url, {**case, "reason": "test"}).status_code == 302, case
    made = {s.target: s for s in Switch.objects.all()}
    assert made["account"].user == cast.staff and made["token"].token == token
    assert made["insurer"].insurer == first
    assert made["channel"].channel == "portal_rights" and made["channel"].domain == "OPTI"
    assert SecurityEvent.objects.filter(tag="switch.off").count() == 4

    refused = analyst.post(url, {"target": "channel", "reason": "tout couper"})  # a channel must be named
    assert refused.status_code == 200 and Switch.objects.count() == 4
    refused = analyst.post(url, {"target": "account", "email": "nobody@x.test", "reason": "x"})
    assert "Aucun compte" in refused.content.decode()

    owner = actor_for(cast.owner)
    cast.optician.professional.domains = ["OPTI", "PHAR"]  # a shop with two trades: one is cut
    cast.optician.professional.save(update_fields=["domains"])
    with pytest.raises(CheckRefused):  # the first insurer's cards
        check_rights(owner, card_of(population.people[first.pk][0], domain="PHAR"))
    check_rights(owner, card_of(population.people[second.pk][0], domain="PHAR"))  # the second insurer's go on
    with pytest.raises(CheckRefused):  # optics in the portal
        check_rights(owner, card_of(population.people[second.pk][1], domain="OPTI"))
    other, _raw = tokens.create_token(cast.optician, "Autre logiciel", ["rights:check"], cast.owner)
    api = Actor(channel="api", organisation_id=cast.optician.pk, token_id=other.pk, ip="192.0.2.9")
    check_rights(api, card_of(population.people[second.pk][2], domain="OPTI"))  # the API goes on


def test_switching_back_on_what_the_system_cut_needs_step_up(analyst, cast):
    switch = switches.switch_off(
        target=Switch.Target.ORGANISATION, organisation=cast.optician, reason="automatique", by_system=True
    )
    page = analyst.get("/operateur/surveillance/coupures/").content.decode()
    assert "la surveillance (automatique)" in page and "votre second facteur sera demandé" in page
    age_second_factor(analyst, 400)
    response = analyst.post(
        f"/operateur/surveillance/coupures/{switch.pk}/retablir/",
        HTTP_REFERER="/operateur/surveillance/coupures/",
    )
    assert "reauthenticate" in response.url
    switch.refresh_from_db()
    assert switch.active
    age_second_factor(analyst, 0)
    analyst.post(f"/operateur/surveillance/coupures/{switch.pk}/retablir/")
    switch.refresh_from_db()
    assert not switch.active and switch.on_by == cast.analyst
    assert SecurityEvent.objects.get(tag="switch.on").details["by_system"] is True


# --- canaries --------------------------------------------------------------------------------------


def test_plant_canaries_from_the_console_and_read_them_only_after_step_up(analyst, cast, population):
    insurer = population.insurers[1]
    response = analyst.post("/operateur/surveillance/canaris/", {"insurer": insurer.pk, "count": 2})
    assert response.status_code == 302
    planted = list(Canary.objects.filter(insurer=insurer))
    assert len(planted) >= 2 and all(c.created_by == cast.analyst for c in planted)  # whole families
    cards = [canaries.sealed_card(c) for c in planted]
    panel = analyst.get("/operateur/surveillance/canaris/").content.decode()
    assert f"{len(planted)} canari(s) planté(s)" in panel
    assert all(card["nir"] not in panel and card["adherent_number"] not in panel for card in cards)

    url = f"/operateur/surveillance/canaris/{insurer.pk}/cartes/"
    age_second_factor(analyst, 400)
    response = analyst.get(url)
    assert response.status_code == 302 and "reauthenticate" in response.url
    age_second_factor(analyst, 0)
    response = analyst.get(url)
    page = response.content.decode()
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert all(card["nir"] in page and card["adherent_number"] in page for card in cards)

    too_many = analyst.post("/operateur/surveillance/canaris/", {"insurer": insurer.pk, "count": 6})
    assert too_many.status_code == 200 and Canary.objects.filter(insurer=insurer).count() == len(planted)


def test_a_canary_hit_shows_in_the_panel(analyst, cast, population):
    insurer = population.insurers[0]
    planted = canaries.plant(insurer, 1, seed=5)
    check_rights(actor_for(cast.outsider), card_of(_canary_row(planted[0])))
    page = analyst.get("/operateur/surveillance/canaris/").content.decode()
    row = page[page.index(f'id="insurer-{insurer.pk}"') :].split("</tr>")[0]
    today = date_format(timezone.localtime(), "SHORT_DATE_FORMAT")  # "2 déc. 2026", never 02/12/2026
    assert today in row and "jamais" not in row
    queue = analyst.get("/operateur/surveillance/?severity=critical").content.decode()
    assert "bénéficiaire témoin (canari)" in queue and cast.outsider.email in queue
    assert f"{insurer.name} (AMC {insurer.amc_number})" in queue  # the evidence names the insurer


def test_the_canaries_command_plants_and_lists_without_sealed_data(cast, population, capsys):
    insurer = population.insurers[0]
    call_command("canaries", "plant", "--insurer", insurer.amc_number, "--count", "2")
    planted = Canary.objects.filter(insurer=insurer).count()
    assert planted >= 2  # whole families
    call_command("canaries", "list")
    out = capsys.readouterr().out
    assert f"{planted} canaries planted" in out and insurer.amc_number in out and insurer.name in out
    for canary in Canary.objects.all():
        card = canaries.sealed_card(canary)
        assert card["nir"] not in out and card["adherent_number"] not in out


def test_an_organisation_alert_links_to_its_containment(analyst, cast):
    _alert(cast, user=None, level=4, severity="critical", signal="suspended_actors",
           response="organisation « Optique du Test » suspendue", evidence={"suspended_actors": {"actors": 2}})  # fmt: skip
    page = analyst.get("/operateur/surveillance/").content.decode()
    assert "plusieurs comptes ou jetons suspendus dans l&#x27;organisation" in page
    assert (
        f"?target=organisation&amp;organisation={cast.optician.pk}" in page
        and "/operateur/suspensions/" in page
    )


def test_the_console_renders_in_english_too(analyst, cast):
    _alert(cast)
    analyst.post("/i18n/setlang/", {"language": "en", "next": "/"})
    for url in [*PAGES, f"/operateur/surveillance/comptes/{cast.staff.pk}/"]:
        response = analyst.get(url)
        assert response.status_code == 200 and '<html lang="en">' in response.content.decode(), url
