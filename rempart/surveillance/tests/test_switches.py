"""Kill switches: what is cut answers clearly (French page, stable API code), everything else goes on.

Through the Django test client: the portal page /comptoir/droits/ (a logged-in session) and the API
POST /api/v1/rights/check (a bearer token), each cut alone and switched back on.
"""

from __future__ import annotations

import html
import json

import pytest
from django.core.management import CommandError, call_command

from rempart.accounts import tokens
from rempart.accounts.models import SecurityEvent
from rempart.ledger.models import Disclosure
from rempart.surveillance import switches
from rempart.surveillance.models import Switch
from rempart.testing import login

from .conftest import COL

PORTAL_MESSAGE = "La vérification des droits est momentanément coupée par l'opérateur"


# --- helpers: a counter session and practice software, both checking patients --------------------------


def _french(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}/{month}/{year}"


def _card(row: list[str], domain: str) -> dict:
    own_nir = row[COL["nir"]]
    return {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": own_nir or row[COL["ouvrant_droit_nir"]],
        "birth_date": row[COL["birth_date"]],
        "birth_rank": None if own_nir else int(row[COL["birth_rank"]]),
        "domain": domain,
    }


class Counter:
    """A professional at the counter: a logged-in browser posting the rights form."""

    def __init__(self, client_class, user, secret: str, clock) -> None:
        self.client, self.user, self.clock = client_class(), user, clock
        response = login(self.client, user, secret)
        assert response.status_code == 302, response

    def check(self, row: list[str], domain: str = "OPTI"):
        card = _card(row, domain)
        data = {**card, "birth_date": _french(card["birth_date"]), "birth_rank": card["birth_rank"] or "",
                "care_date": ""}  # fmt: skip
        response = self.client.post("/comptoir/droits/", data)
        self.clock.advance(30)  # a counter's pace: never a velocity signal
        return response


class Software:
    """Practice software calling the API with its organisation's token."""

    def __init__(self, client_class, raw: str, clock) -> None:
        self.client, self.raw, self.clock = client_class(), raw, clock

    def check(self, row: list[str], domain: str = "OPTI"):
        body = {k: v for k, v in _card(row, domain).items() if v is not None}
        response = self.client.post(
            "/api/v1/rights/check",
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.raw}",
        )
        self.clock.advance(30)
        return response


def portal_answered(response) -> bool:
    content = html.unescape(response.content.decode())
    if response.status_code == 200 and 'id="check-reference"' in content:
        return True
    assert response.status_code == 503, (response.status_code, content[:500])
    assert PORTAL_MESSAGE in content and 'id="refusal"' in content and 'id="check-reference"' not in content
    return False


def api_answered(response) -> bool:
    if response.status_code == 200:
        assert response.json()["outcome"] in ("covered", "not_covered")
        return True
    assert response.status_code == 503, (response.status_code, response.content[:500])
    body = response.json()
    assert body["code"] == "switched_off" and body["detail"] and "Retry-After" not in response
    return False


@pytest.fixture
def people(population):
    """Valid identities of the first insurer (the optician's usual one) and of the second."""
    first, second = population.insurers
    return population.people[first.pk], population.people[second.pk]


@pytest.fixture
def counters(cast, client_class, clock):
    """The optician's staff and owner, and the other shop's owner, each logged in at their counter."""

    def make(user):
        return Counter(client_class, user, cast.secrets[user.email], clock)

    return make


@pytest.fixture
def software(cast, client_class, clock):
    def make(organisation=None, name="LGO"):
        raw = tokens.create_token(organisation or cast.optician, name, ["rights:check"], cast.owner)[1]
        return Software(client_class, raw, clock)

    return make


class Ledger:
    """Counts the rows the ledger gains: an answer writes one, a refusal none (nothing was disclosed)."""

    def __init__(self) -> None:
        self.mark = Disclosure.objects.count()

    def gained(self) -> int:
        now = Disclosure.objects.count()
        gained, self.mark = now - self.mark, now
        return gained


def _off(**fields) -> Switch:
    return switches.switch_off(reason="test : coupure ciblée", **fields)


