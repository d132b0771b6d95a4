"""The 2024 attacks, replayed over HTTP against a running Rempart (pytest-django's live server).

Each attack is a script speaking plain HTTP (urllib, cookies in a cookie jar): the attacker's browser
or program, not function calls. Each test asserts what the attacker obtained, and that the disclosure
ledger and the incident opened automatically tell exactly that: who, from where, which people.

The counters' clock (``clock`` fixture) runs the scripts at the pace stated (one check per second…)
without waiting; the live server thread reads the same patched clock.
"""

from __future__ import annotations

import html
import http.cookiejar
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from django.core import mail
from django.urls import URLPattern, URLResolver, get_resolver

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken, Invitation, Membership, SecurityEvent, User
from rempart.gate import check_rights
from rempart.incidents import workflow
from rempart.incidents.models import Incident, ScopeEntry
from rempart.ledger.models import Disclosure
from rempart.lib.identifiers import nir_check_key
from rempart.registry.models import ImportRun
from rempart.surveillance import canaries
from rempart.surveillance.models import Alert, Canary
from rempart.testing import PASSWORD, totp_code

from .conftest import COL, actor_for, card_of

VICTIM_ADDRESS = "203.0.113.7"  # the shop
ATTACKER_ADDRESS = "198.51.100.66"  # somewhere else

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def behind_one_proxy(settings):
    """The live server sees 127.0.0.1: each browser gives its own address as a proxy would."""
    settings.REMPART_TRUSTED_PROXY_COUNT = 1


# --- a small HTTP client: one cookie jar, no automatic redirects ---------------------------------------

CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
REFERENCE = re.compile(r'id="check-reference">([^<]+)<')
OUTCOME = re.compile(r'class="answer answer-(covered|not_covered|no_match)"')


@dataclass
class Page:
    status: int
    headers: object
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def json(self):
        return json.loads(self.text)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the script looks at each redirect itself


