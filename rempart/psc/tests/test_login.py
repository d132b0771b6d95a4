"""Logging in with Pro Santé Connect, against a real OpenID Connect provider on the loopback.

Every test goes through the whole flow over HTTP: Rempart's redirect to the provider's /authorize, the
provider's redirect back with a code, Rempart's token, JWKS and userinfo calls. What goes wrong is asked of
the provider (another nonce, an expired or forged ID token, a weaker authentication level…) or done to
the callback (another state), as an attacker would.
"""

from __future__ import annotations

import time

import pytest
import requests
from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
from django.core import mail
from django.utils import timezone

from rempart.accounts.models import SecurityEvent
from rempart.psc.models import ProfessionalIdentity
from rempart.psc.tests.helpers import CALLBACK, psc_login, start
from rempart.psc.tests.oidc_provider import callback_params
from rempart.testing import totp_code


def logged_in(client) -> bool:
    return client.get("/").status_code == 200


def refused(response, reason: str) -> str:
    """The refusal page, with its reason; its text."""
    assert response.status_code in (401, 403), response
    page = response.content.decode()
    assert f'data-reason="{reason}"' in page, page
    return page


def last_refusal(reason: str) -> SecurityEvent:
    event = SecurityEvent.objects.filter(tag="psc.refused").first()
    assert event is not None and event.details["reason"] == reason, event and event.details
    return event


# --- the flow that works ----------------------------------------------------------------------------


def test_an_ecps_login_stands_for_the_second_factor(client, psc, pros, cast):
    response = psc_login(client, psc, pros.staff)
    assert response.status_code == 302 and response.url == "/", response
    assert logged_in(client)
    records = client.session[AUTHENTICATION_METHODS_SESSION_KEY]
    assert {"method": "mfa", "type": "psc", "acr": "eidas1"}.items() <= records[-1].items()
    assert SecurityEvent.objects.get(tag="psc.login", user=cast.staff).details == {
        "acr": "eidas1",
        "second_factor": "psc",
    }
    assert SecurityEvent.objects.filter(tag="login.success", user=cast.staff).exists()
    # No password was typed: no "someone knows your password" event nor email.
    assert not SecurityEvent.objects.filter(tag="login.password_only").exists()
    assert not [m for m in mail.outbox if "mot de passe" in m.subject]
    assert ProfessionalIdentity.objects.get(user=cast.staff).last_login_at is not None


def test_the_request_carries_pkce_nonce_state_and_the_level_asked(client, psc, pros):
    psc_login(client, psc, pros.staff)
    asked = psc.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) >= 43
    assert len(asked["nonce"]) >= 32 and len(asked["state"]) >= 16
    assert asked["acr_values"] == "eidas1" and asked["max_age"] == "600"
    assert set(asked["scope"].split()) == {"openid", "scope_all"}
    assert asked["redirect_uri"] == f"http://testserver{CALLBACK}"
    assert psc.code_verifier_sent()  # the token request proved PKCE
    assert psc.id_tokens[-1]["nonce"] == asked["nonce"]


def test_a_request_cannot_widen_the_scope_or_change_the_nonce(client, psc, pros):
    psc.authenticate(start(client, psc, pros.staff, scope="email,phone", auth_params="nonce=abc&prompt=none"))
    asked = psc.authorize_requests[-1]
    assert set(asked["scope"].split()) == {"openid", "scope_all"}
    assert asked["nonce"] != "abc" and "prompt" not in asked


def test_a_signed_userinfo_is_accepted(client, psc, pros):
    psc.tamper["userinfo_jwt"] = True
    assert psc_login(client, psc, pros.staff).url == "/"
    assert logged_in(client)


def test_the_next_page_is_kept(client, psc, pros):
    response = psc_login(client, psc, pros.staff, next="/compte/securite/")
    assert response.url == "/compte/securite/"


# --- answers that cannot be believed ----------------------------------------------------------------


def test_a_wrong_state_is_refused_before_the_code_is_used(client, psc, pros):
    callback = psc.authenticate(start(client, psc, pros.staff))
    params = callback_params(callback)
    response = client.get(CALLBACK, {"code": params["code"], "state": "forged" + params["state"][6:]})
    refused(response, "state")
    assert not psc.token_requests  # the code was never redeemed
    assert not logged_in(client)
    last_refusal("state")


def test_a_callback_cannot_be_replayed(client, client_class, psc, pros):
    callback = psc.authenticate(start(client, psc, pros.staff))
    path = callback.removeprefix("http://testserver")
    assert client.get(path).url == "/"
    refused(client.get(path), "state")  # the state was single use
    other = client_class()
    refused(other.get(path), "state")  # and belongs to the session that started the login
    assert not logged_in(other)


