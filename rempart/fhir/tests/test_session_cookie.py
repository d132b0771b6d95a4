"""A practice-software request may carry a portal session cookie (the same browser, a webview): the FHIR view
answers it on its Bearer token alone. The session-binding and second-factor middlewares leave /fhir/ to it,
and the cookie itself opens nothing there."""

import json

from django.test import Client

from rempart.accounts.models import Role, SecurityEvent
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.fhir.tests import resources
from rempart.ledger.models import Disclosure
from rempart.testing import login, make_user

from .conftest import CER
from .test_eligibility import answer, card
from .test_hostile import outcome

SHOP = "203.0.113.7"
ELSEWHERE = "198.51.100.66"  # the software's server, not the shop's browser


def _logged_in_elsewhere(cast) -> tuple[Client, Client]:
    """The owner logged in at the shop, and a client elsewhere carrying the same session (and device) cookie;
    CSRF is enforced, as a browser's cookie would make it matter."""
    shop = Client(REMOTE_ADDR=SHOP)
    login(shop, cast.owner, cast.secrets[cast.owner.email])
    assert shop.get("/compte/securite/").status_code == 200  # a live, bound portal session
    elsewhere = Client(REMOTE_ADDR=ELSEWHERE, enforce_csrf_checks=True)
    for name in ("sessionid", DEVICE_COOKIE):
        elsewhere.cookies[name] = shop.cookies[name].value
    return shop, elsewhere


def _post(client: Client, body: dict, raw: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    return client.post(CER, data=json.dumps(body), content_type="application/fhir+json", **headers)


def test_a_session_cookie_from_another_address_does_not_divert_a_bearer_request(cast, family, token_for):
    shop, elsewhere = _logged_in_elsewhere(cast)
    raw = token_for("rights:check")

    response = _post(elsewhere, resources.eligibility(card(family)), raw)
    body = answer(response)  # 200, application/fhir+json, a valid CoverageEligibilityResponse
    assert body["resourceType"] == "CoverageEligibilityResponse" and body["disposition"] == "covered"
    row = Disclosure.objects.get(reference=body["identifier"][0]["value"])
    assert row.channel == "api" and row.token_id is not None and row.ip_address == ELSEWHERE
    # The binding middleware did not look at the session: no foreign-context event, nothing bound here.
    assert not SecurityEvent.objects.filter(tag="session.context_changed").exists()

    # The same cookie on a portal page from there is stepped up: the binding was live, /fhir/ is exempt.
    portal = elsewhere.get("/compte/securite/")
    assert portal.status_code == 302 and portal.url.startswith("/accounts/2fa/reauthenticate/")
    assert SecurityEvent.objects.filter(tag="session.context_changed", ip_address=ELSEWHERE).count() == 1
    # And once the session is flagged elsewhere, the Bearer request is still the FHIR view's.
    again = answer(_post(elsewhere, resources.eligibility(card(family)), raw))
    assert again["identifier"][0]["value"] != body["identifier"][0]["value"]
    assert shop.get("/compte/securite/").status_code == 200  # the shop's session is untouched


def test_a_session_cookie_alone_opens_nothing(cast, family):
    for client in _logged_in_elsewhere(cast):  # from the shop's own browser too, bound and fresh
        response = _post(client, resources.eligibility(card(family)))
        issue = outcome(response, 401)["issue"][0]
        assert issue["code"] == "login" and issue["details"]["coding"][0]["code"] == "unauthenticated"
        assert response["WWW-Authenticate"] == "Bearer"
    assert not Disclosure.objects.exists()


def test_a_cookie_of_a_person_without_second_factor_does_not_divert_a_bearer_request(cast, family, token_for):
    newcomer = make_user("new@shop.test", cast.optician, Role.STAFF)  # invited, never enrolled a factor
    client = Client(REMOTE_ADDR=SHOP)
    client.force_login(newcomer)  # no enrolment window in the session: the portal would send them away
    answer(_post(client, resources.eligibility(card(family)), token_for("rights:check")))
