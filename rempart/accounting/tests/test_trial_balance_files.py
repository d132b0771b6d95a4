"""`rempart accounts trial-balance --format text|csv|pdf --output FILE`: every account, debits = credits, the float."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from rempart.accounting import service as accounting
from rempart.accounting import trial_balance_files
from rempart.accounting.models import TransactionKind as K

DAY = dt.date(2026, 11, 10)


@pytest.fixture
def flows(cast):
    """A claim of 100 €, 60 € of it paid out, 3 € of fees billed, 50 € received from the insurer."""
    insurer = cast.insurer.insurer
    receivable, payable = (
        accounting.insurer_receivable(insurer),
        accounting.professional_payable(cast.optician),
    )
    bank, revenue = accounting.operator_bank(), accounting.operator_revenue()
    moves = [
        (K.CLAIM_ACCEPTED, receivable, payable, 10_000, DAY),
        (K.PAYMENT, payable, bank, 6_000, DAY + dt.timedelta(days=1)),
        (K.FEE, receivable, revenue, 300, DAY + dt.timedelta(days=2)),
        (K.RECEIPT, bank, receivable, 5_000, DAY + dt.timedelta(days=3)),
    ]
    for number, (kind, debit, credit, cents, day) in enumerate(moves):
        accounting.post(kind, [(debit, cents), (credit, -cents)], idempotency_key=f"tb:{number}",
                        source=("test", str(number)), effective_date=day)  # fmt: skip


def _run(*args) -> str:
    out = io.StringIO()
    call_command("accounts", "trial-balance", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_float_is_receivables_less_payables_and_reconciles(flows):
    f = trial_balance_files.float_at(accounting.trial_balance())
    assert (f.receivables_cents, f.payables_cents) == (5_300, 4_000)
    assert f.float_cents == 1_300 == f.paid_out_cents - f.received_cents + f.fees_cents
    assert f.reconciled
    before_receipt = trial_balance_files.float_at(accounting.trial_balance(DAY + dt.timedelta(days=2)))
    assert before_receipt.float_cents == 6_300 and before_receipt.received_cents == 0


@pytest.mark.django_db
def test_text_lists_every_account_and_the_float(flows):
    out = _run("--at", (DAY + dt.timedelta(days=5)).isoformat())
    assert "balanced" in out and "NOT" not in out
    for code in ("411-123456789", "512", "706"):
        assert code in out
    assert "Float (advanced to professionals, not yet recovered from insurers): 13,00" in out
    assert "consistent" in out


@pytest.mark.django_db
def test_csv_in_cents_debits_equal_credits(flows, tmp_path):
    target = tmp_path / "tb.csv"
    out = _run("--format", "csv", "--output", str(target))
    assert "written to" in out
    rows = list(csv.DictReader(io.StringIO(target.read_bytes().decode("utf-8-sig")), delimiter=";"))
    accounts = [r for r in rows if not r["code"].startswith(("TOTAL", "FLOAT"))]
    assert len(accounts) == 4
    assert (
        sum(int(r["debits_cents"]) for r in accounts)
        == sum(int(r["credits_cents"]) for r in accounts)
        == 21_300
    )
    total = next(r for r in rows if r["code"] == "TOTAL")
    assert total["name"] == "balanced" and total["balance_cents"] == "0"
    assert next(r for r in rows if r["code"] == "FLOAT")["balance_cents"] == "1300"
    assert sum(int(r["balance_cents"]) for r in accounts) == 0


@pytest.mark.django_db
def test_csv_cells_cannot_become_formulas(cast, tmp_path):
    insurer = cast.insurer.insurer
    insurer.name = '=HYPERLINK("http://x")'
    insurer.save()
    accounting.insurer_receivable(insurer)
    target = tmp_path / "tb.csv"
    _run("--format", "csv", "--output", str(target))
    assert ";=HYPERLINK" not in target.read_text(encoding="utf-8-sig")


@pytest.mark.django_db
def test_pdf_written(flows, tmp_path):
    target = tmp_path / "tb.pdf"
    _run("--format", "pdf", "--output", str(target), "--at", "2026-11-30")
    assert target.read_bytes().startswith(b"%PDF")


@pytest.mark.django_db
def test_pdf_needs_an_output_and_bad_dates_refused(flows):
    with pytest.raises(CommandError, match="--output"):
        _run("--format", "pdf")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        _run("--at", "30/11/2026")
