"""What Rempart's FHIR interface says it does, and the code systems its answers use: all served and valid."""

import os

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.operationdefinition import OperationDefinition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.authorizations.rules import Reason as PecReason
from rempart.claims.reasons import TABLE
from rempart.fhir import codesystems, systems
from rempart.fhir.tests import resources
from rempart.registry.models import CareDomain

from .conftest import CER, CLAIM
from .test_eligibility import card


def test_the_capability_statement_lists_exactly_what_is_supported(client, db):
    response = client.get("/fhir/r4/metadata")
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json; charset=utf-8"
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1" and statement["format"] == ["application/fhir+json"]
    rest = statement["rest"][0]
    assert "Bearer" in rest["security"]["description"] and rest["security"]["cors"] is False
    supported = {r["type"]: (sorted(o["name"] for o in r.get("operation", [])),
                             sorted(i["code"] for i in r.get("interaction", []))) for r in rest["resource"]}  # fmt: skip
    assert supported == {
        "CoverageEligibilityRequest": (["submit"], []),
        "Claim": (["submit"], []),
        "CodeSystem": ([], ["read"]),
        "OperationDefinition": ([], ["read"]),
    }  # no Patient, Coverage, Claim read or search: one patient at a time, nothing listed
    for resource in rest["resource"]:
        for operation in resource.get("operation", []):
            path = operation["definition"].removeprefix("http://testserver")
            path = path[path.index("/fhir/r4/") :]
            definition = client.get(path)
            assert definition.status_code == 200, path
            OperationDefinition.model_validate(definition.json())
            assert definition.json()["url"] == operation["definition"]


@pytest.mark.parametrize("system_id", codesystems.IDS)
def test_every_code_system_is_served_at_its_canonical_url(client, db, system_id):
    resource = client.get(f"/fhir/r4/CodeSystem/{system_id}").json()
    CodeSystem.model_validate(resource)
    assert resource["url"] == systems.code_system(system_id) and resource["count"] == len(resource["concept"])
    assert all(c["designation"][0]["language"] == "en" and c["display"] for c in resource["concept"])


def test_the_code_systems_hold_every_code_an_answer_can_carry(client, db):
    def codes(system_id):
        return {c["code"] for c in client.get(f"/fhir/r4/CodeSystem/{system_id}").json()["concept"]}

    assert codes(systems.CLAIM_REASONS) == {str(code) for code in TABLE}
    kinds = {c["code"]: c["property"][0]["valueCode"]
             for c in client.get(f"/fhir/r4/CodeSystem/{systems.CLAIM_REASONS}").json()["concept"]}  # fmt: skip
    assert kinds["pec_consumed"] == "rejection" and kinds["totals_mismatch"] == "input"
    assert codes(systems.PEC_REASONS) == {str(code) for code in PecReason}
    assert codes(systems.CARE_DOMAINS) == set(CareDomain.values)
    assert codes(systems.OUTCOMES) == {"covered", "not_covered", "no_match"}


def test_labels_follow_the_language(db):
    assert codesystems.display(systems.PEC_REASONS, "renewal_too_early", "en").startswith("Renewal too early")
    assert codesystems.display(systems.CARE_DOMAINS, "OPTI", "fr") == "Optique"
    assert codesystems.display(systems.CARE_DOMAINS, "NOPE") == "NOPE"


# --- any change to a good request: a FHIR answer, never a 500 -------------------------------------------------


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*prefix, index)
            yield from _paths(child, (*prefix, index))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=8,
)


EXAMPLES = int(os.environ.get("REMPART_FHIR_FUZZ_EXAMPLES", "60"))


def _mutated(data, bundle: dict) -> tuple[tuple, object]:
    path = data.draw(st.sampled_from(list(_paths(bundle))))
    value = data.draw(JSON_VALUES)
    target = bundle
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return path, value


def _answered(response, path, value) -> None:
    assert response.status_code in (200, 400, 403, 409, 413), (path, value, response.content[:300])
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_change_to_a_rights_check_is_answered_in_fhir(fhir, family, tokens, data):
    bundle = resources.eligibility(card(family))
    path, value = _mutated(data, bundle)
    _answered(fhir(CER, tokens, bundle), path, value)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), use=st.sampled_from(["preauthorization", "claim"]))
def test_any_one_change_to_a_claim_is_answered_in_fhir(fhir, population, tokens, data, use):
    from rempart.authorizations.tests.test_api import _adult
    from rempart.authorizations.tests.test_api import _body as pec_body
    from rempart.claims.tests.test_api import invoice_for

    row = _adult(population)
    if use == "preauthorization":
        bundle = resources.preauthorization(pec_body(row))
    else:
        pec = {"number": "PEC-ABCD-EFGH", "lines": [{"lpp_code": "2290100", "price_eur": "30.00",
                                                     "base_eur": "15.00", "amo_eur": "9.00"}]}  # fmt: skip
        bundle = resources.invoice(invoice_for(row, pec, number=f"F-FUZZ-{data.draw(st.integers(1, 10**9))}"))
    path, value = _mutated(data, bundle)
    _answered(fhir(CLAIM, tokens, bundle), path, value)


@pytest.fixture
def tokens(token_for):
    """One token for all of Hypothesis's examples (every scope the operations take)."""
    return token_for("rights:check", "pec:write", "claims:write")
