"""The detail file: one row per paid claim line, no NIR and no name, the gate's ledger rows, written once.

Statements are built directly here (claims posted to the money ledger as the claims app posts them, a payment
that settled them, a ``Statement`` with its items): what the detail file holds depends on these alone.
The helpers are shared with test_insurer_portal.py and test_api.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import os

import pytest
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.billing import detail
from rempart.billing.models import Statement, StatementItem
from rempart.claims.models import Claim, ClaimLine
from rempart.incidents.tests.conftest import COL, population  # noqa: F401 - fixture
from rempart.ledger.models import Disclosure
from rempart.payments.models import Payment, PaymentItem, PaymentRun
from rempart.registry.models import Beneficiary

_numbers = itertools.count(1)
DAY = dt.date(2026, 11, 10)


@pytest.fixture(autouse=True)
def _billing_dir(settings, tmp_path):
    settings.REMPART_BILLING_DIR = str(tmp_path / "billing")


def people_of(insurer, count: int) -> list[Beneficiary]:
    return list(Beneficiary.objects.filter(contract__insurer=insurer).select_related("contract")[:count])


def paid_claim(
    organisation, insurer, person: Beneficiary, lines: list[tuple[int, str]], *, run=None
) -> Claim:
    """An accepted claim with ``lines`` [(accepted cents, status)], posted and paid in ``run`` (if given)."""
    number = next(_numbers)
    accepted = sum(cents for cents, _status in lines)
    claim = Claim.objects.create(
        organisation=organisation, invoice_number=f"F-DET-{number:05d}", channel=Claim.Channel.API,
        insurer=insurer, beneficiary_id=person.pk, domain="OPTI", invoice_date=DAY, care_date=DAY,
        status=Claim.Status.ACCEPTED, total_price_cents=accepted + 5000, total_amo_cents=5000,
        claimed_cents=accepted + 100, accepted_cents=accepted, decision={"lines": []}, rule_version="t",
        data_version="t", request_fingerprint=f"fp-det-{number}", ledger_reference="RC-TEST",
    )  # fmt: skip
    for index, (cents, status) in enumerate(lines, start=1):
        ClaimLine.objects.create(
            claim=claim, number=index, organisation_id_copy=organisation.pk, beneficiary_id=person.pk,
            care_date=DAY, code_system="LPP", code=f"220{index}", quantity=1, unit_price_cents=cents + 2500,
            base_cents=2500, amo_paid_cents=1500, amc_claimed_cents=cents + 100 if cents else 900,
            status=status, accepted_cents=cents,
        )  # fmt: skip
    claim.transaction = accounting.post(
        accounting.Kind.CLAIM_ACCEPTED,
        [(accounting.insurer_receivable(insurer), accepted), (accounting.professional_payable(organisation), -accepted)],
        idempotency_key=f"claim:{claim.pk}:1", source=("claim", str(claim.pk)), effective_date=DAY,
    )  # fmt: skip
    if run is not None:
        payment, _ = Payment.objects.get_or_create(
            run=run, organisation=organisation,
            defaults={"reference": f"PAY-{run.pk}-{organisation.pk}", "amount_cents": 0, "status": Payment.Status.SENT},
        )  # fmt: skip
        PaymentItem.objects.create(
            payment=payment, kind=PaymentItem.Kind.CLAIM, claim=claim, amount_cents=accepted
        )
    return claim


def payment_run() -> PaymentRun:
    return PaymentRun.objects.create(
        reference=f"RUN-DET-{next(_numbers)}", cutoff=DAY, execution_date=DAY + dt.timedelta(days=1),
        status=PaymentRun.Status.APPROVED, prepared_at=timezone.now(),
    )  # fmt: skip


def make_statement(insurer, claims: list[Claim], *, number: str | None = None, extra=()) -> Statement:
    """An issued statement billing ``claims`` (their acceptance transactions) and ``extra`` [(claim, tx)]."""
    serial = next(_numbers)
    statement = Statement.objects.create(
        number=number or f"REL-{insurer.amc_number}-{serial:04d}", insurer=insurer,
        period_start=DAY - dt.timedelta(days=serial * 40), period_end=DAY - dt.timedelta(days=serial * 40 - 30),
        paid_cents=sum(c.accepted_cents for c in claims), total_cents=sum(c.accepted_cents for c in claims),
        due_date=DAY + dt.timedelta(days=10), issued_at=timezone.now(),
    )  # fmt: skip
    for claim in claims:
        StatementItem.objects.create(
            statement=statement,
            transaction=claim.transaction,
            claim_id=claim.pk,
            amount_cents=claim.accepted_cents,
        )
    for claim, transaction, cents in extra:
        StatementItem.objects.create(
            statement=statement, transaction=transaction, claim_id=claim.pk, amount_cents=cents
        )
    return statement


def read_rows(path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


@pytest.fixture
def billed(cast, population):  # noqa: F811 - the fixture imported above
    """A statement of the cast's insurer: three claims of two people (one claim with a rejected line), paid."""
    insurer = cast.insurer.insurer
    first, second = people_of(insurer, 2)
    run = payment_run()
    claims = [
        paid_claim(cast.optician, insurer, first, [(10_000, "accepted"), (0, "rejected")], run=run),
        paid_claim(cast.optician, insurer, first, [(4_000, "reduced"), (2_500, "accepted")], run=run),
        paid_claim(cast.other_shop, insurer, second, [(3_000, "accepted")], run=run),
    ]
    return make_statement(insurer, claims), claims, (first, second)


