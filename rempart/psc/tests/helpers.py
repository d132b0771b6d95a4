"""Steps of a Pro Santé Connect login as a browser takes them, for tests without a browser."""

from __future__ import annotations

from rempart.lib.identifiers import rpps_check_digit
from rempart.psc.tests.oidc_provider import Identity, TestProvider

CALLBACK = "/accounts/psc/login/callback/"


def synthetic_rpps(n: int) -> str:
    body = f"1{n:09d}"
    return body + rpps_check_digit(body)


def start(client, provider: TestProvider, identity: Identity | None, **form) -> str:
    """Press the PSC button: Rempart's redirect to the provider's /authorize."""
    provider.at_card = identity
    response = client.post("/accounts/psc/login/", {"process": "login", **form})
    assert response.status_code == 302 and response.url.startswith(provider.issuer + "/authorize"), response
    return response.url


def psc_login(client, provider: TestProvider, identity: Identity, **form):
    """The whole flow: Rempart → provider (authenticated as ``identity``) → Rempart's callback."""
    callback = provider.authenticate(start(client, provider, identity, **form))
    assert callback.startswith(f"http://testserver{CALLBACK}"), callback
    return client.get(callback.removeprefix("http://testserver"))