def test_a_replayed_nonce_is_refused(client, client_class, psc, pros):
    psc_login(client, psc, pros.staff)
    earlier_nonce = psc.id_tokens[-1]["nonce"]
    victim = client_class()
    psc.tamper["nonce"] = earlier_nonce  # an ID token that answered another login
    refused(psc_login(victim, psc, pros.staff), "nonce")
    assert not logged_in(victim)
    last_refusal("nonce")


@pytest.mark.parametrize(
    ("tamper", "detail"),
    [
        ({"expired": True}, "expired"),
        ({"foreign_key": True}, "signature"),
        ({"alg_none": True}, "algorithm 'none' not accepted"),
        ({"aud": ["another-client"]}, "InvalidAudienceError"),
        ({"iss": "http://127.0.0.1:1"}, "InvalidIssuerError"),
        ({"aud": ["rempart-test", "another-client"]}, "azp"),
        ({"sub": "f:someone-else"}, None),
    ],
)
def test_an_id_token_that_does_not_hold_is_refused(client, psc, pros, tamper, detail):
    psc.tamper.update(tamper)
    response = psc_login(client, psc, pros.staff)
    reason = "userinfo" if "sub" in tamper else "token"
    refused(response, reason)
    assert not logged_in(client)
    event = last_refusal(reason)
    if detail:
        assert event.details["detail"] == detail


def test_a_provider_naming_another_issuer_is_refused(client, psc, pros):
    psc.tamper["discovery_issuer"] = "http://evil.test"
    callback = psc.authenticate(start(client, psc, pros.staff))
    psc.tamper["discovery_issuer"] = "http://evil.test"
    refused(client.get(callback.removeprefix("http://testserver")), "token")
    assert not logged_in(client)


def test_an_old_single_sign_on_must_authenticate_again(client, psc, pros):
    psc.tamper["auth_time"] = int(time.time()) - 3600  # PSC let them through on a session of an hour ago
    refused(psc_login(client, psc, pros.staff), "auth_time")
    psc.tamper.update(drop=["auth_time"])
    refused(psc_login(client, psc, pros.staff), "auth_time")
    assert not logged_in(client)


def test_a_cancelled_login_is_said_so(client, psc, pros):
    url = start(client, psc, pros.staff)
    query = url.split("?", 1)[1]
    answer = requests.post(
        f"{psc.issuer}/authorize?{query}", data={"approve": "0"}, allow_redirects=False, timeout=5
    )
    response = client.get(answer.headers["Location"].removeprefix("http://testserver"))
    page = refused(response, "cancelled")
    assert "annulée" in page


# --- who gets in ------------------------------------------------------------------------------------


def test_an_unknown_rpps_is_refused_and_the_practice_owner_told(client, client_class, psc, pros, cast):
    page = refused(psc_login(client, psc, pros.stranger), "unknown_identity")
    assert "Connexion Pro Santé Connect refusée" in page
    assert "reliée à aucun compte Rempart" in page and pros.stranger.rpps in page
    assert not logged_in(client)
    event = SecurityEvent.objects.get(tag="psc.unknown_identity")
    assert event.organisation == cast.optician  # the FINESS PSC gave for the practice
    assert event.details["rpps"] == pros.stranger.rpps and event.details["name"] == "Alex Inconnu"
    owner = client_class()
    owner.force_login(cast.owner)
    assert "Identité Pro Santé Connect inconnue" in owner.get("/organisation/evenements/").content.decode()


def test_the_refusal_reads_in_english(client, psc, pros):
    client.cookies["django_language"] = "en"
    page = refused(psc_login(client, psc, pros.stranger), "unknown_identity")
    assert "Pro Santé Connect login refused" in page and "Back to the login page" in page
    assert "is not linked to any Rempart account" in page and "Connexion" not in page


def test_an_unknown_identity_of_an_unknown_practice_is_for_the_operator(client, psc, pros):
    pros.stranger.finess = "999999999"
    refused(psc_login(client, psc, pros.stranger), "unknown_identity")
    assert SecurityEvent.objects.get(tag="psc.unknown_identity").organisation is None


def test_an_adeli_or_malformed_identifier_is_unknown(client, psc, pros):
    psc.userinfo_overrides["SubjectNameID"] = "0123456789"  # ADELI form: no RPPS
    refused(psc_login(client, psc, pros.staff), "unknown_identity")
    assert not logged_in(client)


def test_a_suspended_account_is_refused_like_a_password_login(client, psc, pros, cast):
    cast.staff.suspended_at = timezone.now()
    cast.staff.save()
    response = psc_login(client, psc, pros.staff)
    assert response.status_code == 302 and response.url == "/accounts/login/"
    page = client.get(response.url).content.decode()
    assert "Votre compte est suspendu" in page
    assert not logged_in(client)
    last_refusal("suspended")
    assert not SecurityEvent.objects.filter(tag__in=["psc.login", "login.success"], user=cast.staff).exists()


