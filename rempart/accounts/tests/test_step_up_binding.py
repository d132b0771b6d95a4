"""Issue 12: a session is bound to where it logged in, a proof counts only where it was made, and a person
with a passkey steps up with the passkey. Each attack is played over HTTP with separate test clients
(separate cookie jars, addresses and browsers)."""

from __future__ import annotations

import re

import pytest
from allauth.core import context
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.core import mail
from django.test import Client, RequestFactory

from rempart.accounts import invitations
from rempart.accounts.mfa_forms import ReauthenticateForm
from rempart.accounts.models import Role, SecurityEvent
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.ledger.models import Disclosure
from rempart.surveillance.models import Alert
from rempart.testing import PASSWORD, login, totp_code

from .helpers import age_second_factor
from .passkey import SoftPasskey

SHOP = "203.0.113.7"
ELSEWHERE = "198.51.100.66"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/141.0 Safari/537.36"
SENSITIVE = "/accounts/2fa/webauthn/add/"  # adding a passkey: a step-up page any person may open
CODE_PROMPT = "/accounts/2fa/reauthenticate/"
PASSKEY_PROMPT = "/accounts/2fa/webauthn/reauthenticate/"


@pytest.fixture(autouse=True)
def surveillance_on(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = True


def browser(address: str, agent: str = FIREFOX) -> Client:
    return Client(REMOTE_ADDR=address, HTTP_USER_AGENT=agent)


def steal(victim: Client, thief: Client, *, device_cookie: bool = True) -> None:
    """The thief's browser gets the victim's session cookie (and, unless told otherwise, its device cookie)."""
    names = ["sessionid", DEVICE_COOKIE] if device_cookie else ["sessionid"]
    for name in names:
        thief.cookies[name] = victim.cookies[name].value


def stepped_up(response, prompt: str = CODE_PROMPT) -> bool:
    return response.status_code == 302 and response.url.startswith(prompt)


# --- 2. binding: a cookie used from another address or device ------------------------------------------


def test_a_stolen_cookie_replayed_from_another_address_is_stepped_up_at_its_first_request(cast):
    victim = browser(SHOP)
    login(victim, cast.staff, cast.secrets[cast.staff.email])
    thief = browser(ELSEWHERE)  # same browser make, the device cookie copied too: only the address differs
    steal(victim, thief)

    first = thief.get("/comptoir/droits/")
    assert stepped_up(first) and "next=%2Fcomptoir%2Fdroits%2F" in first.url
    for path in ("/", "/compte/securite/", "/comptoir/historique/", "/organisation/evenements/"):
        assert stepped_up(thief.get(path)), path
    assert stepped_up(thief.post("/compte/securite/deconnexion-partout/"))  # nothing changes either
    prompt = thief.get(first.url)
    assert prompt.status_code == 200 and 'name="code"' in prompt.content.decode()  # only the prompt opens

    event = SecurityEvent.objects.get(user=cast.staff, tag="session.context_changed")  # once, not per request
    assert event.ip_address == ELSEWHERE and event.organisation == cast.optician
    assert event.details["address_changed"] and not event.details["device_changed"]
    assert event.details["login_network"] == SHOP and len(event.details["session"]) == 32
    alert = Alert.objects.get(signal="session_context_changed")
    assert alert.user == cast.staff and alert.ip_address == ELSEWHERE and alert.severity == "warning"
    assert (
        alert.level == 2 and alert.evidence["session_context_changed"]["session"] == event.details["session"]
    )

    # Meanwhile the person at the shop works as usual: same browser, same address, never asked.
    for path in ("/comptoir/droits/", "/compte/securite/", "/comptoir/historique/"):
        assert victim.get(path).status_code == 200, path
    assert SecurityEvent.objects.filter(tag="session.context_changed").count() == 1


def test_a_stolen_cookie_replayed_from_another_device_behind_the_same_address_is_stepped_up(cast):
    victim = browser(SHOP)
    login(victim, cast.staff, cast.secrets[cast.staff.email])
    colleague_pc = browser(SHOP, CHROME)  # the shop's other computer: same address, its own browser
    steal(victim, colleague_pc, device_cookie=False)
    assert stepped_up(colleague_pc.get("/comptoir/droits/"))
    event = SecurityEvent.objects.get(tag="session.context_changed")
    assert event.details["device_changed"] and not event.details["address_changed"]

    same_agent = browser(SHOP)  # even the same browser make, without the device cookie
    steal(victim, same_agent, device_cookie=False)
    assert stepped_up(same_agent.get("/comptoir/droits/"))
    assert victim.get("/comptoir/droits/").status_code == 200


def test_an_ipv6_session_is_bound_to_its_64_network(cast):
    home = browser("2001:db8:1:2::10")
    login(home, cast.owner, cast.secrets[cast.owner.email])
    same_network = browser("2001:db8:1:2:a1b2:c3d4:e5f6:1")  # a new privacy address of the same /64
    steal(home, same_network)
    assert same_network.get("/compte/securite/").status_code == 200
    other_network = browser("2001:db8:1:3::10")
    steal(home, other_network)
    assert stepped_up(other_network.get("/compte/securite/"))
    assert (
        SecurityEvent.objects.get(tag="session.context_changed").details["login_network"]
        == "2001:db8:1:2::/64"
    )


def test_the_person_who_moves_proves_the_factor_and_goes_on_but_a_proof_counts_only_where_it_was_made(cast):
    secret = cast.secrets[cast.staff.email]
    shop = browser(SHOP)
    login(shop, cast.staff, secret, step=-1)  # each TOTP step is accepted once: three proofs, three steps
    mobile = browser("192.0.2.44")  # the same laptop, now on a phone's connection
    steal(shop, mobile)
    first = mobile.get("/comptoir/droits/")
    assert stepped_up(first)
    proved = mobile.post(CODE_PROMPT + "?next=/comptoir/droits/", {"code": totp_code(secret)})
    assert proved.status_code == 302 and proved.url == "/comptoir/droits/"
    assert mobile.get("/comptoir/droits/").status_code == 200  # proved from here: bound here too
    assert shop.get("/comptoir/droits/").status_code == 200  # and still from the shop

    thief = browser(ELSEWHERE)  # the same cookie from a third place: the mobile proof does not count there
    steal(shop, thief)
    assert stepped_up(thief.get("/comptoir/droits/"))
    assert stepped_up(thief.get(SENSITIVE))

    # A step-up proved at the shop for a sensitive action counts at the shop only.
    age_second_factor(shop, 400)
    assert stepped_up(shop.get(SENSITIVE))
    assert shop.post(CODE_PROMPT, {"code": totp_code(secret, 1)}).status_code == 302
    assert shop.get(SENSITIVE).status_code == 200
    assert stepped_up(mobile.get(SENSITIVE))  # the mobile's own proof is 400 s old
    events = SecurityEvent.objects.filter(tag="session.context_changed").order_by("pk")
    assert [e.ip_address for e in events] == ["192.0.2.44", ELSEWHERE]


def test_pushing_on_from_elsewhere_suspends_the_account(cast):
    victim = browser(SHOP)
    login(victim, cast.staff, cast.secrets[cast.staff.email])
    thief = browser(ELSEWHERE, CHROME)
    steal(victim, thief, device_cookie=False)
    form = {"amc_number": "123456789", "adherent_number": "ADH1", "nir": "", "birth_date": "01/01/1980",
            "birth_rank": "", "domain": "OPTI", "care_date": ""}  # fmt: skip
    suspended_at = None
    for attempt in range(1, 11):
        response = thief.post("/comptoir/droits/", form)
        if not stepped_up(response):
            assert response.status_code == 302 and response.url.startswith("/accounts/login/")
            suspended_at = attempt
            break
    assert suspended_at == 6  # more than 5 refused attempts in the hour: suspended at the 6th
    assert not Disclosure.objects.exists()  # nothing was ever checked
    cast.staff.refresh_from_db()
    assert cast.staff.suspended_at is not None
    assert victim.get("/comptoir/droits/").url.startswith("/accounts/login/")  # every session ended
    assert Alert.objects.filter(user=cast.staff, level=3, signal="blocked_attempts").exists()


def test_a_session_opened_without_an_address_is_bound_at_its_first_request(client, client_class, cast):
    client.force_login(cast.owner)  # no HTTP request behind it (tests, sessions older than binding)
    assert client.get("/compte/securite/").status_code == 200
    assert client.get("/compte/securite/").status_code == 200
    other = client_class(REMOTE_ADDR=ELSEWHERE)
    other.cookies["sessionid"] = client.cookies["sessionid"].value
    assert stepped_up(other.get("/compte/securite/"))


def test_an_enrolment_session_used_from_elsewhere_is_signed_out(cast):
    _invitation, raw = invitations.invite(cast.optician, "new@shop.test", Role.STAFF, cast.owner)
    newcomer = browser(SHOP)
    accepted = newcomer.post(
        f"/invitation/{raw}/", {"full_name": "N", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert accepted.status_code == 302
    assert newcomer.get("/accounts/2fa/totp/activate/").status_code == 200
    thief = browser(ELSEWHERE)
    steal(newcomer, thief)
    response = thief.get("/accounts/2fa/totp/activate/")  # enrolling the thief's own factor: no
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert newcomer.get("/accounts/2fa/totp/activate/").status_code == 302  # the session is gone for both


# --- 3. a person with a passkey steps up with it ------------------------------------------------------


@pytest.fixture
def passkey(cast):
    key = SoftPasskey()
    key.enrol(cast.owner)
    return key


def test_with_a_passkey_step_up_takes_the_passkey_and_refuses_codes(cast, passkey):
    secret = cast.secrets[cast.owner.email]
    owner = browser(SHOP)
    login(owner, cast.owner, secret)  # a code at login (the passkey may be at home)…
    asked = owner.get(SENSITIVE)
    assert stepped_up(asked, PASSKEY_PROMPT)  # …is no proof for step-up, however fresh

    # A code, even a right one (phished and relayed in real time), is not accepted for step-up.
    relayed = owner.post(CODE_PROMPT + f"?next={SENSITIVE}", {"code": totp_code(secret, 1)})
    assert stepped_up(relayed, PASSKEY_PROMPT)
    recovery = RecoveryCodes.activate(cast.owner).generate_codes()[0]
    assert stepped_up(owner.post(CODE_PROMPT, {"code": recovery}), PASSKEY_PROMPT)
    assert stepped_up(owner.get(SENSITIVE), PASSKEY_PROMPT)
    assert not SecurityEvent.objects.filter(user=cast.owner, tag="mfa.step_up").exists()

    page = owner.get(asked.url).content.decode()
    assert 'name="code"' not in page and 'name="credential"' in page
    done = owner.post(asked.url, {"credential": passkey.sign(page)})
    assert done.status_code == 302 and done.url == SENSITIVE
    assert owner.get(SENSITIVE).status_code == 200
    assert SecurityEvent.objects.get(user=cast.owner, tag="mfa.step_up").details["factor"] == "webauthn"


def test_a_passkey_assertion_without_user_verification_does_not_step_up(cast, passkey):
    owner = browser(SHOP)
    login(owner, cast.owner, cast.secrets[cast.owner.email])
    page = owner.get(PASSKEY_PROMPT + f"?next={SENSITIVE}").content.decode()
    owner.post(PASSKEY_PROMPT + f"?next={SENSITIVE}", {"credential": passkey.sign(page, verified=False)})
    assert stepped_up(owner.get(SENSITIVE), PASSKEY_PROMPT)


def test_the_code_form_refuses_a_right_code_when_the_person_has_a_passkey(cast, passkey):
    request = RequestFactory().post(CODE_PROMPT)
    request.user = cast.owner
    code = totp_code(cast.secrets[cast.owner.email])
    with context.request_context(request):
        form = ReauthenticateForm(data={"code": code}, user=cast.owner)
        assert not form.is_valid()
    assert "clé d'accès" in form.errors["code"][0]
    event = SecurityEvent.objects.get(user=cast.owner, tag="mfa.failed")
    assert event.details == {"factor": "totp", "step_up": True, "reason": "passkey_required"}
    fresh = browser(SHOP)  # the code was refused unread: not spent, it still logs in
    assert login(fresh, cast.owner, cast.secrets[cast.owner.email]).status_code == 302
    assert fresh.get("/compte/securite/").status_code == 200


# --- 4. the prompt offers exactly what satisfies step-up --------------------------------------------------

WEAKER = ("/accounts/reauthenticate/", "/accounts/reauthenticate/code/")  # password, emailed code


def test_the_code_prompt_offers_codes_only_never_the_password_or_an_emailed_code(cast):
    staff = browser(SHOP)
    login(staff, cast.staff, cast.secrets[cast.staff.email])
    age_second_factor(staff, 400)
    asked = staff.get(SENSITIVE)
    page = staff.get(asked.url).content.decode()
    assert 'name="code"' in page and 'name="password"' not in page and 'name="credential"' not in page
    assert not any(path in page for path in WEAKER)
    assert "Confirmer votre second facteur" in page
    mail.outbox.clear()
    for path in WEAKER:  # allauth's own pages send to the code prompt instead
        assert stepped_up(staff.get(path)), path
        assert stepped_up(staff.post(path, {"password": PASSWORD, "email": cast.staff.email})), path
    assert not mail.outbox  # no sign-in code was emailed
    assert stepped_up(staff.get(SENSITIVE))  # the password proved nothing


def test_the_passkey_prompt_offers_the_passkey_only(cast, passkey):
    owner = browser(SHOP)
    login(owner, cast.owner, cast.secrets[cast.owner.email])
    page = owner.get(PASSKEY_PROMPT).content.decode()
    assert 'name="credential"' in page and 'name="code"' not in page and 'name="password"' not in page
    assert not any(path in page for path in (*WEAKER, 'href="' + CODE_PROMPT))
    assert re.search(r'<script id="js_data" type="application/json">', page)
    for path in (*WEAKER, CODE_PROMPT):
        assert stepped_up(owner.get(path), PASSKEY_PROMPT), path


def test_the_prompts_and_the_refusal_are_translated(cast, passkey):
    staff = browser(SHOP)
    login(staff, cast.staff, cast.secrets[cast.staff.email])
    staff.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Confirm your second factor" in staff.get(CODE_PROMPT).content.decode()
    owner = browser(SHOP)
    login(owner, cast.owner, cast.secrets[cast.owner.email])
    owner.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Confirm with your passkey" in owner.get(PASSKEY_PROMPT).content.decode()
    thief = browser(ELSEWHERE)
    steal(staff, thief)
    thief.cookies["django_language"] = "en"
    page = thief.get("/comptoir/droits/", follow=True).content.decode()
    assert "another address or device than the one it signed in from" in page
