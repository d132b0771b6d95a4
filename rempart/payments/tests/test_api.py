"""GET /api/v1/payments (scope payments:read): the organisation's transfers as JSON for reconciliation, one
transfer's lines, its statement files; JSON errors for every refusal, and another organisation's payment is a 404."""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.accounts import tokens
from rempart.accounts.tokens import TokenError
from rempart.payments.models import Payment, PaymentRun

from .test_statements import (
    IBAN,
    Kind,
    csv_rows,
    flat,
    make_claim,
    make_payment,
    make_run,
    pdf_text,
    statement_payment,  # noqa: F401 - fixture
)

REFERENCE = "PAY-2026-12-03-0001"


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


@pytest.fixture
def raw(cast) -> str:
    return tokens.create_token(cast.optician, "LGO compta", ["payments:read"], cast.owner)[1]


def get(client, path: str, raw: str | None, **extra):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    return client.get(f"/api/v1{path}", **headers, **extra)


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"]
    return body


# ---------------------------------------------------------------------------------------------- the list


def test_the_list_gives_each_transfer_to_reconcile(client, cast, raw, statement_payment):  # noqa: F811
    make_payment(
        cast.optician, [(Kind.CLAIM, make_claim(cast.optician, "F-PREP-1"), 10_000)],
        run=make_run(status=PaymentRun.Status.PREPARED), reference="PAY-PREPARED-1",
    )  # fmt: skip
    response = get(client, "/payments", raw)
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["page"], body["page_size"], body["next"], body["previous"]) == (
        2,
        1,
        50,
        None,
        None,
    )
    latest = body["results"][0]
    assert latest == {
        "reference": REFERENCE,
        "run_reference": statement_payment.run.reference,
        "execution_date": "2026-12-03",
        "created_at": latest["created_at"],
        "amount_cents": 21_700,
        "currency": "EUR",
        "status": "sent",
        "iban_masked": "FR76 •••• 0189",
        "bic": "AGRIFRPPXXX",
        "held_reason": None,
        "held_reason_label": None,
        "return_reason": None,
        "return_reason_label": None,
        "returned_at": None,
        "settled_at": None,
        "line_count": 6,
        "statement_pdf_url": f"/api/v1/payments/{REFERENCE}/statement.pdf",
        "statement_csv_url": f"/api/v1/payments/{REFERENCE}/statement.csv",
    }
    returned = body["results"][1]  # the earlier transfer the bank rejected, a week before
    assert (returned["status"], returned["return_reason"], returned["execution_date"]) == (
        "returned", "AC04", "2026-11-26"
    )  # fmt: skip
    assert returned["return_reason_label"] == "Compte clôturé (AC04)"
    assert "PAY-PREPARED-1" not in response.content.decode()


def test_pages_and_date_filters(client, cast, raw):
    for n in range(5):
        make_payment(
            cast.optician, [], amount=100 + n, reference=f"PAY-P-{n}",
            run=make_run(execution_date=dt.date(2026, 10, 1) + dt.timedelta(days=n)),
        )  # fmt: skip
    first = get(client, "/payments?page_size=2", raw).json()
    assert [p["reference"] for p in first["results"]] == ["PAY-P-4", "PAY-P-3"] and first["count"] == 5
    assert first["next"] == "/api/v1/payments?page_size=2&page=2" and first["previous"] is None
    last = get(client, "/payments?page_size=2&page=3", raw).json()
    assert [p["reference"] for p in last["results"]] == ["PAY-P-0"] and last["next"] is None
    assert last["previous"] == "/api/v1/payments?page_size=2&page=2"
    beyond = get(client, "/payments?page_size=2&page=9", raw).json()
    assert beyond["results"] == [] and beyond["count"] == 5 and beyond["next"] is None
    window = get(client, "/payments?since=2026-10-02&until=2026-10-04&page_size=2", raw).json()
    assert [p["reference"] for p in window["results"]] == ["PAY-P-3", "PAY-P-2"] and window["count"] == 3
    assert window["next"] == "/api/v1/payments?since=2026-10-02&until=2026-10-04&page_size=2&page=2"
    following = get(client, window["next"].removeprefix("/api/v1"), raw).json()
    assert [p["reference"] for p in following["results"]] == ["PAY-P-1"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=2026-13-01", "since"),
        ("until=01/12/2026", "until"),
        ("since=2026-12-10&until=2026-12-01", "until"),
        ("page=0", "page"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
    ],
)
def test_bad_filters_are_a_json_400_naming_the_field(client, raw, query, field):
    body = assert_json_error(get(client, f"/payments?{query}", raw), 400)
    assert body["field"] == field