def test_one_row_per_paid_line_with_the_insurers_numbers_and_no_identity(billed, population):  # noqa: F811
    statement, claims, (first, second) = billed
    written = detail.write_detail(statement)
    rows = read_rows(written.path)
    assert written.rows == len(rows) == 4  # the rejected line is not a paid line
    assert list(rows[0]) == list(detail.COLUMNS)
    assert [r["invoice_number"] for r in rows] == [claims[0].invoice_number] + [
        claims[1].invoice_number
    ] * 2 + [claims[2].invoice_number]
    assert {r["adherent_number"] for r in rows[:3]} == {first.contract.adherent_number}
    assert rows[0]["member_rank"] == str(first.member_number)
    assert rows[3]["adherent_number"] == second.contract.adherent_number
    assert rows[3]["professional_finess"] == "750000028"
    assert sum(int(r["billed_cents"]) for r in rows) == statement.paid_cents == 19_500
    assert all(r["billed_cents"] == r["accepted_cents"] for r in rows)
    assert rows[0]["payment_references"].startswith("PAY-")
    text = written.path.read_text(encoding="utf-8")
    for person in (first, second):
        for value in (person.last_name, person.first_name):
            assert value not in text
    assert "nir" not in text.lower()
    nirs = {row[COL["nir"]] for rows in population.people.values() for row in rows if row[COL["nir"]]}
    assert nirs and not [nir for nir in nirs if nir in text]
    statement.refresh_from_db()
    assert statement.detail_sha256 == written.sha256 == detail.file_digest(written.path)
    assert statement.detail_rows == 4 and statement.detail_path == str(written.path)


def test_producing_the_file_records_one_ledger_row_per_beneficiary(billed, cast, monkeypatch):
    statement, _claims, (first, second) = billed
    monkeypatch.setattr(detail, "CLAIMS_PER_CHUNK", 1)  # the same person met again in a later chunk
    before = Disclosure.objects.count()
    detail.write_detail(statement)
    rows = list(Disclosure.objects.filter(purpose="billing").order_by("beneficiary_id"))
    assert Disclosure.objects.count() - before == 2
    assert sorted(r.beneficiary_id for r in rows) == sorted([first.pk, second.pk])
    assert {r.organisation_id for r in rows} == {cast.insurer.pk}
    assert {r.insurer_id for r in rows} == {statement.insurer_id}
    assert all(f"billing_detail:{statement.number}" in r.fields for r in rows)


