"""The claims tests' cast: a token of the optician for PECs and invoices, and a PEC delivered today."""

import pytest
from django.utils import timezone

from rempart.accounts import tokens
from rempart.authorizations.models import Pec
from rempart.authorizations.tests.test_api import _adult
from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture


@pytest.fixture
def token(cast):
    return tokens.create_token(cast.optician, "LGO optique", ["pec:write", "claims:write"], cast.owner)[1]


def granted_pec(client, token, row) -> dict:
    from rempart.authorizations.tests.test_api import _body
    from rempart.authorizations.tests.test_api import _post as _post_pec

    response = _post_pec(client, token, _body(row))
    assert response.status_code == 200 and response.json()["status"] == "accepted", response.content
    return response.json()


@pytest.fixture
def delivered(client, cast, population, token):  # noqa: F811 - the fixture imported above
    """A granted PEC whose glasses are delivered today (the PEC was asked for a delivery in 7 days)."""
    row = _adult(population)
    pec = granted_pec(client, token, row)
    Pec.objects.filter(number=pec["number"]).update(delivery_date=timezone.localdate())
    return row, pec
