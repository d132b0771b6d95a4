"""A FHIR call and the equivalent JSON call leave the same ledger row and move the same surveillance counters;
the gate's refusals, surveillance's, a kill switch, an outage and a defect come back as OperationOutcomes."""

import dataclasses
import datetime as dt

import pytest
from django.db import OperationalError
from django.utils import timezone

from rempart.authorizations.models import Pec
from rempart.authorizations.tests.test_api import _adult
from rempart.authorizations.tests.test_api import _body as pec_body
from rempart.claims.models import Claim
from rempart.claims.tests.test_api import invoice_for
from rempart.fhir.tests import resources
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure
from rempart.surveillance import clientele, engine, switches
from rempart.surveillance.models import (
    ActorState,
    Clientele,
    ClienteleMember,
    Counter,
    DistinctMember,
    SeenMember,
    Switch,
)
from rempart.surveillance.tests.conftest import clock, synced_clock  # noqa: F401 - fixtures

from .conftest import CER, CLAIM
from .test_eligibility import card

LEDGER_COLUMNS = ("purpose", "channel", "organisation_id", "user_id", "token_id", "session_ref", "ip_address",
                  "insurer_id", "beneficiary_id", "presented_hash", "domain", "care_date", "outcome", "fields")  # fmt: skip


@pytest.fixture
def watched(settings, synced_clock, monkeypatch, tmp_path):  # noqa: F811 - the fixture imported above
    """Surveillance on, at a fixed instant, every call into it recorded."""
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")
    calls = []
    before, after = engine.before_check, engine.after_check

    def spy_before(actor, card_data):
        calls.append(("before", actor, card_data))
        return before(actor, card_data)

    def spy_after(actor, state, observation):
        calls.append(("after", actor, observation))
        return after(actor, state, observation)

    monkeypatch.setattr(engine, "before_check", spy_before)
    monkeypatch.setattr(engine, "after_check", spy_after)
    return calls


def _snapshot(calls: list, known: set) -> dict:
    rows = list(Disclosure.objects.exclude(id__in=known).order_by("chain", "seq").values(*LEDGER_COLUMNS))
    return {
        "ledger": rows,
        # The clientele's sight is compared apart (_same_path): the memory is wiped between the two calls but the
        # ledger keeps the first call's row, from which the memory is seeded again.
        "surveillance calls": [
            (kind, actor, dataclasses.replace(what, sight=None) if kind == "after" else what)
            for kind, actor, what in calls
        ],
        "sights": [what.sight for kind, _actor, what in calls if kind == "after"],
        "counters": sorted(Counter.objects.values_list("key", "size", "bucket", "count")),
        # "recent:" lists order their members by the instant they were added: the member is what matters.
        "distinct": sorted(
            (key, None if key.startswith("recent:") else bucket, member)
            for key, bucket, member in DistinctMember.objects.values_list("key", "bucket", "member")
        ),
        "seen": sorted(SeenMember.objects.values_list("key", "member")),
        "states": sorted(
            ActorState.objects.values_list(
                "actor",
                "level2_count",
                "throttled_until",
                "step_up_since",
                "last_ip",
                "known_ips",
                "grace_until",
                "last_seen_at",
            )  # fmt: skip
        ),
    }


def _forget(calls: list) -> set:
    """Wipe what surveillance learned (counters, states, clientele) and return the ids of the ledger's rows."""
    for model in (Counter, DistinctMember, SeenMember, ActorState, ClienteleMember, Clientele):
        model.objects.all().delete()
    clientele.forget()
    calls.clear()
    return set(Disclosure.objects.values_list("id", flat=True))


def _same_path(calls, json_call, fhir_call, between=lambda: None):
    start = _forget(calls)
    json_response = json_call()
    assert json_response.status_code == 200, json_response.content
    through_json = _snapshot(calls, start)
    between()
    start = _forget(calls)
    fhir_response = fhir_call()
    assert fhir_response.status_code == 200, fhir_response.content
    through_fhir = _snapshot(calls, start)
    json_sights, fhir_sights = through_json.pop("sights"), through_fhir.pop("sights")
    # A confirmation is seen by the clientele memory through both doors (new through the first, known through the
    # second: the memory is seeded again from the ledger, which holds the first call's row); a miss by neither.
    assert [sight is None for sight in json_sights] == [sight is None for sight in fhir_sights]
    assert all(
        first.new and not second.new for first, second in zip(json_sights, fhir_sights, strict=True) if first
    )
    assert through_fhir == through_json
    assert through_json["ledger"] and through_json["counters"]
    assert [c[0] for c in through_json["surveillance calls"]] == ["before", "after"]
    return json_response.json(), fhir_response.json()


@pytest.mark.parametrize("kind", ["hit", "miss"])
def test_a_rights_check_is_seen_alike_through_both_doors(fhir, api, family, token_for, watched, kind):
    raw = token_for("rights:check")
    sent = card(family) if kind == "hit" else card(family, birth_date="1985-12-05")
    json_answer, fhir_answer = _same_path(
        watched, lambda: api("/api/v1/rights/check", raw, sent, REMOTE_ADDR="198.51.100.9"),
        lambda: fhir(CER, raw, resources.eligibility(sent), REMOTE_ADDR="198.51.100.9"),
    )  # fmt: skip
    assert fhir_answer["disposition"] == json_answer["outcome"]


