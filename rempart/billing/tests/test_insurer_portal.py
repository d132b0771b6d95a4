"""Insurer members' billing pages: their statements only, the documents, the ledger row of each download."""

# ruff: noqa: F811 - the fixtures imported from test_detail are redefined as test parameters, as pytest wants

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pytest

from rempart.accounts import tokens
from rempart.accounts.models import Organisation, Role, SecurityEvent
from rempart.billing import detail
from rempart.billing.models import Receipt, Statement
from rempart.billing.statements import prepare_statements
from rempart.billing.tests.conftest import OCT_1, OCT_31, accept, paid
from rempart.billing.tests.tamper_support import forged
from rempart.billing.tests.test_detail import (  # noqa: F401 - fixtures
    _billing_dir,
    billed,
    make_statement,
    paid_claim,
    people_of,
    population,
)
from rempart.ledger.models import Disclosure
from rempart.testing import login, make_user


def _content(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def member(client, cast):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    return cast.insurer_member


@pytest.fixture
def rival(cast, population):  # noqa: F811
    """The second insurer, with its own member and a statement of its own."""
    insurer = population.insurers[1]
    organisation = Organisation.objects.create(kind="insurer", name=insurer.name, insurer=insurer)
    user = make_user("data@rival.test", organisation, Role.INSURER_MEMBER)
    (person,) = people_of(insurer, 1)
    statement = make_statement(insurer, [paid_claim(cast.optician, insurer, person, [(2_000, "accepted")])])
    return user, statement


def test_the_member_sees_its_statements_balance_and_receipts(client, member, billed):
    statement = billed[0]
    Receipt.objects.create(
        insurer=statement.insurer, statement=statement, amount_cents=5_000, received_on=statement.due_date,
        source=Receipt.Source.MANUAL, reference="VIR-TEST-1",
    )  # fmt: skip
    page = client.get("/assureur/facturation/").content.decode()
    assert statement.number in page and "Solde et ancienneté" in page
    page = client.get(f"/assureur/facturation/releves/{statement.number}/").content.decode()
    assert "195,00" in page and "VIR-TEST-1" in page and "detail.csv" in page
    assert "VIR-TEST-1" in client.get("/assureur/facturation/encaissements/").content.decode()
    assert "/assureur/facturation/" in client.get("/").content.decode()  # the nav link


def test_the_detail_download_writes_the_file_records_and_serves_it(client, member, billed, cast):
    statement, _claims, people = billed
    response = client.get(f"/assureur/facturation/releves/{statement.number}/detail.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = _content(response).decode()
    statement.refresh_from_db()
    assert body.count("\n") == statement.detail_rows + 1 == 5
    assert response["X-Content-SHA256"] == statement.detail_sha256
    produced = Disclosure.objects.filter(purpose="billing", beneficiary_id__isnull=False)
    assert sorted(produced.values_list("beneficiary_id", flat=True)) == sorted(p.pk for p in people)
    downloads = Disclosure.objects.filter(purpose="billing", beneficiary_id__isnull=True)
    assert downloads.count() == 1
    row = downloads.get()
    assert row.channel == "portal" and row.user_id == member.pk and row.organisation_id == cast.insurer.pk
    assert (
        f"billing_detail:{statement.number}" in row.fields
        and f"sha256:{statement.detail_sha256}" in row.fields
    )
    assert SecurityEvent.objects.filter(tag="billing.detail_downloaded", user=member).count() == 1
    again = client.get(f"/assureur/facturation/releves/{statement.number}/detail.csv")
    assert _content(again).decode() == body
    assert downloads.count() == 2 and produced.count() == 2  # nothing re-read: the file was written once


def test_an_altered_file_is_refused_and_recorded(client, member, billed):
    statement = billed[0]
    written = detail.write_detail(statement)
    os.chmod(written.path, 0o640)
    with open(written.path, "a", encoding="utf-8") as handle:
        handle.write("forged;row\n")
    response = client.get(f"/assureur/facturation/releves/{statement.number}/detail.csv")
    assert response.status_code == 409 and "empreinte" in response.content.decode()
    assert SecurityEvent.objects.filter(tag="billing.detail_tampered").count() == 1
    assert not Disclosure.objects.filter(purpose="billing", beneficiary_id__isnull=True).exists()


def test_another_insurers_statement_is_the_same_404_as_an_unknown_one(client, member, rival):
    _user, theirs = rival
    assert theirs.number not in client.get("/assureur/facturation/").content.decode()
    for suffix in ("", "releve.pdf", "detail.csv"):
        assert client.get(f"/assureur/facturation/releves/{theirs.number}/{suffix}").status_code == 404
        assert client.get(f"/assureur/facturation/releves/REL-NOPE/{suffix}").status_code == 404
    assert not Disclosure.objects.filter(purpose="billing").exists()
    assert not Statement.objects.get(pk=theirs.pk).detail_sha256


@pytest.mark.parametrize("who", ["owner", "analyst", "outsider"])
def test_only_insurer_members_reach_the_pages(client, cast, billed, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    number = billed[0].number
    for url in ("", "encaissements/", f"releves/{number}/", f"releves/{number}/detail.csv"):
        assert client.get(f"/assureur/facturation/{url}").status_code == 404, url


def test_the_pages_need_a_login(client, billed):
    response = client.get("/assureur/facturation/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_the_pdf_is_served_only_if_it_matches_its_digest(client, member, billed):
    import hashlib

    statement = billed[0]
    forged(statement, pdf_content=b"%PDF-1.4 test", pdf_sha256=hashlib.sha256(b"%PDF-1.4 test").hexdigest())
    response = client.get(f"/assureur/facturation/releves/{statement.number}/releve.pdf")
    assert response.status_code == 200 and response.content == b"%PDF-1.4 test"
    forged(statement, pdf_content=b"%PDF-1.4 forged")
    assert client.get(f"/assureur/facturation/releves/{statement.number}/releve.pdf").status_code == 409


def test_the_pages_in_english(client, member, billed):
    page = client.get("/assureur/facturation/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Statements" in page


# --- the PDF in the reader's language: portal and API -------------------------------------------------------


@pytest.fixture
def issued(cast, amc, default_fees):
    """A statement issued the normal way (prepare_statements): PDFs in French and English, digests kept."""
    claim = accept(amc, cast.optician, 10_000, dt.date(2026, 10, 3))
    paid([claim], dt.date(2026, 10, 10))
    (statement,) = prepare_statements(OCT_1, OCT_31, user=None)
    return statement


def test_the_portal_serves_the_pdf_in_the_members_language(client, member, issued):
    url = f"/assureur/facturation/releves/{issued.number}/releve.pdf"
    french, english = client.get(url), client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert french.content == bytes(issued.pdf_content) and french["X-Content-SHA256"] == issued.pdf_sha256
    assert english.content == bytes(issued.pdf_en_content) and english["Content-Language"] == "en"
    assert client.get(f"{url}?langue=fr", HTTP_ACCEPT_LANGUAGE="en").content == french.content
    page = client.get(f"/assureur/facturation/releves/{issued.number}/").content.decode()
    assert issued.pdf_sha256 in page and issued.pdf_en_sha256 in page and f"{url}?langue=en" in page
    assert "Optique" in page and ">OPTI<" not in page
    forged(issued, pdf_en_content=b"%PDF-1.4 forged")
    assert client.get(url, HTTP_ACCEPT_LANGUAGE="en").status_code == 409
    assert client.get(url).status_code == 200  # the French one is intact


def test_the_api_serves_the_pdf_by_accept_language(client, cast, issued):
    owner = make_user("dsi@insurer.test", cast.insurer, Role.OWNER)
    _token, raw = tokens.create_token(cast.insurer, "Comptabilité", ["billing:read"], owner)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    listed = client.get("/api/v1/insurer/statements", **auth).json()["results"][0]
    assert listed["pdf_sha256"] == issued.pdf_sha256 and listed["pdf_en_sha256"] == issued.pdf_en_sha256
    assert listed["pdf_url"] == f"/api/v1/insurer/statements/{issued.number}/pdf"
    french = client.get(listed["pdf_url"], **auth)
    english = client.get(listed["pdf_url"], HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8", **auth)
    assert french.status_code == english.status_code == 200
    assert hashlib.sha256(french.content).hexdigest() == french["X-Content-SHA256"] == issued.pdf_sha256
    assert hashlib.sha256(english.content).hexdigest() == english["X-Content-SHA256"] == issued.pdf_en_sha256
    assert english["Content-Language"] == "en" and french["Content-Language"] == "fr"
    downloads = SecurityEvent.objects.filter(
        tag="billing.statement_downloaded", details__statement=issued.number
    )
    assert downloads.count() == 2
    unknown = client.get("/api/v1/insurer/statements/REL-000000000-20261031-1/pdf", **auth)
    assert unknown.status_code == 404 and unknown.json()["detail"] == "relevé inconnu pour votre organisme"
    forged(issued, pdf_content=b"%PDF-1.4 forged")
    refused = client.get(listed["pdf_url"], **auth)
    assert refused.status_code == 409 and "empreinte" in refused.json()["detail"]
    assert SecurityEvent.objects.filter(tag="billing.statement_tampered").count() == 1


def test_another_insurers_token_gets_the_same_404_for_the_pdf(client, cast, issued, other_amc):
    organisation = Organisation.objects.create(kind="insurer", name=other_amc.name, insurer=other_amc)
    owner = make_user("dsi@deux.test", organisation, Role.OWNER)
    _token, raw = tokens.create_token(organisation, "Compta", ["billing:read"], owner)
    response = client.get(
        f"/api/v1/insurer/statements/{issued.number}/pdf", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )
    assert response.status_code == 404 and response.json()["detail"] == "relevé inconnu pour votre organisme"
    assert not SecurityEvent.objects.filter(tag="billing.statement_downloaded").exists()
