"""*Paiements*: the organisation's owner and staff see its transfers and statements; anyone else gets a 404, also
with a guessed reference; French by default, English on request; no IBAN in clear, nothing of a patient."""

from __future__ import annotations

import datetime as dt
import io
from html import unescape

import pytest
from pypdf import PdfReader

from rempart.accounts.models import SecurityEvent
from rempart.claims.models import Claim
from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
from rempart.payments.models import Payment, PaymentItem, PaymentRun
from rempart.testing import login

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

LIST = "/comptoir/paiements/"
REFERENCE = "PAY-2026-12-03-0001"


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


def text(response) -> str:
    return unescape(response.content.decode()).replace("\u202f", "").replace("\u00a0", " ")


def person(client_class, cast, user):
    browser = client_class()
    login(browser, user, cast.secrets[user.email])
    return browser


@pytest.fixture
def staff(client_class, cast):
    return person(client_class, cast, cast.staff)


@pytest.fixture
def foreign_payment(cast) -> Payment:
    """The pharmacy's transfer, in the same run numbering: the optician must never reach it."""
    claim = make_claim(cast.other_shop, "PH-2026-0001", claimed=3_500)
    return make_payment(cast.other_shop, [(Kind.CLAIM, claim, 3_500)], reference="PAY-2026-12-03-0002")


# ---------------------------------------------------------------------------------------------- the list


def test_the_list_shows_the_organisation_s_transfers(cast, staff, statement_payment, foreign_payment):  # noqa: F811
    make_payment(  # a prepared run may still be cancelled: not shown yet
        cast.optician, [(Kind.CLAIM, make_claim(cast.optician, "F-PREP-1"), 10_000)],
        run=make_run(status=PaymentRun.Status.PREPARED), reference="PAY-PREPARED-1",
    )  # fmt: skip
    response = staff.get(LIST)
    page = text(response)
    assert response.status_code == 200
    assert "Paiements — Optique du Test" in page and REFERENCE in page and "217,00 €" in page
    assert "FR76 •••• 0189" in page and "03/12/2026" in page and ">Émis<" in page
    assert f'href="/comptoir/paiements/{REFERENCE}/releve.pdf"' in page
    assert "PAY-2026-12-03-0002" not in page and "35,00 €" not in page and "PAY-PREPARED-1" not in page
    assert IBAN not in page.replace(" ", "")


def test_the_owner_sees_the_same_and_the_nav_links_to_it(cast, client_class, statement_payment):  # noqa: F811
    owner = person(client_class, cast, cast.owner)
    assert REFERENCE in text(owner.get(LIST))
    assert 'href="/comptoir/paiements/"' in text(owner.get("/"))
    for user in (cast.insurer_member, cast.analyst, cast.admin):
        assert 'href="/comptoir/paiements/"' not in text(person(client_class, cast, user).get("/"))


def test_the_list_filters_by_execution_date_and_pages(cast, staff):
    runs = PaymentRun.objects.bulk_create(
        [
            PaymentRun(
                reference=f"RUN-PAGE-{n:03d}",
                cutoff=dt.date(2026, 1, 1) + dt.timedelta(days=n),
                execution_date=dt.date(2026, 1, 2) + dt.timedelta(days=n),
                status=PaymentRun.Status.APPROVED,
                prepared_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            )  # fmt: skip
            for n in range(55)
        ]
    )
    Payment.objects.bulk_create(
        [
            Payment(
                run=run,
                organisation=cast.optician,
                reference=f"PAY-PAGE-{n:03d}",
                amount_cents=100 + n,
                status=Payment.Status.SENT,
                iban_masked="FR76 •••• 0189",
            )  # fmt: skip
            for n, run in enumerate(runs)
        ]
    )
    first = text(staff.get(LIST))
    assert "PAY-PAGE-054" in first and "PAY-PAGE-005" in first and "PAY-PAGE-004" not in first
    assert "page 1 sur 2" in first
    second = text(staff.get(LIST, {"page": 2}))
    assert "PAY-PAGE-004" in second and "PAY-PAGE-000" in second and "PAY-PAGE-005" not in second
    window = text(staff.get(LIST, {"since": "12/01/2026", "until": "14/01/2026"}))  # runs 10, 11 and 12
    assert all(f"PAY-PAGE-{n:03d}" in window for n in (10, 11, 12))
    assert "PAY-PAGE-009" not in window and "PAY-PAGE-013" not in window
    filtered_next = text(staff.get(LIST, {"since": "02/01/2026", "page": "1"}))
    assert "?since=02%2F01%2F2026&page=2" in filtered_next


def test_a_bad_date_is_said_on_its_field(staff):
    response = staff.get(LIST, {"since": "31/02/2026"})
    assert response.status_code == 400 and "date au format JJ/MM/AAAA" in text(response)
    response = staff.get(LIST, {"since": "10/12/2026", "until": "01/12/2026"})
    assert response.status_code == 400 and "la date de fin précède la date de début" in text(response)


# ---------------------------------------------------------------------------------------------- a payment


def test_the_detail_lists_the_claims_it_settled_with_links(staff, statement_payment):  # noqa: F811
    page = text(staff.get(f"{LIST}{REFERENCE}/"))
    assert "Paiement PAY-2026-12-03-0001" in page and "217,00 €" in page and "FR76 •••• 0189" in page
    for number in ("F2026-0001", "F2026-0002", "F2026-0003", "F2026-0000", "F2026-0004"):
        assert f'href="/comptoir/factures/{number}/"' in page
    assert "Ramené au montant de la garantie" in page and "Droits non ouverts à la date des soins" in page
    assert "Total du virement" in page and "-20,00 €" in page and "Virement rejeté, repris" in page
    assert f'href="/comptoir/paiements/{REFERENCE}/releve.csv"' in page
    assert IBAN not in page.replace(" ", "")


