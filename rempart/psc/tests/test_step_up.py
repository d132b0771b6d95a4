"""Step-up through Pro Santé Connect: a fresh CPS or e-CPS authentication of the person logged in here."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from rempart.accounts.models import ApiToken, SecurityEvent
from rempart.accounts.tests.helpers import age_second_factor
from rempart.psc.tests.helpers import psc_login
from rempart.testing import login, totp_code

TOKEN_FORM = {"name": "Logiciel", "scopes": ["rights:check"], "lifetime_days": 30}
TOKENS = "http://testserver/organisation/jetons/"


def ask_for_a_token(client):
    return client.post("/organisation/jetons/creer/", TOKEN_FORM, HTTP_REFERER=TOKENS)


def step_up_prompt(client) -> tuple[str, str]:
    """A stale second factor: the sensitive action sends to the prompt; its page and the ``next`` it keeps."""
    age_second_factor(client, 400)
    response = ask_for_a_token(client)
    assert response.status_code == 302 and response.url.startswith("/accounts/2fa/reauthenticate/"), response
    next_url = parse_qs(urlsplit(response.url).query)["next"][0]
    return client.get(response.url).content.decode(), next_url


def step_up_with_psc(client, psc, identity, next_url: str):
    psc.at_card = identity
    response = client.post("/accounts/psc/login/", {"process": "redirect", "next": next_url})
    assert response.status_code == 302 and response.url.startswith(psc.issuer), response
    callback = psc.authenticate(response.url)
    return client.get(callback.removeprefix("http://testserver"))


def test_a_psc_session_steps_up_with_psc_in_the_same_session(client, psc, pros, cast):
    psc_login(client, psc, pros.owner)
    page, next_url = step_up_prompt(client)
    assert 'id="psc-step-up"' in page and 'id="mfa-code-submit"' in page
    session = client.session.session_key
    response = step_up_with_psc(client, psc, pros.owner, next_url)
    assert response.status_code == 302 and response.url == next_url == TOKENS
    asked = psc.authorize_requests[-1]
    assert asked["prompt"] == "login" and asked["max_age"] == "0"
    assert client.session.session_key == session  # no new login, the same session proved it again
    assert ask_for_a_token(client).url == "/organisation/jetons/"  # done, not asked again
    assert ApiToken.objects.filter(organisation=cast.optician, name="Logiciel").exists()
    step_up = SecurityEvent.objects.get(tag="mfa.step_up", user=cast.owner)
    assert step_up.details == {"factor": "psc", "acr": "eidas1"}
    assert not SecurityEvent.objects.filter(tag="logout", user=cast.owner).exists()


def test_a_step_up_needs_a_new_authentication_not_the_provider_s_session(client, psc, pros, cast):
    psc_login(client, psc, pros.owner)
    _page, next_url = step_up_prompt(client)
    psc.tamper["auth_time"] = int(time.time()) - 120  # PSC skipped prompt=login: its earlier session answered
    response = step_up_with_psc(client, psc, pros.owner, next_url)
    assert response.status_code == 401 and 'data-reason="auth_time"' in response.content.decode()
    assert "reauthenticate" in ask_for_a_token(client).url
    assert not ApiToken.objects.exists()


def test_a_step_up_by_another_professional_is_refused(client, psc, pros, cast):
    psc_login(client, psc, pros.owner)
    _page, next_url = step_up_prompt(client)
    response = step_up_with_psc(client, psc, pros.staff, next_url)  # the staff member's e-CPS
    assert response.status_code == 403 and 'data-reason="other_user"' in response.content.decode()
    assert "reauthenticate" in ask_for_a_token(client).url
    event = SecurityEvent.objects.get(tag="psc.refused")
    assert event.user == cast.owner and event.details["reason"] == "other_user"


def test_a_step_up_at_an_insufficient_level_is_refused(client, psc, pros):
    psc_login(client, psc, pros.owner)
    _page, next_url = step_up_prompt(client)
    pros.owner.acr = "eidas0"
    response = step_up_with_psc(client, psc, pros.owner, next_url)
    assert 'data-reason="acr"' in response.content.decode()
    assert "reauthenticate" in ask_for_a_token(client).url


def test_psc_is_not_offered_to_a_password_session(client, psc, pros, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    page, _next = step_up_prompt(client)
    assert 'id="mfa-code-submit"' in page and "psc-step-up" not in page


def test_a_step_up_needs_someone_logged_in(client, psc, pros):
    assert client.post("/accounts/psc/login/", {"process": "redirect", "next": "/"}).status_code == 403
    assert not psc.authorize_requests


def test_the_code_still_works_after_a_psc_login(client, psc, pros, cast):
    psc_login(client, psc, pros.owner)
    age_second_factor(client, 400)
    response = ask_for_a_token(client)
    client.post(response.url, {"code": totp_code(cast.secrets[cast.owner.email], 1)})
    assert ask_for_a_token(client).url == "/organisation/jetons/"
    assert ApiToken.objects.filter(organisation=cast.optician).exists()


def test_the_psc_step_up_reads_in_english(client, psc, pros):
    psc_login(client, psc, pros.owner)
    client.cookies["django_language"] = "en"
    page, _next = step_up_prompt(client)
    assert "Confirm with Pro Santé Connect" in page and "CPS card or e-CPS" in page