def test_a_member_of_a_suspended_organisation_is_refused(client, psc, pros, cast):
    cast.optician.status = "suspended"
    cast.optician.save()
    response = psc_login(client, psc, pros.staff)
    assert response.url == "/accounts/login/"
    assert "Votre organisation est suspendue" in client.get(response.url).content.decode()
    assert not logged_in(client)


def test_a_removed_member_is_an_unknown_identity(client, psc, pros, cast):
    cast.staff.is_active = False
    cast.staff.save()
    refused(psc_login(client, psc, pros.staff), "unknown_identity")
    assert SecurityEvent.objects.get(tag="psc.unknown_identity").details["linked_to_inactive"] is True


# --- what the login proved --------------------------------------------------------------------------


def test_an_insufficient_level_asks_for_rempart_s_second_factor(client, psc, pros, cast):
    pros.staff.acr = "eidas0"
    response = psc_login(client, psc, pros.staff)
    assert response.status_code == 302 and response.url.startswith("/accounts/2fa/authenticate/")
    page = client.get(response.url).content.decode()
    assert "Pro Santé Connect ne dit pas que votre carte CPS ou votre e-CPS a été utilisée" in page
    assert "Votre mot de passe est correct" not in page
    assert not logged_in(client)
    assert not SecurityEvent.objects.filter(tag="login.password_only").exists()
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(cast.secrets[cast.staff.email])})
    assert logged_in(client)
    assert SecurityEvent.objects.get(tag="psc.login", user=cast.staff).details == {
        "acr": "eidas0",
        "second_factor": "rempart",
    }


def test_no_level_at_all_is_insufficient(client, psc, pros):
    psc.tamper["drop"] = ["acr"]
    assert psc_login(client, psc, pros.staff).url.startswith("/accounts/2fa/authenticate/")
    assert not logged_in(client)


def test_the_allowed_levels_come_from_the_configuration(client, psc, pros, settings):
    settings.REMPART_PSC = {**settings.REMPART_PSC, "allowed_acr": ["eidas2"]}
    assert psc_login(client, psc, pros.staff).url.startswith("/accounts/2fa/authenticate/")
    assert psc.authorize_requests[-1]["acr_values"] == "eidas2"


def test_a_password_login_is_unchanged(client, psc, pros, cast):
    response = client.post(
        "/accounts/login/", {"login": cast.staff.email, "password": "correct horse battery staple"}
    )
    page = client.get(response.url).content.decode()
    assert "Votre mot de passe est correct" in page
    assert SecurityEvent.objects.filter(tag="login.password_only", user=cast.staff).exists()


# --- configuration ----------------------------------------------------------------------------------


def test_off_by_default_no_button_and_no_route(client, db, settings):
    settings.REMPART_PSC = {"issuer": "", "client_id": "", "client_secret": ""}
    assert "Pro Santé Connect" not in client.get("/accounts/login/").content.decode()
    assert client.post("/accounts/psc/login/", {"process": "login"}).status_code == 404
    assert client.get(CALLBACK, {"code": "x", "state": "y"}).status_code == 404


def test_the_button_is_on_the_login_page_when_configured(client, psc):
    page = client.get("/accounts/login/?next=/compte/securite/").content.decode()
    assert 'id="psc-login"' in page and 'value="/compte/securite/"' in page


def test_a_get_on_the_login_address_only_asks_to_continue(client, psc):
    response = client.get("/accounts/psc/login/")
    assert response.status_code == 200 and 'id="psc-continue"' in response.content.decode()
    assert not psc.authorize_requests


def test_connecting_an_identity_by_oneself_is_refused(client, psc, pros, cast):
    client.force_login(cast.staff)
    assert client.post("/accounts/psc/login/", {"process": "connect"}).status_code == 403
    assert not psc.authorize_requests


def test_only_the_psc_pages_may_send_a_form_to_psc(client, psc, settings, cast):
    login_page = client.get("/accounts/login/").headers["Content-Security-Policy"]
    assert f"form-action 'self' {psc.issuer};" in login_page
    assert login_page.replace(f" {psc.issuer}", "") == settings.REMPART_CSP
    settings.REMPART_PSC = {**settings.REMPART_PSC, "authorization_origin": "https://wallet.psc.test/auth"}
    assert (
        "form-action 'self' https://wallet.psc.test;"
        in client.get("/accounts/login/").headers["Content-Security-Policy"]
    )
    client.force_login(cast.owner)
    assert client.get("/compte/securite/").headers["Content-Security-Policy"] == settings.REMPART_CSP


def test_the_login_page_keeps_the_strict_policy_when_psc_is_off(client, db, settings):
    settings.REMPART_PSC = {}
    assert client.get("/accounts/login/").headers["Content-Security-Policy"] == settings.REMPART_CSP