# --- channels ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cutting_the_portal_for_everyone_leaves_the_api_working(cast, people, counters, software):
    mine, _theirs = people
    staff, other, lgo = counters(cast.staff), counters(cast.outsider), software()
    ledger = Ledger()
    switch = _off(target=Switch.Target.CHANNEL, channel=Switch.Channel.PORTAL_RIGHTS)

    assert not portal_answered(staff.check(mine[0]))
    assert not portal_answered(other.check(mine[1], domain="PHAR"))
    assert ledger.gained() == 0
    assert api_answered(lgo.check(mine[2]))
    assert ledger.gained() == 1
    row = Disclosure.objects.latest("id")
    assert row.channel == "api" and row.user_id is None

    switches.switch_on(switch, by=cast.analyst)
    assert portal_answered(staff.check(mine[0])) and ledger.gained() == 1
    switch.refresh_from_db()
    assert not switch.active and switch.on_by == cast.analyst


@pytest.mark.django_db
def test_cutting_the_api_for_everyone_leaves_the_portal_working(cast, people, counters, software):
    mine, _theirs = people
    staff, lgo, other_lgo = counters(cast.staff), software(), software(cast.other_shop, "Pharma")
    ledger = Ledger()
    switch = _off(target=Switch.Target.CHANNEL, channel=Switch.Channel.API_RIGHTS)

    assert not api_answered(lgo.check(mine[0]))
    assert not api_answered(other_lgo.check(mine[1], domain="PHAR"))
    assert ledger.gained() == 0
    assert portal_answered(staff.check(mine[2]))
    assert ledger.gained() == 1 and Disclosure.objects.latest("id").channel == "portal"

    switches.switch_on(switch)
    assert api_answered(lgo.check(mine[0])) and ledger.gained() == 1


# --- one actor -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cutting_one_account_cuts_only_that_account(cast, people, counters, software):
    mine, _theirs = people
    staff, owner, other, lgo = counters(cast.staff), counters(cast.owner), counters(cast.outsider), software()
    ledger = Ledger()
    switch = _off(target=Switch.Target.ACCOUNT, user=cast.staff)

    assert not portal_answered(staff.check(mine[0]))
    assert ledger.gained() == 0
    assert portal_answered(owner.check(mine[1]))  # a colleague in the same shop
    assert portal_answered(other.check(mine[2], domain="PHAR"))
    assert api_answered(lgo.check(mine[3]))  # the shop's software
    assert ledger.gained() == 3
    assert not Disclosure.objects.filter(user_id=cast.staff.pk).exists()

    switches.switch_on(switch)
    assert portal_answered(staff.check(mine[0])) and ledger.gained() == 1


@pytest.mark.django_db
def test_cutting_one_token_cuts_only_that_token(cast, people, counters, software):
    mine, _theirs = people
    stolen, other_software, staff = (
        software(name="LGO volé"),
        software(name="LGO caisse 2"),
        counters(cast.staff),
    )
    token = tokens.authenticate_token(stolen.raw, "rights:check")
    ledger = Ledger()
    switch = _off(target=Switch.Target.TOKEN, token=token)

    assert not api_answered(stolen.check(mine[0]))
    assert ledger.gained() == 0
    assert api_answered(other_software.check(mine[1]))
    assert portal_answered(staff.check(mine[2]))
    assert ledger.gained() == 2
    assert not Disclosure.objects.filter(token_id=token.pk).exists()

    switches.switch_on(switch)
    assert api_answered(stolen.check(mine[0])) and ledger.gained() == 1


@pytest.mark.django_db
def test_cutting_one_organisation_cuts_its_people_and_its_software_only(cast, people, counters, software):
    mine, _theirs = people
    staff, owner, lgo = counters(cast.staff), counters(cast.owner), software()
    other, other_lgo = counters(cast.outsider), software(cast.other_shop, "Pharma")
    ledger = Ledger()
    switch = _off(target=Switch.Target.ORGANISATION, organisation=cast.optician)

    assert not portal_answered(staff.check(mine[0]))
    assert not portal_answered(owner.check(mine[1]))
    assert not api_answered(lgo.check(mine[2]))
    assert ledger.gained() == 0
    assert portal_answered(other.check(mine[0], domain="PHAR"))
    assert api_answered(other_lgo.check(mine[1], domain="PHAR"))
    assert ledger.gained() == 2
    assert not Disclosure.objects.filter(organisation_id=cast.optician.pk).exists()

    switches.switch_on(switch)
    assert portal_answered(staff.check(mine[0])) and api_answered(lgo.check(mine[2]))
    assert ledger.gained() == 2