def test_written_once(billed):
    statement, _claims, _people = billed
    first = detail.write_detail(statement)
    count = Disclosure.objects.count()
    again = detail.write_detail(Statement.objects.get(pk=statement.pk))
    assert again == first and Disclosure.objects.count() == count
    assert not os.access(first.path, os.W_OK) or os.geteuid() == 0  # read-only on disk


def test_an_altered_file_is_refused_at_download(billed):
    statement, _claims, _people = billed
    written = detail.write_detail(statement)
    os.chmod(written.path, 0o640)
    written.path.write_text(
        written.path.read_text(encoding="utf-8").replace("10000", "99999"), encoding="utf-8"
    )
    with pytest.raises(detail.DetailTampered):
        detail.open_detail(Statement.objects.get(pk=statement.pk))


def test_a_file_not_yet_written_is_a_clear_error(billed):
    with pytest.raises(detail.DetailError, match="pas encore"):
        detail.open_detail(billed[0])


def test_a_partial_reversal_is_spread_over_the_claims_lines(cast, population):  # noqa: F811
    insurer = cast.insurer.insurer
    (person,) = people_of(insurer, 1)
    claim = paid_claim(cast.optician, insurer, person, [(10_000, "accepted"), (5_001, "accepted")])
    credit = accounting.post(
        accounting.Kind.CLAIM_REVERSED,
        [(accounting.insurer_receivable(insurer), -3_000), (accounting.professional_payable(cast.optician), 3_000)],
        idempotency_key=f"claim:{claim.pk}:2", source=("claim", str(claim.pk)), effective_date=DAY,
    )  # fmt: skip
    statement = make_statement(insurer, [claim], extra=[(claim, credit, -3_000)])
    rows = read_rows(detail.write_detail(statement).path)
    assert sum(int(r["billed_cents"]) for r in rows) == 12_001
    assert [int(r["billed_cents"]) for r in rows] == [8_000, 4_001]


def test_another_insurers_person_is_never_read(cast, population):  # noqa: F811
    """A claim line naming someone of another insurer (a registry mix-up) gets no numbers and no ledger row."""
    insurer = cast.insurer.insurer
    (stranger,) = people_of(population.insurers[1], 1)
    claim = paid_claim(cast.optician, insurer, stranger, [(1_000, "accepted")])
    rows = read_rows(detail.write_detail(make_statement(insurer, [claim])).path)
    assert rows[0]["adherent_number"] == "" and rows[0]["member_rank"] == ""
    assert not Disclosure.objects.filter(purpose="billing", beneficiary_id=stranger.pk).exists()


def test_allocation_is_exact():
    assert detail.allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert detail.allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert detail.allocate(7, [0, 0]) == [4, 3]
    assert detail.allocate(12_001, [10_000, 5_001]) == [8_000, 4_001]
    assert detail.allocate(0, []) == []


def test_formula_looking_codes_are_neutralised(cast, population):  # noqa: F811
    insurer = cast.insurer.insurer
    (person,) = people_of(insurer, 1)
    claim = paid_claim(cast.optician, insurer, person, [(1_000, "accepted")])
    ClaimLine.objects.filter(claim=claim).update(code="=HYPERLINK(1)")
    path = detail.write_detail(make_statement(insurer, [claim])).path
    assert read_rows(path)[0]["code"] == "'=HYPERLINK(1)"
    with open(path, encoding="utf-8") as handle:
        assert handle.readline().startswith("statement_number;claim_id")


def test_a_claim_reviewed_down_to_nothing_still_adds_up(cast, population):  # noqa: F811
    """Billed earlier, reviewed to 0 since: its lines carry the negative amount, the file adds up to the statement."""
    insurer = cast.insurer.insurer
    (person,) = people_of(insurer, 1)
    claim = paid_claim(cast.optician, insurer, person, [(1_000, "accepted"), (500, "accepted")])
    ClaimLine.objects.filter(claim=claim).update(status="rejected", accepted_cents=0)
    review = accounting.post(
        accounting.Kind.REVIEW_ADJUSTED,
        [(accounting.insurer_receivable(insurer), -1_500), (accounting.professional_payable(cast.optician), 1_500)],
        idempotency_key=f"claim:{claim.pk}:2", source=("claim", str(claim.pk)), effective_date=DAY,
    )  # fmt: skip
    statement = make_statement(insurer, [], extra=[(claim, review, -1_500)])
    rows = read_rows(detail.write_detail(statement).path)
    assert [int(r["billed_cents"]) for r in rows] == [-750, -750]


