"""``rempart payments prepare | list | show | import-status`` for the scheduler and the treasury."""

from __future__ import annotations

import io
import sys
import types

import pytest
from django.core.management import CommandError, call_command

from rempart.payments import runs
from rempart.payments.models import PaymentRun

from .conftest import IBANS, yesterday


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("payments", *args, stdout=out)
    return out.getvalue()


def test_the_scheduler_prepares_a_run_and_preparing_again_replays_it(cast, owed):
    first = run_command("prepare", "--cutoff", yesterday().isoformat())
    run = PaymentRun.objects.get()
    assert f"Prepared {run.reference}" in first and "2 transfers" in first and "172,50 EUR" in first
    assert run.prepared_by is None
    again = run_command("prepare", "--cutoff", yesterday().isoformat())
    assert (
        f"Already prepared, waiting for approval: {run.reference}" in again
        and PaymentRun.objects.count() == 1
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("prepare",), "--cutoff YYYY-MM-DD is required"),
        (("prepare", "--cutoff", "30/11/2026"), "YYYY-MM-DD expected"),
        (("prepare", "--cutoff", "2026-11-01", "--execution-date", "tomorrow"), "YYYY-MM-DD expected"),
        (("prepare", "--cutoff", "2099-01-01"), "futur"),
        (("show",), "give the run's reference"),
        (("show", "PR-19990101-001"), "no payment run"),
        (("import-status",), "give the bank file"),
    ],
)
def test_bad_arguments_are_explained_and_change_nothing(cast, owed, args, message):
    with pytest.raises(CommandError, match=message):
        run_command(*args)
    assert not PaymentRun.objects.exists()


def test_nothing_to_pay_is_said_plainly(cast, payees):
    with pytest.raises(CommandError, match="Rien à payer"):
        run_command("prepare", "--cutoff", yesterday().isoformat())


def test_list_and_show_print_masked_ibans_only(cast, owed, preparer, approver):
    cast.other_shop.professional.iban_cipher = None
    cast.other_shop.professional.save(update_fields=["iban_cipher"])
    run = runs.approve_run(runs.prepare_run(yesterday(), user=preparer), user=approver)
    listing = run_command("list")
    assert run.reference in listing and "approved" in listing and "142,50" in listing
    shown = run_command("show", run.reference)
    assert "FR76 •••• 0189" in shown and f"{run.reference}-O{cast.optician.pk}" in shown
    assert "HELD Pharmacie Voisine (30,00 EUR waiting): no_iban" in shown
    assert run.file_sha256 in shown and approver.email in shown and preparer.email in shown
    assert IBANS["optician"][0] not in shown + listing
    assert run_command("show", run.reference, "--limit", "1").count(f"{run.reference}-O") == 1


def test_an_empty_list_says_so(db):
    assert "No payment run yet." in run_command("list")


@pytest.fixture
def returns_stub(monkeypatch):
    """rempart.payments.returns as its interface says: import_bank_file(bytes, user=) → .summary; BankFileRefused."""

    class BankFileRefused(Exception):
        pass

    calls = []

    def import_bank_file(content: bytes, *, user=None):
        calls.append((content, user))
        if content.startswith(b"bad"):
            raise BankFileRefused("Fichier déjà importé : rien n'a été modifié.")
        return types.SimpleNamespace(summary={"rejected": 1, "returned_cents": 4250})

    stub = types.ModuleType("rempart.payments.returns")
    stub.BankFileRefused, stub.import_bank_file = BankFileRefused, import_bank_file
    monkeypatch.setitem(sys.modules, "rempart.payments.returns", stub)
    return calls


def test_import_status_hands_the_file_to_the_returns_import(db, tmp_path, returns_stub):
    report = tmp_path / "pain002.xml"
    report.write_bytes(b"<Document/>")
    out = run_command("import-status", str(report))
    assert "Imported pain002.xml: rejected 1, returned_cents 4250" in out
    assert returns_stub == [(b"<Document/>", None)]
    refused = tmp_path / "again.xml"
    refused.write_bytes(b"bad")
    with pytest.raises(CommandError, match="déjà importé"):
        run_command("import-status", str(refused))
    with pytest.raises(CommandError, match="cannot read"):
        run_command("import-status", str(tmp_path / "missing.xml"))
