"""The answer for each case, through the gate, with the same no-match for every kind of miss."""

import datetime as dt

import pytest

from rempart.gate import Actor, RefusedDomain, check_rights
from rempart.ledger.models import Disclosure
from rempart.rights.cards import CardDataError, read_card_data

from .conftest import TODAY, nir


def ask(cast, **overrides):
    data = {"amc_number": overrides.pop("amc", None), **overrides}
    card = read_card_data(today=TODAY, **data)
    # Each organisation asks in its own care domains: the optician in optics, the neighbouring pharmacy in PHAR.
    organisation, user = (
        (cast.other_shop, cast.outsider) if card.domain == "PHAR" else (cast.optician, cast.staff)
    )
    actor = Actor(channel="portal", organisation_id=organisation.pk, user_id=user.pk, ip="192.0.2.10")
    return check_rights(actor, card)


def test_an_organisation_asks_only_in_its_own_care_domains(cast, family):
    """An optician's account asking for pharmacy terms is refused before any lookup, and the refusal is recorded."""

    def card_of(**extra):
        data = parent(family, **extra)
        return read_card_data(today=TODAY, amc_number=data.pop("amc"), **data)

    card = card_of(domain="PHAR")
    actor = Actor(channel="api", organisation_id=cast.optician.pk, token_id=7, ip="192.0.2.10")
    before = Disclosure.objects.count()
    with pytest.raises(RefusedDomain) as refused:
        check_rights(actor, card)
    row = Disclosure.objects.get(reference=refused.value.reference)
    assert Disclosure.objects.count() == before + 1
    assert (row.outcome, row.beneficiary_id, row.insurer_id, row.domain) == ("refused", None, None, "PHAR")
    assert row.fields == ["domain_refused:PHAR"] and row.organisation_id == cast.optician.pk
    # The same refusal whatever the card: nothing was compared.
    stranger = card_of(domain="PHAR", adherent_number="NOPE-1")
    with pytest.raises(RefusedDomain):
        check_rights(actor, stranger)
    # Its own domain is answered.
    assert check_rights(actor, card_of()).outcome == "covered"


def parent(family, **extra):
    return {"amc": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
            "birth_date": family.parent_birth, "domain": "OPTI", **extra}  # fmt: skip


def test_a_covered_adult_gets_terms_and_a_validity_date(cast, family):
    answer = ask(cast, **parent(family))
    assert answer.outcome == "covered"
    assert answer.terms.tp_code == "PEC" and answer.terms.pec_required
    assert answer.valid_until == dt.date(TODAY.year, 12, 31)
    row = Disclosure.objects.get(reference=answer.reference)
    assert row.beneficiary_id is not None and row.outcome == "covered" and row.presented_hash is None
    assert row.fields == ["identity_confirmed", "coverage:OPTI", "tp_terms:OPTI", "valid_until"]
    assert (row.channel, row.organisation_id, row.user_id, row.ip_address) == (
        "portal",
        cast.optician.pk,
        cast.staff.pk,
        "192.0.2.10",
    )


def test_pharmacy_terms_are_the_rate_printed_on_the_card(cast, family):
    answer = ask(cast, **parent(family, domain="PHAR"))
    assert answer.outcome == "covered" and answer.terms.tp_code == "100" and not answer.terms.pec_required


def test_a_child_on_the_parents_nir_is_found_by_birth_date(cast, family):
    answer = ask(cast, **parent(family, birth_date=family.child_birth))
    assert answer.outcome == "covered"


def test_twins_are_told_apart_by_birth_rank(cast, family):
    first = ask(cast, **parent(family, birth_date=family.twin_birth, birth_rank=1))
    second = ask(cast, **parent(family, birth_date=family.twin_birth, birth_rank=2))
    third = ask(cast, **parent(family, birth_date=family.twin_birth, birth_rank=3))
    ids = [Disclosure.objects.get(reference=a.reference).beneficiary_id for a in (first, second)]
    assert first.outcome == second.outcome == "covered" and ids[0] != ids[1]
    assert third.outcome == "no_match"


def test_a_lunar_birth_date_matches_as_given(cast, family):
    lunar = {"amc": family.amc, "adherent_number": "ADH-0002", "nir": family.lunar_nir, "domain": "PHAR"}
    assert ask(cast, birth_date="1975-00-00", **lunar).outcome == "covered"
    assert ask(cast, birth_date="1975-01-01", **lunar).outcome == "no_match"


def test_a_terminated_contract_is_not_covered(cast, family):
    answer = ask(
        cast,
        amc=family.amc,
        adherent_number="ADH-0003",
        nir=nir("1600175123111"),
        birth_date="1960-01-01",
        domain="PHAR",
    )
    assert answer.outcome == "not_covered" and answer.terms is None and answer.valid_until is None