@pytest.mark.django_db
def test_cutting_one_insurer_cuts_only_the_checks_of_its_cards(cast, people, population, counters, software):
    mine, theirs = people
    staff, lgo, other = counters(cast.staff), software(), counters(cast.outsider)
    ledger = Ledger()
    switch = _off(target=Switch.Target.INSURER, insurer=population.insurers[0])

    assert not portal_answered(staff.check(mine[0]))
    assert not api_answered(lgo.check(mine[1]))
    assert not portal_answered(other.check(mine[2], domain="PHAR"))
    assert ledger.gained() == 0
    assert portal_answered(staff.check(theirs[0]))  # the same counter, another insurer's card
    assert api_answered(lgo.check(theirs[1]))
    assert ledger.gained() == 2
    assert set(Disclosure.objects.values_list("insurer_id", flat=True)) == {population.insurers[1].pk}

    switches.switch_on(switch)
    assert portal_answered(staff.check(mine[0])) and ledger.gained() == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"target": Switch.Target.CHANNEL, "channel": Switch.Channel.PORTAL_RIGHTS},
        {"target": Switch.Target.ORGANISATION},
        {"target": Switch.Target.INSURER},
    ],
    ids=["portal-channel", "organisation", "insurer"],
)
@pytest.mark.django_db
def test_cutting_one_care_domain_leaves_the_others(cast, people, population, counters, software, fields):
    mine, _theirs = people
    cast.optician.professional.domains = ["OPTI", "AUDI", "PHAR"]  # a shop with three trades
    cast.optician.professional.save(update_fields=["domains"])
    staff, lgo = counters(cast.staff), software()
    if fields["target"] == Switch.Target.ORGANISATION:
        fields = {**fields, "organisation": cast.optician}
    if fields["target"] == Switch.Target.INSURER:
        fields = {**fields, "insurer": population.insurers[0]}
    ledger = Ledger()
    switch = _off(domain="OPTI", **fields)

    assert not portal_answered(staff.check(mine[0], domain="OPTI"))
    assert ledger.gained() == 0
    assert portal_answered(staff.check(mine[1], domain="AUDI"))
    assert portal_answered(staff.check(mine[2], domain="PHAR"))
    api_cut = fields.get("channel") != Switch.Channel.PORTAL_RIGHTS
    assert api_answered(lgo.check(mine[3], domain="OPTI")) is not api_cut
    assert ledger.gained() == 2 + (not api_cut)
    assert not Disclosure.objects.filter(domain="OPTI", channel="portal").exists()

    switches.switch_on(switch)
    assert portal_answered(staff.check(mine[0], domain="OPTI")) and ledger.gained() == 1


@pytest.mark.django_db
def test_a_switch_made_elsewhere_is_effective_after_the_refresh(cast, people, counters, monkeypatch):
    """Another process switched off: this one sees it at its next re-read (REFRESH_SECONDS), not before."""
    mine, _theirs = people
    staff = counters(cast.staff)
    assert portal_answered(staff.check(mine[0]))  # the switches are now cached in this process
    Switch.objects.create(target=Switch.Target.ACCOUNT, user=cast.staff, reason="autre processus")
    assert portal_answered(staff.check(mine[1]))  # still cached
    monkeypatch.setitem(switches._cache, "at", switches._cache["at"] - switches.REFRESH_SECONDS - 1)
    assert not portal_answered(staff.check(mine[2]))


# --- the command ---------------------------------------------------------------------------------------


