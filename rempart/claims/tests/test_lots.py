"""Lots of invoices: refused whole with nothing changed (ARL), or one result per invoice (RSP), atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from rempart.accounting import service as accounting
from rempart.accounting.models import Transaction
from rempart.accounts import tokens
from rempart.claims.lot_format import write_lot
from rempart.claims.models import Claim, ClaimLot, LotInvoiceError
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure
from rempart.registry.tests.test_crash_safety import child_env, wal_size

from .test_api import invoice_for, no_surveillance  # noqa: F401 - fixture


def send(client, raw, body: bytes, content_type="application/x-ndjson"):
    return client.post(
        "/api/v1/claims/lots", data=body, content_type=content_type, HTTP_AUTHORIZATION=f"Bearer {raw}"
    )


def header(cast, number="LOT-0001", **extra):
    return {"finess": cast.optician.professional.finess, "lot_number": number, **extra}


def three_invoices(row, pec, population):
    """A good invoice, one whose totals do not add up, and one for nobody."""
    good = invoice_for(row, pec, number="F-1")
    bad = invoice_for(row, pec, number="F-2", total_amc_cents=1)
    stranger = next(r for r in population.people[population.insurers[1].pk] if r[COL["nir"]])
    nobody = invoice_for(row, pec, number="F-3", nir=stranger[COL["nir"]])
    return [good, bad, nobody]


def state():
    return (
        Claim.objects.count(),
        ClaimLot.objects.filter(status="accepted").count(),
        Disclosure.objects.count(),
        Transaction.objects.count(),
    )


def test_a_lot_gets_one_result_per_invoice(client, cast, token, delivered, population):
    row, pec = delivered
    invoices = three_invoices(row, pec, population)
    body = write_lot(invoices, header(cast, total_amc_cents=sum(i["total_amc_cents"] for i in invoices)))
    response = send(client, token, body)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["status"] == "accepted" and answer["invoices"] == 3 and not answer["replayed"]
    assert answer["counts"] == {"accepted": 1, "invalid": 1, "no_match": 1}
    claim = Claim.objects.get()
    assert (claim.invoice_number, claim.channel, claim.lot.lot_number, claim.lot_line) == (
        "F-1",
        "lot",
        "LOT-0001",
        2,
    )
    errors = {e.invoice_number: e for e in LotInvoiceError.objects.all()}
    assert errors["F-2"].kind == "invalid" and errors["F-2"].errors[0]["field"]
    assert errors["F-3"].kind == "no_match" and errors["F-3"].ledger_reference
    # The per-invoice results (RSP) as CSV, never a value of the card.
    results = client.get(answer["results_url"], HTTP_AUTHORIZATION=f"Bearer {token}")
    assert results.status_code == 200
    text = results.content.decode()
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[0][:3] == ["line", "invoice_number", "status"]
    assert {r[1]: r[2] for r in rows[1:]} == {"F-1": "accepted", "F-2": "invalid", "F-3": "no_match"}
    assert row[COL["nir"]] not in text
    assert accounting.balance(accounting.professional_payable(cast.optician.pk)) == -claim.accepted_cents
    call_command("accounts", "check")


def test_sending_the_same_lot_again_changes_nothing(client, cast, token, delivered, population):
    row, pec = delivered
    body = write_lot([invoice_for(row, pec, number="F-1")], header(cast))
    assert send(client, token, body).status_code == 200
    before = state()
    again = send(client, token, body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert state() == before
    other = write_lot([invoice_for(row, pec, number="F-9")], header(cast))
    reused = send(client, token, other)
    assert reused.status_code == 400 and reused.json()["code"] == "lot_number_reused"
    assert state() == before


@pytest.mark.parametrize(
    "lie",
    [{"invoice_count": 5}, {"total_amc_cents": 1}, {"finess": "750000028"}],
    ids=["count", "total", "another sender"],
)
def test_a_lot_wrong_as_a_whole_changes_nothing(client, cast, token, delivered, population, lie):
    row, pec = delivered
    body = write_lot(three_invoices(row, pec, population), header(cast, **lie))
    before = state()
    response = send(client, token, body)
    assert response.status_code == 400 and response.json()["code"], response.content
    assert state() == before  # not a single card was looked up
    assert ClaimLot.objects.get().status == "refused"  # the refusal is kept for the history


def test_a_truncated_or_mistyped_lot_is_refused(client, cast, token, delivered):
    row, pec = delivered
    body = write_lot([invoice_for(row, pec, number="F-1")], header(cast))
    truncated = body[: body.rindex(b"\n", 0, len(body) - 1) + 1]  # the trailer cut off
    assert send(client, token, truncated).json()["code"] == "truncated"
    assert send(client, token, body, content_type="application/json").status_code == 415
    assert send(client, token, "é".encode("latin-1") + body).status_code == 400
    assert not Claim.objects.exists()


def test_import_claims_command(cast, tmp_path, delivered, population, client, token):
    row, pec = delivered
    path = tmp_path / "lot.jsonl"
    invoices = three_invoices(row, pec, population)
    path.write_bytes(
        write_lot(invoices, header(cast, total_amc_cents=sum(i["total_amc_cents"] for i in invoices)))
    )
    out = io.StringIO()
    call_command("import_claims", str(path), "--organisation", cast.optician.professional.finess, "--results",
                 str(tmp_path / "rsp.csv"), stdout=out)  # fmt: skip
    assert "accepted 1" in out.getvalue() and "no_match 1" in out.getvalue()
    assert (tmp_path / "rsp.csv").read_text().count("\n") == 4
    assert Claim.objects.get().channel == "lot"
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(write_lot(invoices, header(cast, number="LOT-2", invoice_count=9)))
    with pytest.raises(Exception, match="nothing changed"):
        call_command("import_claims", str(bad), "--organisation", cast.optician.professional.finess)


def _ledger_writer_pid() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
               WHERE c.relname LIKE 'ledger_disclosure%%' AND l.mode = 'RowExclusiveLock' AND l.granted
                 AND l.pid <> pg_backend_pid() LIMIT 1"""
        )
        row = cursor.fetchone()
    return row[0] if row else None