def test_expired_coverage_on_an_older_care_date(cast, family, settings):
    settings.REMPART_RIGHTS_MAX_PAST_DAYS = 4000
    before_start = dt.date(TODAY.year - 4, 6, 1)
    assert ask(cast, **parent(family, care_date=before_start.isoformat())).outcome == "not_covered"


@pytest.mark.parametrize(
    "change",
    [
        {"amc": "999999999"},
        {"adherent_number": "ADH-9999"},
        {"nir": nir("1850575123457")},
        {"birth_date": "1985-05-13"},
    ],
    ids=["unknown-insurer", "unknown-adherent", "wrong-nir", "wrong-birth-date"],
)
def test_every_kind_of_miss_gives_the_same_answer(cast, family, change):
    answer = ask(cast, **parent(family, **change))
    assert answer.outcome == "no_match"
    assert answer.terms is None and answer.valid_until is None
    row = Disclosure.objects.get(reference=answer.reference)
    assert row.beneficiary_id is None and row.presented_hash is not None and row.fields == []


@pytest.mark.parametrize(
    "change, field",
    [
        ({"nir": "185057512345600"}, "nir"),
        ({"nir": "12345"}, "nir"),
        ({"domain": "ZZZZ"}, "domain"),
        ({"birth_date": "1985-02-30"}, "birth_date"),
        ({"amc": "12AB"}, "amc_number"),
        ({"care_date": (TODAY + dt.timedelta(days=1)).isoformat()}, "care_date"),
        ({"care_date": (TODAY - dt.timedelta(days=31)).isoformat()}, "care_date"),
        ({"birth_rank": 12}, "birth_rank"),
    ],
)
def test_malformed_input_is_an_error_not_a_miss_and_records_nothing(cast, family, change, field):
    with pytest.raises(CardDataError) as excinfo:
        ask(cast, **parent(family, **change))
    assert excinfo.value.field == field
    assert not Disclosure.objects.exists()


def test_the_answer_and_its_ledger_row_commit_together(cast, family, monkeypatch):
    from rempart.ledger import chain

    def broken(**values):
        raise RuntimeError("disk full")

    monkeypatch.setattr(chain, "append", broken)
    with pytest.raises(RuntimeError):
        ask(cast, **parent(family))


def test_no_answer_leaves_when_the_one_statement_append_fails(cast, family, monkeypatch):
    """The rights check's row goes by one statement once this connection knows a chain's head
    (rempart.ledger.fast_append): when it fails, and the transactional way fails too, no answer leaves and no row
    is left; when only the statement fails, the row goes the transactional way and then the answer."""
    from django.db import connection, transaction

    from rempart.ledger import chain, fast_append

    if connection.vendor != "postgresql":
        pytest.skip("SQLite always appends the transactional way")
    ask(
        cast, **parent(family)
    )  # the first row goes the transactional way and teaches the connection its head
    before = Disclosure.objects.count()
    monkeypatch.setattr(fast_append, "_statement", lambda extras: "SELECT * FROM no_such_ledger_table")
    for card in (parent(family), parent(family, adherent_number="ADH-9999")):  # a match and a miss alike
        answer = ask(cast, **card)  # the row is written the transactional way, then the answer leaves
        assert Disclosure.objects.filter(reference=answer.reference).exists()
    assert Disclosure.objects.count() == before + 2

    def broken(**values):
        raise RuntimeError("disk full")

    monkeypatch.setattr(chain, "append", broken)
    fast_append.forget()
    with pytest.raises(RuntimeError), transaction.atomic():
        ask(cast, **parent(family))
    assert Disclosure.objects.count() == before + 2


def test_a_domain_without_tiers_payant_is_not_covered(cast, family):
    from rempart.registry.models import Guarantee

    Guarantee.objects.filter(
        product__insurer=cast.insurer.insurer, product__code="ESS", domain="TRAN"
    ).update(tp_code="SP")
    cast.optician.professional.domains = ["OPTI", "TRAN"]  # a shop that also does patient transport
    cast.optician.professional.save(update_fields=["domains"])
    answer = ask(cast, **parent(family, domain="TRAN"))
    assert answer.outcome == "not_covered" and answer.terms is None
    row = Disclosure.objects.get(reference=answer.reference)
    assert row.fields == ["identity_confirmed", "coverage:TRAN"]


def test_a_suspended_insurer_answers_no_match(cast, family):
    from rempart.registry.models import Insurer

    Insurer.objects.filter(pk=cast.insurer.insurer_id).update(status="suspended")
    assert ask(cast, **parent(family)).outcome == "no_match"