def test_a_page_that_is_not_a_number_is_a_json_400(client, raw):
    body = assert_json_error(get(client, "/payments?page=abc", raw), 400)
    assert "page" in body["detail"]


# ---------------------------------------------------------------------------------------------- one payment


def test_a_payment_s_lines_add_up_to_its_amount(client, raw, statement_payment):  # noqa: F811
    body = get(client, f"/payments/{REFERENCE}", raw).json()
    assert (
        body["amount_cents"] == body["lines_total_cents"] == sum(line["paid_cents"] for line in body["lines"])
    )
    assert body["line_count"] == len(body["lines"]) == 6
    reduced = next(line for line in body["lines"] if line["invoice_number"] == "F2026-0002")
    assert reduced == {
        "kind": "claim", "invoice_number": "F2026-0002", "care_date": "2026-11-20", "invoice_date": "2026-11-21",
        "claimed_cents": 12_000, "accepted_cents": 8_000, "paid_cents": 8_000, "claim_status": "partially_accepted",
        "reasons": [{"code": "reduced_to_guarantee", "label": "Ramené au montant de la garantie"}],
        "returned_payment": None,
    }  # fmt: skip
    credit = next(line for line in body["lines"] if line["kind"] == "credit_note")
    assert (credit["invoice_number"], credit["paid_cents"], credit["claimed_cents"]) == (
        "F2026-0000",
        -2_000,
        None,
    )
    taken_back = next(line for line in body["lines"] if line["kind"] == "return")
    assert taken_back["invoice_number"] is None and taken_back["returned_payment"].startswith("PAY-TEST-")
    rejected = next(line for line in body["lines"] if line["kind"] == "rejected")
    assert rejected["paid_cents"] == 0 and rejected["reasons"][0]["code"] == "rights_closed"


def test_labels_follow_accept_language(client, raw, statement_payment):  # noqa: F811
    body = get(client, f"/payments/{REFERENCE}", raw, HTTP_ACCEPT_LANGUAGE="en").json()
    reduced = next(line for line in body["lines"] if line["invoice_number"] == "F2026-0002")
    assert reduced["reasons"][0]["label"] == "Reduced to the guarantee's amount"
    pdf = get(client, f"/payments/{REFERENCE}/statement.pdf", raw, HTTP_ACCEPT_LANGUAGE="en")
    assert "Remittance statement" in flat(pdf_text(pdf.content))


def test_the_statement_files(client, raw, statement_payment):  # noqa: F811
    pdf = get(client, f"/payments/{REFERENCE}/statement.pdf", raw)
    assert (
        pdf.status_code == 200
        and pdf["Content-Type"] == "application/pdf"
        and pdf.content.startswith(b"%PDF-")
    )
    assert pdf["Content-Disposition"] == f'attachment; filename="releve-{REFERENCE}.pdf"'
    assert "Relevé de paiement" in pdf_text(pdf.content)
    csv = get(client, f"/payments/{REFERENCE}/statement.csv", raw)
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert csv_rows(csv.content)[-1][9] == "217,00" and "no-store" in csv["Cache-Control"]