@pytest.mark.django_db(transaction=True)
def test_kill_9_mid_lot_leaves_nothing_half_posted(cast, population, tmp_path, settings):
    """A lot of 20,000 invoices for nobody (each one a lookup and a ledger row): killed while it writes."""
    rows = population.people[population.insurers[0].pk]
    row = next(r for r in rows if r[COL["nir"]])
    stranger = next(r for r in population.people[population.insurers[1].pk] if r[COL["nir"]])
    template = {
        "invoice_date": "2026-11-20", "care_date": "2026-11-20", "amc_number": row[COL["amc_number"]],
        "adherent_number": row[COL["adherent_number"]], "nir": stranger[COL["nir"]],
        "birth_date": row[COL["birth_date"]], "birth_rank": None, "domain": "OPTI",
        "prescriber_rpps": "10001234565", "pec_number": "PEC-ABCD-EFGH",
        "lines": [{"code_system": "LPP", "code": "2290100", "lpp_class": "A", "side": None, "quantity": 1,
                   "unit_price_cents": 3000, "base_cents": 1500, "amo_paid_cents": 900, "amc_claimed_cents": 2100}],
        "total_price_cents": 3000, "total_amo_cents": 900, "total_amc_cents": 2100,
    }  # fmt: skip
    invoices = [{**template, "invoice_number": f"K-{n}"} for n in range(20000)]
    path = tmp_path / "big.jsonl"
    path.write_bytes(write_lot(invoices, header(cast, number="LOT-KILL")))
    before = state()
    if connection.vendor == "sqlite":
        database = Path(connection.settings_dict["NAME"])
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        baseline = wal_size(database)
    command = [sys.executable, "-m", "rempart.cli", "import-claims", str(path), "--organisation",
               cast.optician.professional.finess]  # fmt: skip
    env = {**child_env(), "REMPART_SURVEILLANCE_ENABLED": "0"}
    with (tmp_path / "child.err").open("wb") as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=settings.BASE_DIR,
                                 start_new_session=True)  # fmt: skip
        writing, started = False, time.monotonic()
        try:
            while time.monotonic() < started + 120 and child.poll() is None:
                if connection.vendor == "sqlite":
                    writing = wal_size(database) > baseline + (256 << 10)
                else:
                    writing = _ledger_writer_pid() is not None
                if writing:
                    time.sleep(0.3)  # well inside the lot
                    break
                time.sleep(0.01)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    details = (tmp_path / "child.err").read_text(errors="replace")[-2000:]
    assert child.returncode == -signal.SIGKILL, f"the lot ended before it could be killed:\n{details}"
    assert writing
    if connection.vendor == "postgresql":
        deadline = time.monotonic() + 20
        while _ledger_writer_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert state() == before
    call_command("accounts", "check")


def test_an_invoice_judged_before_is_listed_in_the_lot_and_the_json_results(client, cast, token, delivered):
    row, pec = delivered
    first = invoice_for(row, pec, number="F-1")
    assert client.post("/api/v1/claims", data=json.dumps(first), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200  # fmt: skip
    response = send(client, token, write_lot([first], header(cast)))
    assert response.json()["counts"] == {"replayed": 1}
    results = client.get("/api/v1/claims/lots/LOT-0001/results", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    (item,) = results["invoices"]
    assert (item["line"], item["invoice_number"], item["status"]) == (2, "F-1", "replayed")
    assert item["reasons"][0]["code"] == "already_received" and Claim.objects.count() == 1
    other = tokens.create_token(cast.other_shop, "LGO voisin", ["claims:write"], cast.outsider)[1]
    assert (
        client.get("/api/v1/claims/lots/LOT-0001/results", HTTP_AUTHORIZATION=f"Bearer {other}").status_code
        == 404
    )


def test_an_invoice_number_with_a_slash_is_refused(client, token, delivered):
    row, pec = delivered
    body = invoice_for(row, pec, number="F/2026/1")
    response = client.post("/api/v1/claims", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
    assert response.status_code == 400 and not Claim.objects.exists()
