"""FHIR tests: the rights tests' family, the incidents' population, tokens, and a client that speaks FHIR."""

import json

import pytest

from rempart.accounts import tokens
from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
from rempart.rights.tests.conftest import family  # noqa: F401 - fixture

CER = "/fhir/r4/CoverageEligibilityRequest/$submit"
CLAIM = "/fhir/r4/Claim/$submit"


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    """Surveillance has its own FHIR tests (test_surveillance.py); here it would step scripts up part-way."""
    settings.REMPART_SURVEILLANCE_ENABLED = False


@pytest.fixture
def token_for(cast):
    """A raw API token of the optician with the given scopes."""

    def make(*scopes: str) -> str:
        return tokens.create_token(cast.optician, "LGO FHIR", list(scopes), cast.owner)[1]

    return make


@pytest.fixture
def fhir(client):
    """POST a resource to a FHIR operation: ``fhir(CER, token, bundle, lang="en")``."""

    def call(path, raw=None, body=None, *, lang=None, content_type="application/fhir+json", **extra):
        headers = dict(extra)
        if raw:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
        if lang:
            headers["HTTP_ACCEPT_LANGUAGE"] = lang
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return client.post(path, data=data, content_type=content_type, **headers)

    return call


@pytest.fixture
def api(client):
    """POST the same request's JSON body to the JSON API."""

    def call(path, raw, body, **extra):
        return client.post(path, data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {raw}", **extra)  # fmt: skip

    return call