def test_no_iban_in_clear_in_any_answer(client, raw, statement_payment):  # noqa: F811
    for path in ("/payments", f"/payments/{REFERENCE}", f"/payments/{REFERENCE}/statement.csv"):
        content = get(client, path, raw).content.decode("utf-8-sig")
        assert IBAN not in content.replace(" ", "") and IBAN[4:] not in content.replace(" ", "")
    pdf = pdf_text(get(client, f"/payments/{REFERENCE}/statement.pdf", raw).content)
    assert IBAN[4:] not in pdf.replace(" ", "").replace("\n", "")


# ---------------------------------------------------------------------------------------------- refusals


def test_another_organisation_s_payment_is_a_404(client, cast, raw, statement_payment):  # noqa: F811
    foreign = make_payment(
        cast.other_shop,
        [(Kind.CLAIM, make_claim(cast.other_shop, "PH-1", claimed=900), 900)],
        reference="PAY-PH-1",
    )
    for path in ("", "/statement.pdf", "/statement.csv"):
        stolen = assert_json_error(get(client, f"/payments/{foreign.reference}{path}", raw), 404)
        unknown = assert_json_error(get(client, f"/payments/PAY-NOPE{path}", raw), 404)
        assert stolen == unknown  # a guessed reference learns nothing
    assert "PAY-PH-1" not in get(client, "/payments", raw).content.decode()
    theirs = tokens.create_token(cast.other_shop, "LGO pharmacie", ["payments:read"], cast.outsider)[1]
    assert get(client, "/payments/PAY-PH-1", theirs).status_code == 200
    assert_json_error(get(client, f"/payments/{REFERENCE}", theirs), 404)


def test_any_other_file_of_a_payment_is_a_json_404(client, raw, statement_payment):  # noqa: F811
    for name in ("statement.txt", "statement.xml", "statement.pdf.exe"):
        assert_json_error(get(client, f"/payments/{REFERENCE}/{name}", raw), 404)


def test_no_token_a_bad_token_or_a_revoked_one_is_a_json_401(client, cast, statement_payment):  # noqa: F811
    assert_json_error(get(client, "/payments", None), 401)
    assert_json_error(get(client, "/payments", "rmp_not-a-token"), 401)
    token, raw = tokens.create_token(cast.optician, "ancien", ["payments:read"], cast.owner)
    tokens.revoke_token(token)
    assert_json_error(get(client, f"/payments/{REFERENCE}/statement.pdf", raw), 401)


def test_a_token_without_the_scope_is_a_json_403(client, cast, statement_payment):  # noqa: F811
    raw = tokens.create_token(cast.optician, "LGO factures", ["claims:write"], cast.owner)[1]
    for path in ("/payments", f"/payments/{REFERENCE}", f"/payments/{REFERENCE}/statement.csv"):
        body = assert_json_error(get(client, path, raw), 403)
        assert "payments:read" in body["detail"]


def test_only_professional_organisations_get_the_scope(cast):
    with pytest.raises(TokenError):
        tokens.create_token(cast.insurer, "SI assureur", ["payments:read"], cast.insurer_member)


def test_the_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {
        "/api/v1/payments",
        "/api/v1/payments/{reference}",
        "/api/v1/payments/{reference}/statement.pdf",
    } <= set(paths)


def test_a_held_transfer_says_why(client, cast, raw):
    make_payment(cast.optician, [], amount=500, status=Payment.Status.HELD, iban="", held_reason="iban_on_hold",
                 reference="PAY-HELD-1")  # fmt: skip
    body = get(client, "/payments/PAY-HELD-1", raw).json()
    assert (body["status"], body["held_reason"], body["iban_masked"]) == ("held", "iban_on_hold", "")
    assert body["lines"] == [] and body["lines_total_cents"] == 0 and body["amount_cents"] == 500
    assert body["held_reason_label"].startswith("le nouvel IBAN est en période d'attente")