def test_a_held_transfer_tells_the_shop_what_to_do(cast, staff):
    make_payment(cast.optician, [], amount=10_000, status=Payment.Status.HELD, iban="", held_reason="no_iban",
                 reference="PAY-HELD-1")  # fmt: skip
    page = text(staff.get(f"{LIST}PAY-HELD-1/"))
    assert "Retenu" in page and "aucun IBAN enregistré" in page and "100,00 € vous sont dus" in page
    assert "Écart" not in page


def test_the_statement_downloads_as_pdf_and_csv(staff, statement_payment):  # noqa: F811
    pdf = staff.get(f"{LIST}{REFERENCE}/releve.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == f'attachment; filename="releve-{REFERENCE}.pdf"'
    assert "no-store" in pdf["Cache-Control"]
    assert "Relevé de paiement" in pdf_text(pdf.content) and PdfReader(io.BytesIO(pdf.content)).pages
    csv = staff.get(f"{LIST}{REFERENCE}/releve.csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    rows = csv_rows(csv.content)
    assert rows[-1][4] == "Total du virement" and rows[-1][9] == "217,00"
    # Not a security event: the statement holds the organisation's own invoice numbers and amounts.
    assert (
        not SecurityEvent.objects.filter(organisation=statement_payment.organisation)
        .exclude(tag__startswith="login")
        .exclude(tag__startswith="mfa")
        .exists()
    )


# ---------------------------------------------------------------------------------------------- isolation


def test_another_organisation_s_payment_is_a_404_even_by_its_reference(
    cast,
    client_class,
    staff,
    statement_payment,  # noqa: F811
    foreign_payment,
):
    foreign = foreign_payment.reference
    for suffix in ("", "releve.pdf", "releve.csv"):
        assert staff.get(f"{LIST}{foreign}/{suffix}").status_code == 404
        assert staff.get(f"{LIST}PAY-DOES-NOT-EXIST/{suffix}").status_code == 404
    outsider = person(client_class, cast, cast.outsider)
    for suffix in ("", "releve.pdf", "releve.csv"):
        assert outsider.get(f"{LIST}{REFERENCE}/{suffix}").status_code == 404
        assert outsider.get(f"{LIST}{foreign}/{suffix}").status_code == 200
    assert REFERENCE not in text(outsider.get(LIST))


def test_no_one_outside_a_professional_organisation_sees_payments(cast, client_class, statement_payment):  # noqa: F811
    for user in (cast.insurer_member, cast.analyst, cast.admin):
        browser = person(client_class, cast, user)
        assert browser.get(LIST).status_code == 404
        assert browser.get(f"{LIST}{REFERENCE}/releve.pdf").status_code == 404
    anonymous = client_class()
    response = anonymous.get(f"{LIST}{REFERENCE}/releve.pdf")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


# ---------------------------------------------------------------------------------------------- languages


def test_the_pages_and_files_are_in_english_on_request(staff, statement_payment):  # noqa: F811
    staff.post("/i18n/setlang/", {"language": "en", "next": "/"})
    listing = text(staff.get(LIST))
    assert "Payments — Optique du Test" in listing and ">Sent<" in listing and "Paiements —" not in listing
    detail = text(staff.get(f"{LIST}{REFERENCE}/"))
    assert "Transfer total" in detail and "Reduced to the guarantee's amount" in detail
    assert "Partially accepted" in detail and "Ramené au montant" not in detail
    pdf = flat(pdf_text(staff.get(f"{LIST}{REFERENCE}/releve.pdf").content))
    assert "Remittance statement" in pdf and "Rights not open on the care date" in pdf
    rows = csv_rows(staff.get(f"{LIST}{REFERENCE}/releve.csv").content)
    assert rows[0][0] == "Payment reference" and rows[-1][9] == "217.00"


# ---------------------------------------------------------------------------------------------- no identity


def test_a_claim_made_through_the_service_leaves_nothing_of_the_patient_on_the_statement(
    cast,
    client_class,
    population,  # noqa: F811
):
    from rempart.claims.tests.test_portal import pharmacy_claim, secrets_of
    from rempart.incidents.tests.conftest import COL

    claim = pharmacy_claim(cast, population, "PH-SERVICE-1", claimed=420)
    assert claim.status == Claim.Status.ACCEPTED
    make_payment(cast.other_shop, [(Kind.CLAIM, claim, claim.accepted_cents)], reference="PAY-PHARMA-1")
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    owner = person(client_class, cast, cast.outsider)
    contents = [
        text(owner.get(f"{LIST}PAY-PHARMA-1/")),
        pdf_text(owner.get(f"{LIST}PAY-PHARMA-1/releve.pdf").content),
        owner.get(f"{LIST}PAY-PHARMA-1/releve.csv").content.decode("utf-8-sig"),
    ]
    assert all("PH-SERVICE-1" in content for content in contents)
    for content in contents:
        assert not any(secret in content for secret in secrets_of(row)), secrets_of(row)
        assert row[COL["adherent_number"]] not in content


def test_items_of_a_payment_belong_to_it_only(cast, statement_payment, foreign_payment):  # noqa: F811
    """The detail reads the payment's own items (a sanity check of the fixture the other tests rely on)."""
    assert set(statement_payment.items.values_list("kind", flat=True)) == set(PaymentItem.Kind.values)
    assert foreign_payment.items.count() == 1
