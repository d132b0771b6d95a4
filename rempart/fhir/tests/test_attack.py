"""The API attacks of rempart/surveillance/tests/test_attacks.py, scripted through FHIR only: contained the same way.

Each script runs twice against a live Rempart, once through ``POST /api/v1/rights/check`` and once through
``POST /fhir/r4/CoverageEligibilityRequest/$submit`` (another organisation, another address, days later so
that no window carries over): the answers come in the same order (200s, then 429s, then the suspension), and
the ledger and the incident opened tell exactly what the FHIR script obtained.
"""

from __future__ import annotations

import pytest

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken
from rempart.fhir.tests import resources
from rempart.ledger.models import Disclosure
from rempart.surveillance.models import Alert
from rempart.surveillance.tests.conftest import clock, fresh_surveillance  # noqa: F401 - fixtures
from rempart.surveillance.tests.test_attacks import (
    COL,
    Browser,
    _api_body,
    _assert_scope_tells_the_ledger,
    _suspension,
    _valid_people,
)

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 86400


@pytest.fixture(autouse=True)
def watched(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_TRUSTED_PROXY_COUNT = 1  # each script gives its own address, as through a proxy


def _fhir_check(script: Browser, raw: str, row, adherent: str | None = None):
    body = _api_body(row, "OPTI")
    if adherent is not None:
        body["adherent_number"] = adherent
    return script.post("/fhir/r4/CoverageEligibilityRequest/$submit", body=resources.eligibility(body),
                       headers={"Authorization": f"Bearer {raw}"})  # fmt: skip


def _json_check(script: Browser, raw: str, row, adherent: str | None = None):
    body = _api_body(row, "OPTI")
    if adherent is not None:
        body["adherent_number"] = adherent
    return script.post("/api/v1/rights/check", body=body, headers={"Authorization": f"Bearer {raw}"})


def _run(send, rows, pace: float, clock) -> tuple[list[int], list[str]]:  # noqa: F811
    """The statuses of the script's requests until it is suspended, and the references it obtained."""
    statuses, references = [], []
    for row, adherent in rows:
        page = send(row, adherent)
        clock.advance(pace)
        statuses.append(page.status)
        if page.status == 200:
            data = page.json()
            references.append(data.get("reference") or data["identifier"][0]["value"])
        elif page.status == 429:
            assert int(page.headers["Retry-After"]) >= 1
        elif page.status == 403:
            break
        else:
            pytest.fail(f"unexpected answer: {page.status} {page.text[:200]}")
    return statuses, references


def _both_doors(live_server, cast, clock, rows, pace):  # noqa: F811
    json_token, json_raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    json_script = Browser(live_server.url, "198.51.100.66")
    through_json = _run(lambda row, a: _json_check(json_script, json_raw, row, a), rows, pace, clock)
    clock.advance(3 * DAY)
    fhir_token, fhir_raw = tokens.create_token(cast.other_shop, "LGO FHIR", ["rights:check"], cast.outsider)
    fhir_script = Browser(live_server.url, "198.51.100.77")
    through_fhir = _run(lambda row, a: _fhir_check(fhir_script, fhir_raw, row, a), rows, pace, clock)
    return (json_token, through_json), (fhir_token, through_fhir)


def test_a_stolen_token_scripting_fhir_is_throttled_then_suspended_as_through_the_json_api(
    live_server,
    cast,
    population,
    clock,  # noqa: F811
):
    rows = [(row, None) for row in _valid_people(population)[:60]]
    (_json_token, (json_statuses, _)), (token, (statuses, references)) = _both_doors(
        live_server, cast, clock, rows, 1
    )
    assert statuses == json_statuses  # the same containment, answer for answer
    assert 429 in statuses and statuses[-1] == 403 and len(references) <= 11
    assert ApiToken.objects.get(pk=token.pk).suspended_at is not None
    rows_written = list(Disclosure.objects.filter(token_id=token.pk).order_by("id"))
    assert [r.reference for r in rows_written] == references
    assert {r.channel for r in rows_written} == {"api"} and {r.ip_address for r in rows_written} == {
        "198.51.100.77"
    }
    _alert, incident = _suspension(token=token)
    _assert_scope_tells_the_ledger(incident, rows_written, token_id=token.pk, user_id=None)


def test_walking_adherent_numbers_through_fhir_is_suspended_as_through_the_json_api(
    live_server,
    cast,
    population,
    clock,  # noqa: F811
):
    template = next(r for r in _valid_people(population) if r[COL["nir"]])
    rows = [(template, f"00{number:08d}") for number in range(5000, 5100)]
    (_json_token, (json_statuses, _)), (token, (statuses, misses)) = _both_doors(
        live_server, cast, clock, rows, 10
    )
    assert statuses == json_statuses
    assert statuses[-1] == 403 and len(misses) <= 50
    rows_written = list(Disclosure.objects.filter(token_id=token.pk).order_by("id"))
    assert [r.reference for r in rows_written] == misses
    assert all(r.outcome == "no_match" and r.beneficiary_id is None for r in rows_written)
    _alert, incident = _suspension(token=token)
    assert Alert.objects.filter(token=token, signal="sequential_identifiers", level=2).exists()
    _assert_scope_tells_the_ledger(incident, rows_written, token_id=token.pk)
