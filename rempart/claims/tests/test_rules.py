"""The claims rules module: its rule set, its reason codes, its input checks, and properties of its decisions.

Pure tests: no database. The worked cases are in test_cases.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rempart.authorizations.catalogue import default_catalogue
from rempart.claims import reasons, ruleset
from rempart.claims.rules import (
    ClaimInputError,
    ClaimRulesError,
    ConventionFacts,
    GuaranteeTerms,
    Invoice,
    InvoiceLine,
    PecLine,
    PriorLine,
    RightsFacts,
    adjudicate,
    check_invoice,
    default_rules,
    load_rules,
    pec_lines,
    rights_facts,
)
from rempart.claims.tests.test_cases import (
    A_PEC,
    C1,
    C2,
    CARE,
    CONVENTION,
    GLASSES_A,
    OPTI_PEC,
    PEC_NUMBER,
    RPPS,
    TM,
    TODAY,
    L,
    invoice,
    opti,
    pec,
    phar,
    rights,
)
from rempart.rights.coverage import ContractFacts, CoverageFacts

CATALOGUE = default_catalogue()


def decide(inv, rights_=None, *, pec_=None, prior=(), rules=None, convention=CONVENTION, today=TODAY):
    return adjudicate(
        inv,
        rights_ or rights(),
        convention,
        pec_,
        prior,
        catalogue=CATALOGUE,
        rules=rules or default_rules(),
        today=today,
    )


def problems(inv, today=TODAY, rules=None) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ClaimInputError) as caught:
        check_invoice(inv, today=today, rules=rules or default_rules())
    return [(e.line, e.field, e.code) for e in caught.value.errors]


# ---------------------------------------------------------------------------------------------- rule set


def test_every_figure_has_an_effective_date_and_a_source():
    rules = default_rules()
    assert set(rules.figures) == set(ruleset._FIGURES)
    assert all(f.source and f.effective_from for f in rules.figures.values())
    assert rules.time_limit_days == 730 and rules.review_amount_cents == 100_000
    assert len(rules.label) <= 40  # Claim.rule_version
    assert {d for d, spec in rules.domains.items() if spec.pec} == {"OPTI", "AUDI"}


def test_the_domains_are_the_registry_domains():
    from rempart.registry.models import CareDomain

    assert set(default_rules().domains) == set(CareDomain.values)


def _rules_with(tmp_path, mutate):
    doc = json.loads(ruleset.DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    mutate(doc)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return load_rules(path)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d.update(format="rempart-pec-rules"), "rempart-claims-rules"),
        (lambda d: d["figures"].pop("time_limit_days"), "time_limit_days"),
        (lambda d: d["figures"]["max_lines"].update(source=""), "max_lines"),
        (lambda d: d["figures"]["max_lines"].update(effective_from="soon"), "effective_from"),
        (lambda d: d["figures"]["time_limit_days"].update(value=0), "time_limit_days"),
        (lambda d: d["figures"]["time_limit_days"].update(value=True), "time_limit_days"),
        (lambda d: d["figures"]["review_anomalies"].update(value=["rights_closed"]), "review_anomalies"),
        (lambda d: d["figures"]["catalogue_domains"].update(value=["XXXX"]), "catalogue_domains"),
        (lambda d: d["figures"]["domains"]["value"]["PHAR"].update(code_systems=["ATC"]), "code_systems"),
        (lambda d: d["figures"]["domains"]["value"]["PHAR"].update(pec="yes"), "true or false"),
        (lambda d: d["figures"]["cip13_prefix"].update(value=3400), "cip13_prefix"),
        (lambda d: d.update(version=""), "version"),
    ],
)
def test_a_bad_rules_file_is_refused_clearly(tmp_path, mutate, words):
    with pytest.raises(ClaimRulesError, match=words):
        _rules_with(tmp_path, mutate)


def test_a_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "rules.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(ClaimRulesError, match="not a JSON"):
        load_rules(path)


def test_the_rule_version_changes_with_the_file(tmp_path):
    rules = _rules_with(tmp_path, lambda d: d["figures"]["time_limit_days"].update(value=365))
    assert rules.time_limit_days == 365 and rules.label != default_rules().label
    assert rules.label.startswith("1.0+")
    assert decide(phar(TM), rules=rules).rule_version == rules.label


def test_the_time_limit_is_the_rules_figure(tmp_path):
    old = phar(TM, care=dt.date(2025, 11, 1), issued=dt.date(2025, 11, 2))
    check_invoice(old, today=TODAY, rules=default_rules())  # 389 days: within 730
    rules = _rules_with(tmp_path, lambda d: d["figures"]["time_limit_days"].update(value=365))
    assert problems(old, rules=rules) == [(None, "care_date", "time_limit_exceeded")]
    edge = phar(TM, care=TODAY - dt.timedelta(days=730))
    check_invoice(edge, today=TODAY, rules=default_rules())  # exactly the limit: accepted
    assert problems(phar(TM, care=TODAY - dt.timedelta(days=731))) == [
        (None, "care_date", "time_limit_exceeded")
    ]


def test_an_anomaly_not_listed_is_not_checked(tmp_path):
    inv = phar(L("CIP13", C1, "10.00", "10.00", "0.00", "10.00"))
    assert decide(inv).status == "pending_review"
    rules = _rules_with(tmp_path, lambda d: d["figures"]["review_anomalies"].update(value=[]))
    decision = decide(inv, rules=rules)
    assert decision.status == "accepted" and decision.review_reasons == ()


def test_the_amount_threshold_can_be_disabled_or_count_pec_lines(tmp_path):
    crown = invoice("DENT", L("CCAM", "HBLD038", "1500.00", "120.00", "72.00", "1428.00"), rpps=None)
    rich = rights(GuaranteeTerms("1200", 1200, None))
    assert decide(crown, rich).status == "pending_review"
    off = _rules_with(tmp_path, lambda d: d["figures"]["review_amount_cents"].update(value=None))
    assert decide(crown, rich, rules=off).status == "partially_accepted"
    ears = invoice(
        "AUDI",
        L("LPP", "2390110", "1700.00", "400.00", "240.00", "1460.00", cls="II", side="right"),
        pec=PEC_NUMBER,
    )
    ear_pec = pec(PecLine("2390110", "II", "right", 1, 146000))
    assert decide(ears, rights(OPTI_PEC), pec_=ear_pec).status == "accepted"
    counted = _rules_with(tmp_path, lambda d: d["figures"]["review_amount_counts_pec"].update(value=True))
    decision = decide(ears, rights(OPTI_PEC), pec_=ear_pec, rules=counted)
    assert decision.status == "pending_review" and decision.review_reasons == ("amount_above_threshold",)


# ---------------------------------------------------------------------------------------------- reasons


def test_every_code_has_a_kind_and_two_labels():
    assert set(reasons.TABLE) == set(reasons.Reason)
    for code, (kind, fr, en) in reasons.TABLE.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]{2,39}", code), code  # fits Claim.review_reason
        assert isinstance(kind, reasons.Kind) and fr.strip() and en.strip() and fr != en
    assert len({fr for _, fr, _ in reasons.TABLE.values()}) == len(reasons.TABLE)


def test_labels_follow_the_language_and_survive_unknown_codes():
    assert reasons.label("duplicate") == "Acte déjà facturé et accepté (même code, même date, même montant)"
    assert reasons.label("duplicate", "en-gb").startswith("Already invoiced")
    assert reasons.label("from_a_later_release", "en") == "from_a_later_release"
    assert reasons.kind("pec_expired") is reasons.Kind.REJECTION and reasons.kind("nope") is None


def test_every_input_code_is_a_problem_check_invoice_can_report():
    source = (ruleset.DEFAULT_RULES_PATH.parents[1] / "invoice_checks.py").read_text(encoding="utf-8")
    for code, kind in reasons.KINDS.items():
        if kind is reasons.Kind.INPUT:
            assert f"Reason.{reasons.Reason(code).name}" in source, code


# ---------------------------------------------------------------------------------------------- input checks


def test_every_problem_is_reported_at_once_in_order():
    inv = dataclasses.replace(
        phar(
            L("CIP13", "3400930000015", "10.00", "10.00", "6.50", "3.50"),
            L("NGAP", "ami4", "10.00", "10.00", "12.00", "0.00"),
            rpps="12345678901",
        ),
        invoice_number="F 1",
        pec_number=PEC_NUMBER,
        total_price_cents=1,
    )
    assert problems(inv) == [
        (None, "invoice_number", "invoice_number_invalid"),
        (None, "prescriber_rpps", "prescriber_invalid"),
        (None, "pec_number", "pec_number_unexpected"),
        (1, "code", "code_invalid"),
        (2, "code_system", "code_system_invalid"),
        (2, "code", "code_invalid"),
        (2, "amo_paid_cents", "amo_above_limit"),
        (None, "total_price_cents", "totals_mismatch"),
    ]


def test_no_message_repeats_the_value_sent():
    secret_rpps, secret_number, secret_code = "98765432109", "SECRET-4242", "9988776655443"
    inv = dataclasses.replace(
        phar(L("CIP13", secret_code, "10.00", "10.00", "6.50", "3.50"), rpps=secret_rpps),
        invoice_number=secret_number + " ",
    )
    with pytest.raises(ClaimInputError) as caught:
        check_invoice(inv, today=TODAY, rules=default_rules())
    text = " ".join(str(e) + json.dumps(e.as_dict(), ensure_ascii=False) for e in caught.value.errors)
    assert len(caught.value.errors) == 3
    for value in (secret_rpps, secret_number, secret_code, "4242", "765432"):
        assert value not in text


@pytest.mark.parametrize(
    ("system", "code", "ok"),
    [
        ("LPP", "2290100", True),
        ("LPP", "229010", False),
        ("LPP", "２２９０１００", False),  # full-width digits
        ("CIP13", C1, True),
        ("CIP13", "3401930000013", False),  # valid key, outside the 3400 range
        ("CIP13", "340093000001", False),
        ("NGAP", "G", True),
        ("NGAP", "AMI 4", True),
        ("NGAP", "AMK8,5", True),
        ("NGAP", "ami 4", False),
        ("NGAP", "AMI 4.555", False),
        ("CCAM", "HBLD038", True),
        ("CCAM", "HBLD38", False),
        ("CCAM", "HBL0038", False),
        ("OTHER", "FJ", True),
        ("OTHER", "X" * 21, False),
        ("OTHER", "<script>", False),
    ],
)
def test_code_shapes(system, code, ok):
    domain = {"LPP": "PHAR", "CIP13": "PHAR", "NGAP": "MEDE", "CCAM": "MEDE", "OTHER": "PHAR"}[system]
    inv = invoice(domain, L(system, code, "10.00", "10.00", "6.50", "3.50"))
    if ok:
        check_invoice(inv, today=TODAY, rules=default_rules())
    else:
        assert problems(inv) == [(1, "code", "code_invalid")]


def test_the_prescriber_may_come_as_an_idnps_and_is_checked_even_where_not_required():
    check_invoice(phar(TM, rpps="8" + RPPS), today=TODAY, rules=default_rules())
    mede = invoice("MEDE", L("NGAP", "G", "30.00", "30.00", "21.00", "9.00"), rpps="10000000018")
    assert problems(mede) == [(None, "prescriber_rpps", "prescriber_invalid")]


def test_optics_lines_need_a_class_and_a_side_of_the_list():
    inv = opti(
        L("LPP", "2290100", "30.00", "15.00", "9.00", "21.00"),
        L("LPP", "2290200", "32.50", "16.25", "9.75", "22.75", cls="I", side="droit"),
    )
    assert problems(inv) == [
        (1, "lpp_class", "lpp_class_invalid"),
        (2, "lpp_class", "lpp_class_invalid"),
        (2, "side", "side_invalid"),
    ]
    assert problems(dataclasses.replace(opti(*GLASSES_A), pec_number="pec-k7m2-q9tx")) == [
        (None, "pec_number", "pec_number_invalid")
    ]


def test_amount_checks():
    assert problems(phar(L("CIP13", C1, "0.00", "0.00", "0.00", "0.00"))) == [
        (1, "unit_price_cents", "amount_invalid"),
    ]
    assert problems(phar(L("CIP13", C1, "10.00", "5.00", "6.50", "3.50"))) == [
        (1, "amo_paid_cents", "amo_above_limit")
    ]
    assert problems(phar(L("CIP13", C1, "200000.00", "0.00", "0.00", "1.00"))) == [
        (1, "unit_price_cents", "amount_invalid")
    ]
    big = phar(L("CIP13", C1, "60000.00", "0.00", "0.00", "1.00", qty=2))  # 120,000.00 for the line
    assert problems(big) == [(1, "unit_price_cents", "amount_invalid")]
    nothing = phar(L("CIP13", C1, "10.00", "10.00", "6.50", "0.00"))
    assert problems(nothing) == [(None, "total_amc_cents", "nothing_claimed")]


def test_lines_must_be_numbered_and_bounded():
    inv = phar(TM, L("CIP13", C2, "4.50", "4.50", "2.93", "1.57"))
    swapped = dataclasses.replace(inv, lines=inv.lines[::-1])
    assert problems(swapped) == [(1, "number", "lines_invalid"), (2, "number", "lines_invalid")]
    many = phar(*([TM] * 51))
    assert problems(many) == [(None, "lines", "lines_invalid")]
    assert problems(dataclasses.replace(inv, lines=())) == [(None, "lines", "lines_invalid")]


@pytest.mark.parametrize(
    "change",
    [
        {"care_date": "2026-11-20"},
        {"care_date": dt.datetime(2026, 11, 20, 10, 0)},
        {"domain": None},
        {"prescriber_rpps": 10000000017},
        {"pec_number": 7},
        {"total_amc_cents": 3.5},
        {"lines": None},
        {"lines": ("line",)},
    ],
)
def test_wrong_types_are_bad_input_not_crashes(change):
    with pytest.raises(ClaimInputError):
        check_invoice(dataclasses.replace(phar(TM), **change), today=TODAY, rules=default_rules())


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": True},
        {"quantity": "1"},
        {"quantity": 0},
        {"unit_price_cents": 10.0},
        {"amo_paid_cents": -1},
        {"amc_claimed_cents": None},
        {"code": None},
        {"code_system": "cip13"},
        {"number": "1"},
    ],
)
def test_wrong_line_types_are_bad_input_not_crashes(change):
    inv = phar(TM)
    inv = dataclasses.replace(inv, lines=(dataclasses.replace(inv.lines[0], **change),))
    with pytest.raises(ClaimInputError):
        check_invoice(inv, today=TODAY, rules=default_rules())


# ---------------------------------------------------------------------------------------------- decisions


def test_a_decision_is_reproducible_and_storable():
    inv = phar(TM, L("CIP13", C2, "8.00", "0.00", "0.00", "8.00"))
    terms = rights(GuaranteeTerms("100", 100, 300))
    first, second = decide(inv, terms), decide(inv, terms)
    assert first == second and first.as_dict() == second.as_dict()
    stored = json.loads(json.dumps(first.as_dict()))
    assert stored["lines"][1] == {
        "number": 2,
        "status": "reduced",
        "claimed_cents": 800,
        "accepted_cents": 300,
        "reasons": ["reduced_to_guarantee"],
        "explanation": stored["lines"][1]["explanation"],
    }
    assert "forfait" in stored["lines"][1]["explanation"]


def test_a_refusal_for_closed_rights_discloses_no_date():
    decision = decide(phar(TM), rights(open_=False))
    text = decision.explanation + " ".join(line.explanation for line in decision.lines)
    assert not re.search(r"[0-9]{2}/[0-9]{2}/[0-9]{4}|20[0-9]{2}", text)
    assert decision.explanation == "Facture rejetée : Droits non ouverts à la date des soins."


def test_a_rejected_invoice_is_never_sent_to_review():
    late = phar(L("CIP13", C1, "10.00", "10.00", "0.00", "10.00"), care=dt.date(2026, 1, 5))
    decision = decide(late, rights(open_=False))
    assert decision.status == "rejected" and decision.review_reasons == () and decision.accepted_cents == 0


def test_an_expired_pec_says_until_when():
    decision = decide(opti(*GLASSES_A), rights(OPTI_PEC), pec_=pec(*A_PEC, valid_until=dt.date(2026, 11, 10)))
    assert "10/11/2026" in decision.lines[0].explanation and "20/11/2026" in decision.lines[0].explanation


def test_a_pec_of_another_number_or_domain_is_not_this_invoices():
    granted = pec(*A_PEC)
    assert decide(opti(*GLASSES_A), rights(OPTI_PEC), pec_=granted).status == "accepted"
    other_number = dataclasses.replace(granted, number="PEC-AAAA-BBBB")
    other_domain = dataclasses.replace(granted, domain="AUDI")
    for facts in (other_number, other_domain):
        decision = decide(opti(*GLASSES_A), rights(OPTI_PEC), pec_=facts)
        assert decision.reasons == ("pec_not_found",)


def test_the_class_is_read_in_any_letter_case():
    lines = [dataclasses.replace(x, cls="a") for x in GLASSES_A]
    assert decide(opti(*lines), rights(OPTI_PEC), pec_=pec(*A_PEC)).status == "accepted"


def test_one_pec_line_pays_one_invoice_line():
    twice = opti(GLASSES_A[1], GLASSES_A[1])
    decision = decide(twice, rights(OPTI_PEC), pec_=pec(*A_PEC))
    assert [(d.status, d.reasons) for d in decision.lines] == [
        ("accepted", ()),
        ("rejected", ("not_in_pec",)),
    ]


def test_a_guarantee_without_rate_or_amount_gives_nothing():
    decision = decide(phar(TM), rights(GuaranteeTerms("100", None, None)))
    assert decision.status == "rejected" and decision.reasons == ("no_amc_share",)


def test_the_yearly_ceiling_already_reached_rejects():
    dent = invoice("DENT", L("CCAM", "HBLD038", "600.00", "120.00", "72.00", "528.00"), rpps=None)
    decision = decide(dent, rights(GuaranteeTerms("400", 400, None, {"yearly_max": 100000}), year=100000))
    assert decision.lines[0].status == "rejected" and decision.reasons == ("yearly_ceiling",)


def test_a_duplicate_must_match_code_date_and_amount():
    other_day = (PriorLine(C1, CARE - dt.timedelta(days=1), 350),)
    assert decide(phar(TM), prior=other_day).status == "accepted"
    other_code = (PriorLine(C2, CARE, 350),)
    assert decide(phar(TM), prior=other_code).status == "accepted"
    assert decide(phar(TM), prior=(PriorLine(C1, CARE, 350),)).reasons == ("duplicate",)


def test_the_helpers_build_facts_from_what_the_gate_and_the_pec_store():
    contract = ContractFacts("active", dt.date(2026, 1, 1), None)
    coverage = CoverageFacts(dt.date(2026, 1, 1), dt.date(2026, 11, 19))
    guarantee = {
        "tp_code": "100",
        "rate_percent": 100,
        "amount_cents": None,
        "pec_required": False,
        "ceilings": {},
    }
    facts = rights_facts(contract, coverage, guarantee, True, CARE)
    assert facts.rights_open is False and facts.guarantee == GuaranteeTerms("100", 100, None)
    assert rights_facts(contract, coverage, None, True, dt.date(2026, 11, 19)) == RightsFacts(
        True, None, True
    )
    ended = ContractFacts("terminated", dt.date(2026, 1, 1), None)
    assert rights_facts(ended, coverage, guarantee, True, dt.date(2026, 6, 1)).rights_open is False
    quote = {"lines": [{"quantity": 1}, {"quantity": 1}, {"quantity": 1}]}
    decision = {
        "lines": [
            {
                "line": 1,
                "lpp_code": "2290100",
                "class": "A",
                "side": None,
                "status": "accepted",
                "amc_cents": 2100,
            },
            {
                "line": 2,
                "lpp_code": "2290200",
                "class": "A",
                "side": "right",
                "status": "refused",
                "amc_cents": 0,
            },
            {
                "line": 3,
                "lpp_code": "2290200",
                "class": "A",
                "side": "left",
                "status": "accepted",
                "amc_cents": 2275,
            },
        ]
    }
    assert pec_lines(quote, decision) == (A_PEC[0], A_PEC[2])


# ---------------------------------------------------------------------------------------------- properties

CODES = {"CIP13": [C1, C2, "3400930000038"], "NGAP": ["G", "AMI 4", "C"], "CCAM": ["HBLD038", "QZFA036"]}


@st.composite
def guarantee_lines(draw):
    """A valid invoice of a domain paid by the guarantee, with random terms, prior lines and facts."""
    domain, system = draw(
        st.sampled_from([("PHAR", "CIP13"), ("MEDE", "NGAP"), ("DENT", "CCAM"), ("MEDE", "CCAM")])
    )
    count = draw(st.integers(1, 6))
    lines = []
    for _ in range(count):
        quantity = draw(st.integers(1, 4))
        unit = draw(st.integers(1, 200_000))
        price = unit * quantity
        base = draw(st.integers(0, price + 5000))
        amo = draw(st.integers(0, min(price, base)))
        claimed = draw(st.integers(0, price - amo))
        lines.append((system, draw(st.sampled_from(CODES[system])), quantity, unit, base, amo, claimed))
    assume(sum(line[-1] for line in lines) > 0)
    built = tuple(
        InvoiceLine(n, s, c, q, u, b, a, m) for n, (s, c, q, u, b, a, m) in enumerate(lines, start=1)
    )
    inv = Invoice(
        "F-1",
        CARE,
        draw(st.sampled_from([CARE] * 9 + [dt.date(2026, 3, 1)])),
        domain,
        RPPS,
        None,
        built,
        sum(x.price_cents for x in built),
        sum(x.amo_paid_cents for x in built),
        sum(x.amc_claimed_cents for x in built),
    )
    inv = dataclasses.replace(inv, care_date=min(inv.care_date, inv.invoice_date))
    ceilings = draw(
        st.dictionaries(
            st.sampled_from(["prosthesis_max", "yearly_max"]), st.integers(1000, 500_000), max_size=2
        )
    )
    # One scenario per invoice, payable in most: drawing each flag on its own made rejections the rule.
    scenario = draw(
        st.sampled_from(["pay"] * 8 + ["closed", "no_convention", "other_domain", "no_terms", "sp"])
    )
    terms = None
    if scenario != "no_terms":
        terms = GuaranteeTerms(
            tp_code="SP" if scenario == "sp" else draw(st.sampled_from(["100", "200", "150", "PEC"])),
            rate_percent=draw(st.one_of(st.integers(100, 1000), st.integers(0, 99), st.none())),
            amount_cents=draw(st.one_of(st.none(), st.integers(0, 50_000))),
            ceilings=ceilings,
            pec_required=draw(st.sampled_from([False] * 5 + [True])),
        )
    facts = RightsFacts(scenario != "closed", terms, True, draw(st.integers(0, 600_000)))
    convention = ConventionFacts(
        scenario != "no_convention", ("OPTI",) if scenario == "other_domain" else (domain, "OPTI")
    )
    prior = tuple(
        PriorLine(code, CARE, amount)
        for code, amount in draw(
            st.lists(st.tuples(st.sampled_from(CODES[system]), st.integers(0, 5000)), max_size=3)
        )
    )
    return inv, facts, convention, prior


@st.composite
def pec_invoices(draw):
    """Class A glasses against a random PEC: random commitments, claims and PEC states."""
    claims = [draw(st.integers(0, 2100)), draw(st.integers(0, 2275)), draw(st.integers(0, 2275))]
    if sum(claims) == 0:
        claims[0] = 1
    lines = tuple(
        dataclasses.replace(x, claimed=f"{c / 100:.2f}") for x, c in zip(GLASSES_A, claims, strict=True)
    )
    commitments = [draw(st.integers(0, 3000)) for _ in A_PEC]
    granted = tuple(
        dataclasses.replace(p, amc_cents=c)
        for p, c in zip(A_PEC, commitments, strict=True)
        if draw(st.integers(0, 4)) < 4
    )
    facts = pec(
        *granted,
        same_organisation=draw(st.integers(0, 9)) < 9,
        same_beneficiary=draw(st.integers(0, 9)) < 9,
        cancelled=draw(st.integers(0, 9)) == 9,
        consumed=draw(st.integers(0, 9)) == 9,
        valid_until=draw(st.sampled_from([dt.date(2026, 12, 31)] * 9 + [dt.date(2026, 11, 1)])),
    )
    return opti(*lines), facts


def _check_properties(decision, inv):
    for line, d in zip(inv.lines, decision.lines, strict=True):
        assert 0 <= d.accepted_cents <= line.amc_claimed_cents
        assert d.claimed_cents == line.amc_claimed_cents
        if d.status == "rejected":
            assert d.accepted_cents == 0 and len(d.reasons) == 1
        elif d.status == "reduced":
            assert d.accepted_cents < d.claimed_cents and d.reasons
        else:
            assert d.accepted_cents == d.claimed_cents and not d.reasons
        assert set(d.reasons) <= set(reasons.REASONS)
    assert decision.accepted_cents == sum(d.accepted_cents for d in decision.lines)
    assert decision.claimed_cents == inv.total_amc_cents
    assert (decision.status == "rejected") == (decision.accepted_cents == 0)
    if decision.status == "rejected":
        assert all(d.status == "rejected" for d in decision.lines if d.claimed_cents > 0)
    if decision.status == "pending_review":
        assert decision.review_reasons and decision.accepted_cents > 0
    else:
        assert decision.review_reasons == ()
    if decision.status == "accepted":
        assert decision.accepted_cents == decision.claimed_cents
    json.dumps(decision.as_dict())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guarantee_lines())
def test_properties_of_decisions_by_the_guarantee(drawn):
    inv, facts, convention, prior = drawn
    decision = decide(inv, facts, prior=prior, convention=convention)
    _check_properties(decision, inv)
    assert decide(inv, facts, prior=prior, convention=convention) == decision  # deterministic
    terms = facts.guarantee
    if decision.status != "rejected" and terms is not None and terms.rate_percent is not None:
        # never more than the rate part plus the flat amount, in total
        rate_parts = sum(
            max(0, -(-line.base_cents * terms.rate_percent // 100) - line.amo_paid_cents)
            for line in inv.lines
        )
        assert decision.accepted_cents <= rate_parts + (terms.amount_cents or 0)


@settings(max_examples=300, deadline=None)
@given(pec_invoices())
def test_properties_of_decisions_against_a_pec(drawn):
    inv, facts = drawn
    decision = decide(inv, rights(OPTI_PEC), pec_=facts)
    _check_properties(decision, inv)
    committed = {(p.lpp_code, p.side): p.amc_cents for p in facts.lines}
    for line, d in zip(inv.lines, decision.lines, strict=True):
        if d.status != "rejected":
            assert d.accepted_cents <= committed[(line.code, line.side)]
    if not (facts.same_organisation and facts.same_beneficiary) or facts.cancelled or facts.consumed:
        assert decision.status == "rejected"
    if facts.valid_until < CARE:
        assert decision.status == "rejected"


_text = st.one_of(st.none(), st.text(max_size=15), st.integers(-5, 10**12), st.booleans())
_amount = st.one_of(st.integers(-10, 10**9), st.none(), st.floats(allow_nan=True), st.text(max_size=3))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            InvoiceLine,
            number=st.one_of(st.integers(0, 4), st.text(max_size=2)),
            code_system=st.sampled_from(["LPP", "CIP13", "NGAP", "CCAM", "OTHER", "", "x"]),
            code=_text,
            quantity=st.one_of(st.integers(-2, 2000), st.booleans()),
            unit_price_cents=_amount,
            base_cents=_amount,
            amo_paid_cents=_amount,
            amc_claimed_cents=_amount,
            lpp_class=_text,
            side=_text,
        ),
        max_size=4,
    ),
    st.sampled_from(["PHAR", "OPTI", "AUDI", "DENT", "XXXX", ""]),
    _text,
    _text,
    st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)),
    _amount,
)
def test_any_input_is_either_decided_or_refused_with_reasons(lines, domain, rpps, pec_number, care, total):
    inv = Invoice("F-1", care, care, domain, rpps, pec_number, tuple(lines), total, total, total)
    try:
        decision = decide(inv, rights(OPTI_PEC), pec_=pec(*A_PEC))
    except ClaimInputError as error:
        assert error.errors and all(e.code in reasons.REASONS for e in error.errors)
        assert all(reasons.kind(e.code) is reasons.Kind.INPUT for e in error.errors)
    else:
        _check_properties(decision, inv)
