"""The treasury's bank returns page: who may reach it, the fresh second factor, the result and the refusal."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rempart.accounts.models import SecurityEvent
from rempart.accounts.tests.helpers import age_second_factor
from rempart.payments.models import BankFileImport, Payment
from rempart.payments.tests.bank_files import rejecting
from rempart.payments.tests.returns_support import (  # noqa: F401 - fixtures
    RUN_REF,
    SHOP_IBAN,
    sent_run_fixture,
    state,
    treasurer_fixture,
)
from rempart.testing import login

HOME = "/operateur/paiements/retours/"
UPLOAD = "/operateur/paiements/retours/importer/"
SHOP = f"{RUN_REF}-OPT"


def upload(client, content: bytes, name: str = "sts.xml"):
    return client.post(UPLOAD, {"file": SimpleUploadedFile(name, content, content_type="text/xml")})


@pytest.fixture
def treasury(client, cast, treasurer):
    login(client, treasurer, cast.secrets[treasurer.email])
    return client


def test_the_treasury_imports_a_rejection_and_reads_what_it_did(treasury, sent_run, treasurer):
    page = treasury.get(HOME)
    assert page.status_code == 200 and b'id="upload"' in page.content
    response = upload(treasury, rejecting(sent_run.run, {SHOP: "AC04"}))
    bank_file = BankFileImport.objects.get()
    assert response.status_code == 302 and response.url == f"{HOME}{bank_file.pk}/"
    assert bank_file.imported_by == treasurer
    assert Payment.objects.get(reference=SHOP).status == Payment.Status.RETURNED
    detail = treasury.get(response.url).content.decode()
    assert SHOP in detail and "123,45" in detail and "FR76 •••• 7830" in detail
    assert "Compte clôturé (AC04)" in detail and "Rejeté par la banque" in detail
    assert SHOP_IBAN not in detail and SHOP_IBAN[4:] not in detail
    listing = treasury.get(HOME).content.decode()
    assert RUN_REF in listing and "STS-0001" in listing


def test_a_refused_file_is_explained_changes_nothing_and_is_recorded(treasury, sent_run):
    content = rejecting(sent_run.run, {"PR-20261130-001-XYZ": "AC04"})
    before = state()
    response = upload(treasury, content)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Fichier refusé, rien n" in body and "PR-20261130-001-XYZ" in body
    after = state()
    assert {k: v for k, v in after.items() if k != "events"} == {
        k: v for k, v in before.items() if k != "events"
    }
    event = SecurityEvent.objects.get(tag="payments.bank_file_refused")
    assert event.details["size"] == len(content) and "XYZ" in event.details["reason"]


def test_an_xml_bomb_through_the_console_is_refused(treasury, sent_run):
    from rempart.payments.tests.test_bank_xml import FILES

    response = upload(treasury, (FILES / "attack_billion_laughs.xml").read_bytes())
    assert response.status_code == 400 and "DTD" in response.content.decode()
    assert not BankFileImport.objects.exists()


def test_the_same_file_twice_says_when_it_was_imported(treasury, sent_run):
    content = rejecting(sent_run.run, {SHOP: "AC04"})
    upload(treasury, content)
    response = upload(treasury, content)
    assert response.status_code == 400 and "Fichier déjà importé le" in response.content.decode()


def test_an_oversized_or_missing_file_is_refused_on_the_form(treasury, sent_run, settings):
    assert upload_missing(treasury).status_code == 400
    content = rejecting(sent_run.run, {SHOP: "AC04"})
    settings.REMPART_BANK_FILE_MAX_BYTES = 100
    response = upload(treasury, content)
    assert response.status_code == 400 and "trop volumineux" in response.content.decode()
    assert not BankFileImport.objects.exists()


def upload_missing(client):
    return client.post(UPLOAD, {})


def test_the_page_and_the_import_need_a_fresh_second_factor(treasury, sent_run):
    age_second_factor(treasury, 400)
    assert "reauthenticate" in treasury.get(HOME).url
    response = upload(treasury, rejecting(sent_run.run, {SHOP: "AC04"}))
    assert response.status_code == 302 and "reauthenticate" in response.url
    assert not BankFileImport.objects.exists()
    assert Payment.objects.get(reference=SHOP).status == Payment.Status.SENT


@pytest.mark.parametrize("who", ["owner", "staff", "outsider", "insurer_member", "analyst"])
def test_anyone_but_treasury_and_admins_gets_404(client, cast, sent_run, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    assert client.get(HOME).status_code == 404
    assert upload(client, rejecting(sent_run.run, {SHOP: "AC04"})).status_code == 404
    assert not BankFileImport.objects.exists()


def test_an_operator_admin_may_import(client, cast, sent_run):
    login(client, cast.admin, cast.secrets[cast.admin.email])
    assert upload(client, rejecting(sent_run.run, {SHOP: "AC04"})).status_code == 302


def test_logged_out_visitors_are_sent_to_the_login_page(client, sent_run):
    assert client.get(HOME).url.startswith("/accounts/login/")
    assert client.post(UPLOAD).url.startswith("/accounts/login/")


def test_the_refusal_is_in_english_for_an_english_session(treasury, sent_run):
    treasury.post("/i18n/setlang/", {"language": "en", "next": HOME})
    content = rejecting(sent_run.run, {"PR-20261130-001-XYZ": "AC04"})
    body = upload(treasury, content).content.decode()
    assert "File refused, nothing was changed" in body
    assert "no Rempart transfer has the reference" in body
    upload(treasury, rejecting(sent_run.run, {SHOP: "AC04"}))
    detail = treasury.get(f"{HOME}{BankFileImport.objects.get().pk}/").content.decode()
    assert "Closed account (AC04)" in detail


def test_the_nav_links_to_returns_for_the_treasury_only(treasury, client_class, cast):
    assert HOME.encode() in treasury.get("/").content
    other = client_class()
    login(other, cast.analyst, cast.secrets[cast.analyst.email])
    assert HOME.encode() not in other.get("/").content


def test_what_the_file_says_is_shown_escaped(treasury, sent_run):
    body = upload(treasury, rejecting(sent_run.run, {"<script>alert(1)</script>": "AC04"})).content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
