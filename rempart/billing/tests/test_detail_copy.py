"""On PostgreSQL the database writes the detail file (COPY): the same bytes as the row-by-row path, the same readers.

One statement with everything that makes the two paths differ if they were to: formula-looking and quoted cells,
a separator and a line break typed in an invoice number, full-width signs, a number with a sign, an empty cell,
a split with remainders, a claim reviewed down to nothing, two transfers for one claim, someone of another
insurer, a professional without FINESS. Both files are written and compared byte for byte, and so are the ledger
rows each path writes (one per beneficiary of the file, none for the stranger).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from rempart.accounting import service as accounting
from rempart.billing import detail
from rempart.billing.models import Statement
from rempart.billing.tests.test_detail import DAY, make_statement, paid_claim, payment_run, people_of
from rempart.claims.models import Claim, ClaimLine
from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.payments.models import Payment, PaymentItem

pytestmark = pytest.mark.postgres_only

NASTY_INVOICES = [
    "=HYPERLINK(1)",
    "-12A",
    "+3",
    "a;b",
    'dit "bonjour"',
    "ligne\ncassée\r",
    "＝１",
    "-12,50",
    "@x",
]


@pytest.fixture(autouse=True)
def _billing_dir(settings, tmp_path):
    settings.REMPART_BILLING_DIR = str(tmp_path / "billing")


@pytest.fixture
def nasty_statement(cast, population):  # noqa: F811 - the fixture imported above
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    insurer = cast.insurer.insurer
    people = people_of(insurer, 4)
    (stranger,) = people_of(population.insurers[1], 1)
    run = payment_run()
    claims, extra = [], []
    for index, invoice in enumerate(NASTY_INVOICES):
        claim = paid_claim(
            cast.optician if index % 2 else cast.other_shop, insurer, people[index % 4],
            [(1_000 + index, "accepted"), (0, "rejected"), (333, "reduced")], run=run,
        )  # fmt: skip
        Claim.objects.filter(pk=claim.pk).update(invoice_number=invoice)
        claims.append(claim)
    ClaimLine.objects.filter(claim=claims[0], number=1).update(code="=1+1", code_system="")
    ClaimLine.objects.filter(claim=claims[1], number=1).update(code="＋SUM(A1)")
    split = paid_claim(
        cast.optician, insurer, people[0], [(10_000, "accepted"), (5_001, "accepted"), (1, "accepted")]
    )
    credit = accounting.post(
        accounting.Kind.CLAIM_REVERSED,
        [(accounting.insurer_receivable(insurer), -3_007), (accounting.professional_payable(cast.optician), 3_007)],
        idempotency_key=f"claim:{split.pk}:2", source=("claim", str(split.pk)), effective_date=DAY,
    )  # fmt: skip
    extra.append((split, credit, -3_007))
    reviewed = paid_claim(
        cast.optician, insurer, people[1], [(1_000, "accepted"), (500, "accepted"), (1, "accepted")]
    )
    ClaimLine.objects.filter(claim=reviewed).update(status="rejected", accepted_cents=0)
    review = accounting.post(
        accounting.Kind.REVIEW_ADJUSTED,
        [(accounting.insurer_receivable(insurer), -1_501), (accounting.professional_payable(cast.optician), 1_501)],
        idempotency_key=f"claim:{reviewed.pk}:2", source=("claim", str(reviewed.pk)), effective_date=DAY,
    )  # fmt: skip
    extra.append((reviewed, review, -1_501))
    twice = claims[2]
    second = Payment.objects.create(
        run=payment_run(), organisation=cast.optician, reference="PAY-AGAIN-1", amount_cents=0,
        status=Payment.Status.SETTLED,
    )  # fmt: skip
    PaymentItem.objects.create(payment=second, kind=PaymentItem.Kind.CLAIM, claim=twice, amount_cents=1)
    strangers = paid_claim(cast.optician, insurer, stranger, [(777, "accepted")], run=run)
    cast.other_shop.professional.__class__.objects.filter(pk=cast.other_shop.professional_id).update(
        finess=""
    )
    statement = make_statement(insurer, [*claims, split, strangers], extra=extra)
    return statement, stranger


def _write(statement: Statement, monkeypatch, *, row_by_row: bool) -> tuple[bytes, list[tuple]]:
    """Write the file by one path, read it and its ledger rows back, then undo both (a savepoint)."""
    monkeypatch.setattr(detail, "ROW_BY_ROW", row_by_row)
    monkeypatch.setattr(detail, "CLAIMS_PER_CHUNK", 3)  # several chunks on the row-by-row path
    with transaction.atomic():
        written = detail.write_detail(Statement.objects.get(pk=statement.pk))
        content = written.path.read_bytes()
        ledger = sorted(
            Disclosure.objects.filter(purpose="billing").values_list(
                "beneficiary_id", "insurer_id", "organisation_id", "outcome", "fields", "channel"
            )
        )
        intact = all(
            chain._intact(chain._as_row(values))
            for values in Disclosure.objects.filter(purpose="billing").values_list(*chain._VERIFY_COLUMNS)
        )
        assert intact, "every ledger row verifies against its hash"
        written.path.chmod(0o640)
        written.path.unlink()
        transaction.set_rollback(True)
    return content, ledger


def test_copy_writes_the_same_bytes_and_ledger_rows_as_row_by_row(nasty_statement, monkeypatch):
    statement, stranger = nasty_statement
    by_copy, copy_ledger = _write(statement, monkeypatch, row_by_row=False)
    by_rows, rows_ledger = _write(statement, monkeypatch, row_by_row=True)
    assert by_copy == by_rows
    assert copy_ledger == rows_ledger and copy_ledger
    assert stranger.pk not in {row[0] for row in copy_ledger}
    text = by_copy.decode("utf-8")
    assert "'=HYPERLINK(1)" in text and "'-12A" in text and ";+3;" in text and '"a;b"' in text
    assert '"dit ""bonjour"""' in text and "ligne cassée " in text and "'＝１" in text and ";-12,50;" in text
    assert text.count("\r\n") == len(text.splitlines()) and "\n" not in text.replace("\r\n", "")
    assert "'=1+1" in text and "'＋SUM(A1)" in text


def test_the_copy_path_splits_and_sums_like_the_statement(nasty_statement, monkeypatch):
    statement, _stranger = nasty_statement
    content, _ledger = _write(statement, monkeypatch, row_by_row=False)
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline=""), delimiter=";"))
    billed = sum(int(row["billed_cents"]) for row in rows)
    items = sum(item.amount_cents for item in statement.items.all())
    assert billed == items
    refs = {row["payment_references"] for row in rows if "PAY-AGAIN-1" in row["payment_references"]}
    assert refs and all("|" in ref for ref in refs)


def test_the_batch_memory_is_for_the_batch_transaction_only(transactional_db, settings):
    from rempart.billing.batch_db import batch_memory

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's work_mem")
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        (before,) = cursor.fetchone()
        with transaction.atomic():
            batch_memory()
            cursor.execute("SHOW work_mem")
            assert cursor.fetchone() == ("256MB",)
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone() == (before,)
    settings.REMPART_BILLING_WORK_MEM = "1GB'; DROP TABLE x; --"
    with transaction.atomic(), pytest.raises(ValueError):
        batch_memory()