@pytest.mark.parametrize("row_by_row", [False, True])
def test_a_failure_while_writing_leaves_nothing(billed, monkeypatch, row_by_row):
    """The rows and their ledger rows are written, then the disk fails: no file, no ledger row, no digest."""
    statement = billed[0]
    monkeypatch.setattr(detail, "ROW_BY_ROW", row_by_row)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(detail.os, "fsync", broken)
    before = Disclosure.objects.count()
    with pytest.raises(RuntimeError):
        detail.write_detail(statement)
    assert Disclosure.objects.count() == before
    assert not Statement.objects.get(pk=statement.pk).detail_sha256
    assert not list(detail.detail_path(statement).parent.glob("*"))


def test_the_command_writes_the_detail_files_at_issue(cast, amc, default_fees, population):  # noqa: F811
    """`rempart billing prepare` writes each new statement's file (its readers recorded); a replay writes none."""
    from io import StringIO

    from django.core.management import call_command

    from rempart.billing.tests.conftest import accept, paid

    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    (person,) = people_of(amc, 1)
    ClaimLine.objects.create(
        claim=claim, number=1, organisation_id_copy=cast.optician.pk, beneficiary_id=person.pk,
        care_date=claim.care_date, code_system="LPP", code="2203240", quantity=1, unit_price_cents=15_000,
        base_cents=5_000, amo_paid_cents=3_000, amc_claimed_cents=10_000, status="accepted", accepted_cents=10_000,
    )  # fmt: skip
    paid([claim], dt.date(2026, 10, 10))
    out = StringIO()
    call_command("billing", "prepare", "--period", "2026-10", stdout=out)
    statement = Statement.objects.get()
    assert "1 detail file(s), 1 row(s)" in out.getvalue()
    assert statement.detail_sha256 == detail.file_digest(detail.detail_path(statement))
    recorded = Disclosure.objects.filter(purpose="billing").count()
    assert recorded == 1
    again = StringIO()
    call_command("billing", "prepare", "--period", "2026-10", stdout=again)
    assert "detail file" not in again.getvalue() and Disclosure.objects.filter(purpose="billing").count() == 1


def test_several_files_in_one_pass_each_get_their_own_rows(cast, population):  # noqa: F811
    """Two statements written together: each file holds its own claims, each reader row names its own file."""
    insurer = cast.insurer.insurer
    first, second = people_of(insurer, 2)
    run = payment_run()
    one = make_statement(insurer, [paid_claim(cast.optician, insurer, first, [(1_000, "accepted")], run=run)])
    two = make_statement(
        insurer,
        [paid_claim(cast.optician, insurer, second, [(2_000, "accepted")], run=run),
         paid_claim(cast.optician, insurer, first, [(3_000, "accepted")], run=run)],
    )  # fmt: skip
    files = detail.write_details([two, one])
    assert [files[one.pk].rows, files[two.pk].rows] == [1, 2]
    assert [r["billed_cents"] for r in read_rows(files[two.pk].path)] == ["2000", "3000"]
    assert {r["statement_number"] for r in read_rows(files[one.pk].path)} == {one.number}
    rows = Disclosure.objects.filter(purpose="billing")
    assert sorted((r.beneficiary_id, r.fields[-1]) for r in rows) == sorted(
        [(first.pk, f"billing_detail:{one.number}"), (second.pk, f"billing_detail:{two.number}"),
         (first.pk, f"billing_detail:{two.number}")]
    )  # fmt: skip