class Browser:
    def __init__(self, base: str, address: str) -> None:
        self.base, self.address, self.csrf = base, address, ""
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def send(self, method: str, path: str, *, form=None, body=None, headers=None) -> Page:
        sent = {"X-Forwarded-For": self.address, "User-Agent": "attack-script/1.0", **(headers or {})}
        data = None
        if form is not None:
            data = urlencode({**form, "csrfmiddlewaretoken": self.csrf}).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with self.opener.open(request, timeout=30) as response:
                page = Page(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            with error:
                page = Page(error.code, error.headers, error.read().decode())
        token = CSRF_INPUT.search(page.text)
        if token:
            self.csrf = token.group(1)
        return page

    def get(self, path: str, **kwargs) -> Page:
        return self.send("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Page:
        return self.send("POST", path, **kwargs)

    def password(self, user: User) -> Page:
        self.get("/accounts/login/")
        return self.post("/accounts/login/", form={"login": user.email, "password": PASSWORD})

    def log_in(self, user: User, secret: str) -> None:
        page = self.password(user)
        assert page.status == 302 and page.location.startswith("/accounts/2fa/authenticate"), page.status
        self.get(page.location)
        page = self.post("/accounts/2fa/authenticate/", form={"code": totp_code(secret)})
        assert page.status == 302 and not page.location.startswith("/accounts/"), (page.status, page.location)

    def open_counter(self) -> None:
        """The counter page (its form's CSRF token: the login rotated it)."""
        page = self.get("/comptoir/droits/")
        assert page.status == 200 and self.csrf, page.status

    def cookie(self, name: str) -> http.cookiejar.Cookie | None:
        return next((c for c in self.jar if c.name == name), None)

    def steal_session_of(self, victim: Browser) -> None:
        self.jar.set_cookie(victim.cookie("sessionid"))

    def take_over_browser_of(self, victim: Browser) -> None:
        """Malware on the victim's own computer: every cookie, the same address and browser."""
        for cookie in victim.jar:
            self.jar.set_cookie(cookie)

    def check_at_counter(self, row: list[str], domain: str = "OPTI") -> Page:
        return self.post("/comptoir/droits/", form=_portal_form(row, domain))

    def check_by_api(self, raw: str, row: list[str], domain: str = "OPTI") -> Page:
        return self.post(
            "/api/v1/rights/check", body=_api_body(row, domain), headers={"Authorization": f"Bearer {raw}"}
        )


def _portal_form(row: list[str], domain: str) -> dict:
    own_nir = row[COL["nir"]]
    year, month, day = row[COL["birth_date"]].split("-")
    return {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": own_nir or row[COL["ouvrant_droit_nir"]],
        "birth_date": f"{day}/{month}/{year}",
        "birth_rank": "" if own_nir else row[COL["birth_rank"]],
        "domain": domain,
        "care_date": "",
    }


def _api_body(row: list[str], domain: str) -> dict:
    own_nir = row[COL["nir"]]
    body = {
        "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]],
        "nir": own_nir or row[COL["ouvrant_droit_nir"]],
        "birth_date": row[COL["birth_date"]],
        "domain": domain,
    }
    if not own_nir:
        body["birth_rank"] = int(row[COL["birth_rank"]])
    return body


@dataclass
class Answer:
    reference: str
    outcome: str


def _portal_answer(page: Page) -> Answer | None:
    if page.status != 200:
        return None
    reference, outcome = REFERENCE.search(page.text), OUTCOME.search(page.text)
    assert reference and outcome, page.text[:500]
    return Answer(html.unescape(reference.group(1)), outcome.group(1))


def _valid_people(population) -> list[list[str]]:
    first, second = population.insurers
    return population.people[first.pk] + population.people[second.pk]


# --- what the ledger and the incident say ----------------------------------------------------------------


def _ledger_of(**actor) -> list[Disclosure]:
    return list(Disclosure.objects.filter(purpose="rights_check", **actor).order_by("id"))


def _suspension(**actor) -> tuple[Alert, Incident]:
    """The automatic suspension of one actor: its critical alert and the incident opened with it."""
    alert = Alert.objects.filter(level=3, **actor).get()
    assert alert.severity == Alert.Severity.CRITICAL and alert.incident is not None
    incident = alert.incident
    assert incident.source == Incident.Source.ALERT and incident.status == Incident.Status.OPEN
    assert "suspendu automatiquement" in incident.measures
    return alert, incident


def _assert_scope_tells_the_ledger(incident: Incident, rows: list[Disclosure], **actor) -> None:
    """The incident's frozen scope lists exactly the people the ledger says the actor obtained."""
    scope = incident.scopes.get()
    assert scope.ledger_ok, scope.ledger_report
    entries = list(ScopeEntry.objects.filter(scope=scope))
    people = {r.beneficiary_id for r in rows if r.beneficiary_id is not None}
    assert {e.beneficiary_id for e in entries} == people
    assert scope.people == len(people)
    assert scope.disclosures == sum(1 for r in rows if r.beneficiary_id is not None)
    assert scope.misses == sum(1 for r in rows if r.outcome == Disclosure.Outcome.NO_MATCH)
    for entry in entries:
        assert all(getattr(entry, field) == value for field, value in actor.items()), entry
        assert "identity_confirmed" in entry.fields


# --- 1. a phished password, without the second factor ------------------------------------------------------


def test_a_phished_password_without_the_second_factor_reaches_nothing(live_server, cast, population, clock):
    attacker = Browser(live_server.url, ATTACKER_ADDRESS)
    page = attacker.password(cast.staff)
    assert page.status == 302 and page.location.startswith("/accounts/2fa/authenticate")
    second_factor = attacker.get(page.location)
    assert second_factor.status == 200 and 'name="code"' in second_factor.text
    for guess in (totp_code(cast.secrets[cast.staff.email], 40), "000000"):  # no code: guesses fail
        page = attacker.post("/accounts/2fa/authenticate/", form={"code": guess})
        assert page.status == 200 and 'name="code"' in page.text

    row = _valid_people(population)[0]
    for page in (
        attacker.get("/comptoir/droits/"),
        attacker.check_at_counter(row),
        attacker.get("/comptoir/historique/"),
        attacker.get("/"),
    ):
        assert page.status == 302 and page.location.startswith("/accounts/login/"), (
            page.status,
            page.location,
        )
    api = attacker.post("/api/v1/rights/check", body=_api_body(row, "OPTI"))  # the session cookie is no token
    assert api.status == 401 and "Bearer" in api.json()["detail"]

    assert not Disclosure.objects.exists()
    assert SecurityEvent.objects.filter(user=cast.staff, tag="mfa.failed").count() == 2
    assert not SecurityEvent.objects.filter(user=cast.staff, tag="login.success").exists()


# --- 2. a stolen session cookie, scripting checks -------------------------------------------------------------


def test_a_stolen_session_cookie_replayed_from_elsewhere_reads_nothing_and_is_suspended(
    live_server, cast, population, clock
):
    victim = Browser(live_server.url, VICTIM_ADDRESS)
    victim.log_in(cast.staff, cast.secrets[cast.staff.email])
    victim.open_counter()

    attacker = Browser(live_server.url, ATTACKER_ADDRESS)
    attacker.steal_session_of(victim)
    first = attacker.get("/comptoir/droits/")  # the session is bound to the shop's address and browser
    assert first.status == 302 and first.location.startswith("/accounts/2fa/reauthenticate"), first.location
    assert attacker.get(first.location).status == 200 and attacker.csrf  # only the prompt opens
    signed_out_at = None
    for attempt, row in enumerate(_valid_people(population)[:20], start=1):
        page = attacker.check_at_counter(row)
        clock.advance(1)
        if page.status == 302 and page.location.startswith("/accounts/login/"):
            signed_out_at = attempt
            break
        assert page.status == 302 and page.location.startswith("/accounts/2fa/reauthenticate"), page.location
    assert signed_out_at == 6  # pushing on: more than 5 refused attempts in the hour
    assert victim.get("/comptoir/droits/").location.startswith("/accounts/login/")  # every session ended

    assert not _ledger_of(user_id=cast.staff.pk)  # the attacker read nothing
    event = SecurityEvent.objects.get(user=cast.staff, tag="session.context_changed")
    assert event.ip_address == ATTACKER_ADDRESS and event.details["address_changed"]
    assert event.details["device_changed"]  # the device cookie was not stolen
    moved = Alert.objects.get(user=cast.staff, signal="session_context_changed")
    assert moved.level == 2 and moved.ip_address == ATTACKER_ADDRESS
    alert, incident = _suspension(user=cast.staff)
    assert alert.signal == "blocked_attempts" and alert.ip_address == ATTACKER_ADDRESS
    assert incident.scopes.get().people == 0  # nobody was exposed: the incident says so
    assert any(m.to == [cast.owner.email] and "suspendu" in m.body for m in mail.outbox)


def test_a_session_scripted_from_the_victims_own_browser_is_stepped_up_then_suspended_before_20_confirmations(
    live_server, cast, population, clock
):
    victim = Browser(live_server.url, VICTIM_ADDRESS)
    victim.log_in(cast.staff, cast.secrets[cast.staff.email])
    victim.open_counter()

    attacker = Browser(live_server.url, VICTIM_ADDRESS)  # what binding cannot tell from the victim
    attacker.take_over_browser_of(victim)
    attacker.open_counter()
    seen: list[Answer] = []
    stepped_up_at = signed_out_at = None
    for attempt, row in enumerate(_valid_people(population)[:60], start=1):
        page = attacker.check_at_counter(row)
        clock.advance(1)  # one check per second
        if (answer := _portal_answer(page)) is not None:
            seen.append(answer)
        elif page.status == 302 and page.location.startswith("/accounts/2fa/reauthenticate"):
            stepped_up_at = stepped_up_at or attempt  # a fresh second factor is asked: the script has none
        elif page.status == 302 and page.location.startswith("/accounts/login/"):
            signed_out_at = attempt
            break
        else:
            pytest.fail(f"unexpected answer at attempt {attempt}: {page.status} {page.location}")
    confirmed = [a for a in seen if a.outcome != "no_match"]
    assert stepped_up_at is not None and stepped_up_at <= 8, stepped_up_at
    assert signed_out_at is not None, "never suspended"
    assert len(confirmed) < 20 and not any(a.outcome == "no_match" for a in seen)

    staff = User.objects.get(pk=cast.staff.pk)
    assert staff.suspended_at is not None
    assert victim.get("/comptoir/droits/").location.startswith("/accounts/login/")  # every session ended

    # The ledger: one row per answer the attacker read, in that one session, nothing else.
    rows = _ledger_of(user_id=staff.pk)
    assert [r.reference for r in rows] == [a.reference for a in seen]
    assert [r.outcome for r in rows] == [a.outcome for a in seen]
    assert {r.ip_address for r in rows} == {VICTIM_ADDRESS} and {r.channel for r in rows} == {"portal"}
    assert len({r.session_ref for r in rows}) == 1 and rows[0].session_ref
    assert len({r.beneficiary_id for r in rows}) == len(confirmed)
    assert not SecurityEvent.objects.filter(tag="session.context_changed").exists()

    # The incident: opened on suspension, its scope frozen with exactly those people.
    alert, incident = _suspension(user=staff)
    assert alert.organisation_id == cast.optician.pk and alert.ip_address == VICTIM_ADDRESS
    step_up = Alert.objects.get(user=staff, level=2)  # the step-up, recorded with its evidence
    assert (
        step_up.signal == "velocity_minute" and step_up.evidence["velocity_minute"]["checks_last_minute"] > 6
    )
    _assert_scope_tells_the_ledger(incident, rows, user_id=staff.pk, token_id=None)
    assert staff.email in incident.title
    assert any(m.to == [cast.owner.email] and "suspendu" in m.body for m in mail.outbox)


# --- 3. a stolen API token ---------------------------------------------------------------------------------


def test_a_stolen_api_token_is_throttled_then_suspended(live_server, cast, population, clock):
    token, raw = tokens.create_token(cast.optician, "LGO de la boutique", ["rights:check"], cast.owner)
    thief = Browser(live_server.url, ATTACKER_ADDRESS)
    references, throttled, suspended_at = [], [], None
    for attempt, row in enumerate(_valid_people(population)[:60], start=1):
        page = thief.check_by_api(raw, row)
        clock.advance(1)
        if page.status == 200:
            references.append(page.json()["reference"])
        elif page.status == 429:
            body = page.json()
            assert body["code"] == "rate_limited" and int(page.headers["Retry-After"]) >= 1
            assert "réessayez dans" in body["detail"]
            throttled.append(attempt)
        elif page.status == 403:
            assert page.json()["detail"] == "jeton suspendu par l'opérateur"
            suspended_at = attempt
            break
        else:
            pytest.fail(f"unexpected answer at attempt {attempt}: {page.status} {page.text[:200]}")
    assert throttled and throttled[0] <= 12, throttled
    assert suspended_at is not None and suspended_at <= throttled[0] + 7, (throttled, suspended_at)
    assert len(references) <= 11
    token = ApiToken.objects.get(pk=token.pk)
    assert token.suspended_at is not None
    again = thief.check_by_api(raw, _valid_people(population)[0])
    assert again.status == 403  # it stays suspended

    rows = _ledger_of(token_id=token.pk)
    assert [r.reference for r in rows] == references
    assert {r.channel for r in rows} == {"api"} and {r.ip_address for r in rows} == {ATTACKER_ADDRESS}
    assert all(r.user_id is None and r.beneficiary_id is not None for r in rows)
    alert, incident = _suspension(token=token)
    assert alert.user_id is None and f"rmp_{token.prefix}" in incident.title
    assert Alert.objects.filter(token=token, level=2).exists()  # the throttle, recorded
    _assert_scope_tells_the_ledger(incident, rows, token_id=token.pk, user_id=None)


# --- 4. enumeration of NIRs, and of adherent numbers ----------------------------------------------------------


def _nir_guesses(real_nir: str):
    """Valid-looking NIRs (with a correct key) around a real one: what an enumeration script tries."""
    body = real_nir[:10]
    for order in range(1, 1000):
        candidate = f"{body}{order:03d}"
        if candidate != real_nir[:13]:
            yield candidate + nir_check_key(candidate)


def test_guessing_nirs_at_the_counter_is_suspended_within_50_misses(live_server, cast, population, clock):
    guesser = Browser(live_server.url, ATTACKER_ADDRESS)
    guesser.log_in(cast.staff, cast.secrets[cast.staff.email])
    guesser.open_counter()
    target = next(r for r in _valid_people(population) if r[COL["nir"]])
    insurer_of = {insurer.amc_number: insurer.pk for insurer in population.insurers}
    misses, signed_out_at = [], None
    for attempt, nir in enumerate(_nir_guesses(target[COL["nir"]]), start=1):
        row = list(target)
        row[COL["nir"]] = nir
        page = guesser.check_at_counter(row)
        clock.advance(20)  # slow enough never to trip the velocity ceilings
        if (answer := _portal_answer(page)) is not None:
            assert answer.outcome == "no_match"
            misses.append(answer.reference)
        elif page.status == 302 and page.location.startswith("/accounts/login/"):
            signed_out_at = attempt
            break
        else:
            stepped_up = page.location.startswith("/accounts/2fa/reauthenticate")
            assert stepped_up, (page.status, page.location)
        assert attempt < 80, "never suspended"
    assert signed_out_at is not None and len(misses) <= 50, (signed_out_at, len(misses))
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None

    rows = _ledger_of(user_id=cast.staff.pk)
    assert [r.reference for r in rows] == misses
    assert all(r.outcome == "no_match" and r.beneficiary_id is None and r.presented_hash for r in rows)
    assert len({bytes(r.presented_hash) for r in rows}) == len(rows)  # each guess a different NIR
    assert {r.insurer_id for r in rows} == {insurer_of[target[COL["amc_number"]]]}  # the insurer exists
    alert, incident = _suspension(user=cast.staff)
    assert Alert.objects.filter(user=cast.staff, signal="misses", level=2).exists()
    _assert_scope_tells_the_ledger(incident, rows, user_id=cast.staff.pk)
    assert incident.scopes.get().people == 0  # nobody was exposed: the incident says so


def test_walking_adherent_numbers_through_the_api_is_suspended_within_50_misses(
    live_server, cast, population, clock
):
    token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    script = Browser(live_server.url, ATTACKER_ADDRESS)
    template = next(r for r in _valid_people(population) if r[COL["nir"]])
    misses, suspended_at = [], None
    for attempt, number in enumerate(range(5000, 5100), start=1):
        row = list(template)
        row[COL["adherent_number"]] = f"00{number:08d}"
        page = script.check_by_api(raw, row)
        clock.advance(10)
        if page.status == 200:
            assert page.json()["outcome"] == "no_match"
            misses.append(page.json()["reference"])
        elif page.status == 403:
            suspended_at = attempt
            break
        else:
            assert page.status == 429 and page.headers["Retry-After"], page.status
    assert suspended_at is not None and len(misses) <= 50, (suspended_at, len(misses))
    rows = _ledger_of(token_id=token.pk)
    assert [r.reference for r in rows] == misses
    assert all(r.outcome == "no_match" and r.beneficiary_id is None for r in rows)
    alert, incident = _suspension(token=token)
    assert Alert.objects.filter(token=token, signal="sequential_identifiers", level=2).exists()
    _assert_scope_tells_the_ledger(incident, rows, token_id=token.pk)


# --- 5. a leaked rights file, tested through an account (canary) -----------------------------------------------


def test_a_leaked_rights_file_is_caught_by_a_canary_at_the_first_hit(live_server, cast, population, clock):
    insurer = population.insurers[0]
    planted = canaries.plant(insurer, 2, seed=7)
    card = canaries.sealed_card(planted[0])
    leaked = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        leaked[COL[name]] = card[name]
    real = population.people[insurer.pk][:2]

    tester = Browser(live_server.url, ATTACKER_ADDRESS)
    tester.log_in(cast.staff, cast.secrets[cast.staff.email])
    tester.open_counter()
    seen = []
    for row in real:  # the leaked file's real people first, at a counter's pace: nothing happens
        seen.append(_portal_answer(tester.check_at_counter(row)))
        clock.advance(60)
        assert seen[-1] is not None and seen[-1].outcome != "no_match"
    assert not Alert.objects.filter(level__gte=2).exists()

    hit = tester.check_at_counter(leaked)  # the canary: the account is suspended at once
    assert hit.status == 200 and _portal_answer(hit).outcome != "no_match"  # answered as for anyone
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None
    after = tester.check_at_counter(real[0])
    assert after.status == 302 and after.location.startswith("/accounts/login/")

    alert = Alert.objects.get(signal="canary")
    assert alert.severity == Alert.Severity.CRITICAL and alert.level == 3 and alert.user_id == cast.staff.pk
    assert alert.evidence["canary"] == {
        "canary": planted[0].pk,
        "insurer": insurer.pk,
        "severity": "critical",
    }
    assert alert.ip_address == ATTACKER_ADDRESS
    assert Canary.objects.get(pk=planted[0].pk).last_hit_at is not None
    assert Canary.objects.get(pk=planted[1].pk).last_hit_at is None

    rows = _ledger_of(user_id=cast.staff.pk)
    assert [r.reference for r in rows[:2]] == [a.reference for a in seen] and len(rows) == 3
    canary_row = rows[2]
    assert canaries.tag_of(canary_row.beneficiary_id) == bytes(planted[0].tag)  # the ledger names the canary
    assert canary_row.insurer_id == insurer.pk
    _alert, incident = _suspension(user=cast.staff)
    assert incident == alert.incident
    _assert_scope_tells_the_ledger(incident, rows, user_id=cast.staff.pk)
    assert canary_row.beneficiary_id in set(
        incident.scopes.get().entries.values_list("beneficiary_id", flat=True)
    )
    assert any("canari" in m.body for m in mail.outbox)


# --- 6. a member of organisation B reaching organisation A's data -------------------------------------------------


def _routes(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_a_member_of_another_organisation_reaches_nothing_of_the_optician(
    live_server, cast, population, clock
):
    # Organisation A (the optician): checks, a token, a pending invitation; and an incident, an import.
    references = [check_rights(actor_for(cast.staff), card_of(row, "OPTI")).reference
                  for row in population.people[population.insurers[0].pk][:3]]  # fmt: skip
    token, _raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    invitation = Invitation.objects.create(
        organisation=cast.optician, email="new@shop.test", role="staff", token_hash="x" * 64,
        invited_by=cast.owner, expires_at=token.expires_at,
    )  # fmt: skip
    incident = workflow.open_incident(title="Test", detected_at=token.created_at)
    import_run = ImportRun.objects.filter(insurer=population.insurers[0]).first()
    staff_membership = Membership.objects.get(user=cast.staff)
    before = Disclosure.objects.count()

    # Organisation B's owner, properly logged in with both factors.
    other = Browser(live_server.url, ATTACKER_ADDRESS)
    other.log_in(cast.outsider, cast.secrets[cast.outsider.email])
    history = other.get("/comptoir/historique/")
    assert history.status == 200
    assert not any(reference in history.text for reference in references)
    assert cast.staff.email not in history.text

    probes = [
        ("POST", f"/organisation/membres/{staff_membership.pk}/role/", {"role": "owner"}),
        ("POST", f"/organisation/membres/{staff_membership.pk}/retirer/", {}),
        ("POST", f"/organisation/jetons/{token.pk}/revoquer/", {}),
        ("POST", f"/organisation/invitations/{invitation.pk}/annuler/", {}),
        ("GET", f"/operateur/incidents/{incident.pk}/", None),
        ("GET", f"/assureur/imports/{import_run.pk}/", None),
        ("GET", f"/assureur/imports/{import_run.pk}/rejets.csv", None),
    ]
    for method, path, form in probes:
        page = other.send(method, path, form=form)
        missing = other.send(method, re.sub(r"/\d+/", "/999999/", path, count=1), form=form)
        assert page.status == 404, (path, page.status, page.location)
        assert missing.status == 404 and page.text == missing.text  # "not yours" looks like "does not exist"

    # No listing or search of beneficiaries exists: not in the portal, not in the API.
    for path in ("/comptoir/beneficiaires/", "/comptoir/recherche/?q=Martin", "/api/v1/beneficiaries",
                 "/api/v1/rights/search?nir=1"):  # fmt: skip
        assert other.get(path).status == 404, path
    assert other.get("/api/v1/rights/check").status == 405  # one patient, by POST, with the card data only
    routes = list(_routes())
    assert not [r for r in routes if re.search(r"benef|patient|search|recherche|export", r, re.IGNORECASE)]
    schema = other.get("/api/v1/openapi.json").json()
    beneficiary_paths = {
        path: sorted(ops) for path, ops in schema["paths"].items() if path != "/api/v1/whoami"
    }
    assert beneficiary_paths == {
        "/api/v1/rights/check": ["post"],
        "/api/v1/pec": ["post"],
        "/api/v1/claims": ["post"],
        "/api/v1/claims/lots": ["post"],
        "/api/v1/claims/lots/jobs/{job_id}": ["get"],
        "/api/v1/claims/{invoice_number}": ["get"],
        "/api/v1/claims/{invoice_number}/credit-notes": ["post"],
        "/api/v1/claims/lots/{lot_number}/results.csv": ["get"],
        "/api/v1/claims/lots/{lot_number}/results": ["get"],
        "/api/v1/ledger/anchors": ["get"],
        # The organisation's own payments and their statements: invoice numbers and amounts, never a patient.
        "/api/v1/payments": ["get"],
        "/api/v1/payments/{reference}": ["get"],
        "/api/v1/payments/{reference}/statement.csv": ["get"],
        "/api/v1/payments/{reference}/statement.pdf": ["get"],
        # Insurers' tokens only (billing:read): their statements and detail files (their own adherents, for
        # money paid on their behalf; each download recorded in the ledger). A professional's token gets 403.
        "/api/v1/insurer/statements": ["get"],
        "/api/v1/insurer/statements/{number}": ["get"],
        "/api/v1/insurer/statements/{number}/detail": ["get"],
        "/api/v1/insurer/statements/{number}/pdf": ["get"],  # the statement itself: no beneficiary in it
    }  # one patient (or one invoice, or one lot of the organisation's own invoices) at a time
    # FHIR R4 (docs/fhir.md): the same two operations, one patient at a time, and the code systems they use.
    assert {r for r in routes if r.startswith("fhir/")} == {
        "fhir/r4/metadata",
        "fhir/r4/CoverageEligibilityRequest/$submit",
        "fhir/r4/Claim/$submit",
        "fhir/r4/CodeSystem/<str:system_id>",
        "fhir/r4/OperationDefinition/<str:name>",
        "fhir/^(?P<rest>.*)$",  # anything else: a FHIR 404
    }
    assert other.get("/fhir/r4/Patient?identifier=1").status == 404

    # Nothing changed in organisation A, and nothing was disclosed to B.
    assert Membership.objects.get(pk=staff_membership.pk).role == "staff"
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is None
    assert Disclosure.objects.count() == before
    assert not Disclosure.objects.filter(organisation_id=cast.other_shop.pk).exists()


def test_the_request_that_suspends_an_account_is_answered_cleanly(live_server, cast, population, clock):
    """A canary is answered like anyone (docs/surveillance.md): the tester must not tell it apart."""
    planted = canaries.plant(population.insurers[0], 1, seed=7)
    card = canaries.sealed_card(planted[0])
    leaked = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        leaked[COL[name]] = card[name]
    tester = Browser(live_server.url, ATTACKER_ADDRESS)
    tester.log_in(cast.staff, cast.secrets[cast.staff.email])
    tester.open_counter()
    hit = tester.check_at_counter(leaked)
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None
    assert hit.status == 200, hit.status
    assert _portal_answer(hit).outcome != "no_match"
