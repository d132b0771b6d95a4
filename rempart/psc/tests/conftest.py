"""A local OpenID Connect provider standing in for Pro Santé Connect, and Rempart configured for it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rempart.psc import linking
from rempart.psc.tests.helpers import CALLBACK, synthetic_rpps
from rempart.psc.tests.oidc_provider import Identity, TestProvider


@pytest.fixture(scope="session")
def psc_server():
    """One provider process-wide (its port, its keys); each test resets what it remembers."""
    server = TestProvider().start()
    yield server
    server.stop()


@pytest.fixture
def psc(psc_server, settings):
    """Rempart pointed at the provider; the test client's address is the registered callback."""
    psc_server.redirect_uris[:] = [f"http://testserver{CALLBACK}"]
    psc_server.at_card = None
    psc_server.tamper.clear()
    psc_server.userinfo_overrides.clear()
    psc_server.authorize_requests.clear()
    psc_server.token_requests.clear()
    psc_server.id_tokens.clear()
    psc_server.last_auth_time = None
    settings.REMPART_PSC = psc_server.settings()
    settings.REMPART_BASE_URL = "http://testserver"
    return psc_server


@dataclass
class Professionals:
    """The cast's optician staff and owner, linked by RPPS; a professional nobody linked."""

    staff: Identity
    owner: Identity
    stranger: Identity


@pytest.fixture
def pros(cast) -> Professionals:
    finess = cast.optician.professional.finess
    staff = Identity(synthetic_rpps(1), "Camille", "Martin", finess=finess)
    owner = Identity(synthetic_rpps(2), "Dominique", "Durand", finess=finess)
    stranger = Identity(synthetic_rpps(3), "Alex", "Inconnu", finess=finess)
    linking.link(cast.staff, staff.rpps, by=cast.owner)
    linking.link(cast.owner, owner.rpps, by=cast.owner)
    return Professionals(staff=staff, owner=owner, stranger=stranger)