def _run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("switch", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_the_command_cuts_a_channel_and_switches_it_back_on(cast, people, counters, software):
    mine, _theirs = people
    staff, lgo = counters(cast.staff), software()
    output = _run(
        "off", "--reason", "portail compromis", "--channel", "portal_rights", "--by", cast.analyst.email
    )
    switch = Switch.objects.get()
    assert f"Switch #{switch.pk} off" in output and "portal_rights" in output
    assert switch.target == "channel" and switch.channel == "portal_rights" and switch.off_by == cast.analyst
    assert switch.reason == "portail compromis" and not switch.by_system

    assert not portal_answered(staff.check(mine[0]))
    assert api_answered(lgo.check(mine[1]))
    listing = _run("list")
    assert f"#{switch.pk}" in listing and "portail compromis" in listing and cast.analyst.email in listing

    output = _run("on", str(switch.pk), "--by", cast.analyst.email)
    assert f"Switch #{switch.pk} back on" in output
    assert portal_answered(staff.check(mine[0]))
    assert _run("list") == "Nothing is switched off.\n"
    assert f"#{switch.pk}" in _run("list", "--all")
    tags = list(SecurityEvent.objects.filter(tag__startswith="switch.").values_list("tag", flat=True))
    assert sorted(tags) == ["switch.off", "switch.on"]


@pytest.mark.django_db
def test_the_command_targets(cast, population):
    raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]
    prefix = raw.split("_")[1]
    _run("off", "--reason", "r", "--account", cast.staff.email.upper(), "--channel", "portal_rights")
    _run("off", "--reason", "r", "--token", raw)  # the whole token is accepted; only its prefix is used
    _run("off", "--reason", "r", "--organisation", str(cast.optician.pk), "--domain", "opti")
    _run("off", "--reason", "r", "--insurer", population.insurers[1].amc_number)
    _run("off", "--reason", "r", "--channel", "api_rights", "--channel", "portal_rights")
    made = {(s.target, s.channel, s.domain) for s in Switch.objects.all()}
    assert made == {
        ("account", "portal_rights", ""),
        ("token", "", ""),
        ("organisation", "", "OPTI"),
        ("insurer", "", ""),
        ("channel", "api_rights", ""),
        ("channel", "portal_rights", ""),
    }
    assert Switch.objects.get(target="token").token.prefix == prefix
    events = SecurityEvent.objects.filter(tag="switch.off")
    assert events.count() == 6
    account = events.get(details__target="account")  # the account's own security events show it
    assert account.user == cast.staff and account.organisation == cast.optician
    assert account.details["reason"] == "r" and account.details["via"] == "cli"
    assert events.get(details__target="token").organisation == cast.optician
    listing = _run("list")
    assert raw not in listing and f"rmp_{prefix}…" in listing
    again = _run("off", "--reason", "r", "--insurer", population.insurers[1].amc_number)
    assert again.startswith("Already off") and Switch.objects.filter(target="insurer").count() == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["off", "--reason", "r", "--account", "nobody@nowhere.test"], "no account with the email"),
        (["off", "--reason", "r", "--token", "deadbeef"], "no API token with the prefix deadbeef"),
        (["off", "--reason", "r", "--organisation", "999999"], "no organisation with the id 999999"),
        (["off", "--reason", "r", "--insurer", "111111111"], "no insurer with the AMC number 111111111"),
        (["off", "--reason", "r"], "say what to cut"),
        (["off", "--reason", "   ", "--channel", "api_rights"], "--reason: say why"),
        (["off", "--channel", "api_rights"], "--reason"),
        (["off", "--reason", "r", "--channel", "sms"], "invalid choice"),
        (["off", "--reason", "r", "--channel", "api_rights", "--domain", "XXXX"], "unknown care domain"),
        (["off", "--reason", "r", "--account", "a@b.test", "--insurer", "123456789"], "not allowed with"),
        (
            ["off", "--reason", "r", "--channel", "api_rights", "--by", "staff@shop.test"],
            "not operator security",
        ),
        (["on", "424242"], "no switch #424242"),
        (["on"], "required: ID"),
    ],
)
@pytest.mark.django_db
def test_the_command_says_clearly_what_is_wrong(cast, args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        _run(*args)
    assert not Switch.objects.exists()


@pytest.mark.django_db
def test_the_command_refuses_organisations_that_do_not_check_rights_and_switches_already_on(cast):
    with pytest.raises(CommandError, match="not a professional organisation"):
        _run("off", "--reason", "r", "--organisation", str(cast.insurer.pk))
    switch = _off(target=Switch.Target.CHANNEL, channel=Switch.Channel.API_RIGHTS)
    _run("on", str(switch.pk))
    with pytest.raises(CommandError, match="already back on"):
        _run("on", str(switch.pk))
    system = switches.switch_off(
        target=Switch.Target.ACCOUNT, user=cast.staff, reason="canari", by_system=True
    )
    assert "switched off by the system" in _run("on", str(system.pk))


def test_switches_hold_even_with_surveillance_turned_off(settings, cast, population):
    """REMPART_SURVEILLANCE_ENABLED=0 turns off the signals and the ladder, never the operator's switches."""
    from rempart.gate import Actor, check_rights
    from rempart.surveillance import switches
    from rempart.surveillance.engine import CheckRefused
    from rempart.surveillance.models import Switch

    from .conftest import card_of

    settings.REMPART_SURVEILLANCE_ENABLED = False
    switches.switch_off(target=Switch.Target.CHANNEL, channel=Switch.Channel.PORTAL_RIGHTS, reason="test")
    actor = Actor(channel="portal", organisation_id=cast.optician.pk, user_id=cast.staff.pk, ip="203.0.113.9")
    row = population.people[population.insurers[0].pk][0]
    with pytest.raises(CheckRefused) as refused:
        check_rights(actor, card_of(row))
    assert refused.value.code == "switched_off"