def test_a_prise_en_charge_is_seen_alike_through_both_doors(fhir, api, population, token_for, watched):
    raw = token_for("pec:write")
    sent = pec_body(_adult(population))
    json_answer, fhir_answer = _same_path(
        watched, lambda: api("/api/v1/pec", raw, sent), lambda: fhir(CLAIM, raw, resources.preauthorization(sent)),
        between=lambda: Pec.objects.all().delete(),  # the same quote again would be an early renewal
    )  # fmt: skip
    assert (
        json_answer["status"] == "accepted"
        and fhir_answer["adjudication"][0]["reason"]["coding"][0]["code"] == "accepted"
    )


def test_an_invoice_is_seen_alike_through_both_doors(fhir, api, population, token_for, watched):
    raw = token_for("claims:write")
    made_up = {"number": "PEC-ABCD-EFGH", "lines": [{"lpp_code": "2290100", "price_eur": "30.00",
                                                     "base_eur": "15.00", "amo_eur": "9.00"}]}  # fmt: skip
    sent = invoice_for(_adult(population), made_up)
    json_answer, fhir_answer = _same_path(
        watched, lambda: api("/api/v1/claims", raw, sent), lambda: fhir(CLAIM, raw, resources.invoice(sent)),
        between=lambda: Claim.objects.all().delete(),  # the same invoice number again would be a replay
    )  # fmt: skip
    assert json_answer["status"] == fhir_answer["disposition"] == "rejected"


# --- refusals -------------------------------------------------------------------------------------------


def _issue(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/fhir+json; charset=utf-8"
    return response.json()["issue"][0]


def test_a_foreign_domain_is_refused_recorded_and_named(fhir, family, token_for):
    response = fhir(CER, token_for("rights:check"), resources.eligibility(card(family, domain="PHAR")))
    issue = _issue(response, 403)
    assert issue["details"]["coding"][0]["code"] == "domain_not_allowed" and issue["code"] == "forbidden"
    row = Disclosure.objects.get()
    assert issue["diagnostics"] == row.reference and row.outcome == "refused"
    assert row.fields == ["domain_refused:PHAR"] and row.beneficiary_id is None


def test_a_throttled_token_waits(fhir, family, cast, settings):
    from rempart.accounts import tokens

    settings.REMPART_SURVEILLANCE_ENABLED = True
    token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    ActorState.objects.create(
        actor=f"t:{token.pk}", throttled_until=timezone.now() + dt.timedelta(seconds=60)
    )
    response = fhir(CER, raw, resources.eligibility(card(family)), lang="en")
    issue = _issue(response, 429)
    assert issue["code"] == "throttled" and issue["details"]["coding"][0]["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0 and response["Content-Language"] == "en"
    assert not Disclosure.objects.exists()


def test_the_api_kill_switch_cuts_fhir_too(fhir, family, token_for, cast):
    switches.switch_off(target=Switch.Target.CHANNEL, channel=Switch.Channel.API_RIGHTS, reason="test")
    issue = _issue(fhir(CER, token_for("rights:check"), resources.eligibility(card(family))), 503)
    assert issue["details"]["coding"][0]["code"] == "switched_off"
    assert not Disclosure.objects.exists()


def test_a_suspended_organisation_reaches_nothing(fhir, family, token_for, cast):
    raw = token_for("rights:check")
    type(cast.optician).objects.filter(pk=cast.optician.pk).update(status="suspended")
    issue = _issue(fhir(CER, raw, resources.eligibility(card(family))), 403)
    assert issue["details"]["coding"][0]["code"] == "organisation_suspended"


def test_an_outage_is_a_503_and_a_defect_a_bare_500(fhir, family, token_for, monkeypatch):
    from rempart.fhir import eligibility

    raw = token_for("rights:check")

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(eligibility, "check_rights", down)
    response = fhir(CER, raw, resources.eligibility(card(family)))
    assert _issue(response, 503)["details"]["coding"][0]["code"] == "unavailable" and response["Retry-After"]

    def broken(*args, **kwargs):
        raise RuntimeError("SECRET-TRACEBACK-TEXT")

    monkeypatch.setattr(eligibility, "check_rights", broken)
    response = fhir(CER, raw, resources.eligibility(card(family)))
    assert _issue(response, 500)["details"]["coding"][0]["code"] == "internal"
    assert b"SECRET" not in response.content and b"Traceback" not in response.content


def test_the_request_log_sees_the_fhir_routes(fhir, family, token_for, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="rempart.request")
    fhir(CER, token_for("rights:check"), resources.eligibility(card(family)))
    lines = [r for r in caplog.records if r.name == "rempart.request"]
    assert lines and lines[-1].getMessage().split()[1] == "fhir/r4/CoverageEligibilityRequest/$submit"
    # The ledger's and the metrics' channel stays "api": FHIR is the API's other shape, cut by its switch.
    assert Disclosure.objects.get().channel == "api"
    assert family.parent_nir not in caplog.text


def test_the_request_log_channel_is_fhir(client):
    from rempart.ops import middleware

    assert middleware._channel("/fhir/r4/metadata", "fhir/r4/metadata") == "fhir"


def test_nothing_personal_in_the_logs(fhir, population, token_for, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    row = _adult(population)
    fhir(CLAIM, token_for("pec:write"), resources.preauthorization(pec_body(row)))
    for secret in (row[COL["nir"]], row[COL["last_name"]], row[COL["first_name"]]):
        assert secret not in caplog.text
