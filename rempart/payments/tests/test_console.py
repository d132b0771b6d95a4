"""The operator's payment console over HTTP: who sees it, preparing, four eyes with step-up, the download, cancelling,
and never an IBAN in clear on a page."""

from __future__ import annotations

from html import unescape

import pyotp
import pytest
from django.core.management import call_command

from rempart.accounts.models import Role, SecurityEvent
from rempart.accounts.tests.helpers import age_second_factor
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.payments import console_views
from rempart.payments.models import FileDownload, PaymentRun
from rempart.testing import login, make_user

from .conftest import IBANS, accept_claim, yesterday

CONSOLE = "/operateur/paiements/"


def text(response) -> str:
    return unescape(response.content.decode())


def person(client_class, cast, user):
    browser = client_class()
    login(browser, user, cast.secrets[user.email])
    return browser


@pytest.fixture
def prepared(cast, owed, preparer) -> PaymentRun:
    from rempart.payments import runs

    return runs.prepare_run(yesterday(), user=preparer)


def test_only_operator_money_staff_reach_the_console(cast, client_class, preparer, prepared):
    secret = pyotp.random_base32()
    support = make_user("support@operator.test", cast.operator, Role.SUPPORT, totp_secret=secret)
    cast.secrets[support.email] = secret
    pages = [
        CONSOLE,
        f"{CONSOLE}preparer/",
        f"{CONSOLE}{prepared.reference}/",
        f"{CONSOLE}{prepared.reference}/approuver/",
    ]
    for user in (preparer, cast.admin, support):
        browser = person(client_class, cast, user)
        assert all(browser.get(url).status_code == 200 for url in pages), user.email
        assert f'href="{CONSOLE}"' in text(browser.get("/"))
    for user in (cast.analyst, cast.owner, cast.staff, cast.insurer_member):
        browser = person(client_class, cast, user)
        for url in [*pages, f"{CONSOLE}{prepared.reference}/fichier/"]:
            assert browser.get(url).status_code == 404, (user.email, url)
        assert f'href="{CONSOLE}"' not in text(browser.get("/"))
    assert client_class().get(CONSOLE).status_code == 302  # anonymous: to the login page


def test_preparing_from_the_console_shows_the_run_with_masked_ibans_and_held_organisations(
    cast, client_class, payees, preparer
):
    optician, pharmacy = payees
    pharmacy.professional.iban_cipher = None
    pharmacy.professional.save(update_fields=["iban_cipher"])
    accept_claim(cast, optician, 12_345)
    accept_claim(cast, pharmacy, 700)
    browser = person(client_class, cast, preparer)
    form = browser.get(f"{CONSOLE}preparer/")
    assert 'name="cutoff"' in text(form) and 'name="execution_date"' in text(form)
    response = browser.post(f"{CONSOLE}preparer/", {"cutoff": yesterday().strftime("%d/%m/%Y"),
                                                     "execution_date": _next_weekday()})  # fmt: skip
    job = Job.objects.get(kind="payments.prepare_run")
    assert response.status_code == 302 and response.url == f"/taches/{job.pk}/"  # a worker prepares it
    assert not PaymentRun.objects.exists()
    waiting = browser.get(response.url)
    assert waiting.status_code == 200 and "Préparation d'une campagne de paiement" in text(waiting)
    assert SecurityEvent.objects.get(tag="payments.run_requested").details["job"] == str(job.pk)
    assert run_waiting() == [(str(job.pk), "succeeded")]
    run = PaymentRun.objects.get()
    response = browser.get(f"/taches/{job.pk}/")  # done: the job's page takes the treasurer to the run
    assert response.status_code == 302 and response.url == f"{CONSOLE}{run.reference}/"
    page = text(browser.get(response.url))
    assert run.prepared_by == preparer and "123,45" in page and "FR76 •••• 0189" in page
    assert IBANS["optician"][0] not in page and "30006000011234567890" not in page
    assert "Aucun IBAN enregistré" in page and "7,00" in page  # the pharmacy waits, and says why
    assert "quatre yeux" in page and 'id="approve-link"' not in page  # the preparer is told why not
    assert text(browser.get(CONSOLE)).count(run.reference) >= 1


def _next_weekday() -> str:
    from django.utils import timezone

    from rempart.payments.runs import next_business_day

    return next_business_day(timezone.localdate()).strftime("%d/%m/%Y")


@pytest.mark.parametrize(
    ("posted", "message"),
    [
        ({"cutoff": "31/02/2026", "execution_date": "01/03/2026"}, "JJ/MM/AAAA"),
        ({"cutoff": "", "execution_date": ""}, "Indiquez la date d'arrêté"),
        ({"cutoff": "01/01/2099", "execution_date": "05/01/2099"}, "futur"),
    ],
)
def test_bad_dates_are_explained_on_the_form_and_prepare_nothing(
    cast, client_class, owed, preparer, posted, message
):
    response = person(client_class, cast, preparer).post(f"{CONSOLE}preparer/", posted)
    assert response.status_code == 400 and message in text(response)
    assert not PaymentRun.objects.exists()


def test_the_preparer_cannot_approve_even_by_posting(cast, client_class, preparer, prepared):
    browser = person(client_class, cast, preparer)
    response = browser.post(f"{CONSOLE}{prepared.reference}/approuver/")
    assert response.status_code == 403 and "quatre yeux" in text(response)
    assert PaymentRun.objects.get().status == "prepared"
    assert SecurityEvent.objects.get(tag="payments.approval_refused").details["reason"] == "preparer"


def test_approval_needs_a_second_treasury_member_with_a_fresh_second_factor(
    cast, client_class, approver, prepared
):
    url = f"{CONSOLE}{prepared.reference}/approuver/"
    browser = person(client_class, cast, approver)
    assert 'id="approve-link"' in text(browser.get(f"{CONSOLE}{prepared.reference}/"))
    age_second_factor(browser, 400)
    assert "reauthenticate" in browser.get(url).url
    response = browser.post(url, HTTP_REFERER=url)
    assert response.status_code == 302 and "reauthenticate" in response.url
    assert (
        PaymentRun.objects.get().status == "prepared"
        and not SecurityEvent.objects.filter(tag="payments.run_approved").exists()
    )
    age_second_factor(browser, 0)
    page = text(browser.get(url))
    assert "172,50" in page and 'id="approve-submit"' in page
    response = browser.post(url)
    assert response.status_code == 302 and response.url == f"{CONSOLE}{prepared.reference}/"
    run = PaymentRun.objects.get()
    assert run.status == "approved" and run.approved_by == approver
    detail = text(browser.get(response.url))
    assert run.file_sha256 in detail and 'id="download-link"' in detail
    assert browser.post(url).status_code == 302  # a second click: nothing more is paid
    assert SecurityEvent.objects.filter(tag="payments.run_approved").count() == 1
    call_command("accounts", "check")


def test_the_service_refuses_a_stale_second_factor_even_if_the_page_let_it_through(
    cast, client_class, approver, prepared, monkeypatch
):
    monkeypatch.setattr(console_views, "_stale_second_factor", lambda request: None)
    browser = person(client_class, cast, approver)
    age_second_factor(browser, 400)
    response = browser.post(f"{CONSOLE}{prepared.reference}/approuver/")
    assert response.status_code == 400 and "second facteur" in text(response)
    assert PaymentRun.objects.get().status == "prepared"
    assert SecurityEvent.objects.get(tag="payments.approval_refused").details["reason"] == "step_up"


def test_the_file_is_downloaded_by_the_treasury_with_step_up_checked_and_recorded(
    cast, client_class, approver, prepared
):
    from rempart.payments import runs

    run = runs.approve_run(prepared, user=approver)
    url = f"{CONSOLE}{run.reference}/fichier/"
    assert person(client_class, cast, cast.admin).get(url).status_code == 404  # admin: not the treasury
    browser = person(client_class, cast, approver)
    age_second_factor(browser, 400)
    assert "reauthenticate" in browser.get(url).url and not FileDownload.objects.exists()
    age_second_factor(browser, 0)
    response = browser.get(url)
    assert response.status_code == 200 and response.content == bytes(run.file_content)
    assert response["Content-Disposition"] == f'attachment; filename="{run.file_name}"'
    assert response["X-Content-SHA256"] == run.file_sha256 and response["Cache-Control"] == "no-store"
    assert FileDownload.objects.get().user == approver
    assert SecurityEvent.objects.filter(tag="payments.file_downloaded", user=approver).count() == 1
    PaymentRun.objects.filter(pk=run.pk).update(file_content=bytes(run.file_content) + b" ")
    tampered = browser.get(url)
    assert tampered.status_code == 409 and "SHA-256" in text(tampered) and FileDownload.objects.count() == 1


def test_a_prepared_run_has_no_file_to_download(cast, client_class, approver, prepared):
    assert (
        person(client_class, cast, approver).get(f"{CONSOLE}{prepared.reference}/fichier/").status_code == 404
    )


def test_cancelling_needs_a_reason(cast, client_class, preparer, prepared):
    browser = person(client_class, cast, preparer)
    url = f"{CONSOLE}{prepared.reference}/annuler/"
    response = browser.post(url, {"reason": ""})
    assert response.status_code == 400 and "Indiquez pourquoi" in text(response)
    assert browser.get(url).status_code == 405
    response = browser.post(url, {"reason": "montants à vérifier"})
    assert response.status_code == 302 and PaymentRun.objects.get().status == "cancelled"
    assert "montants à vérifier" in text(browser.get(response.url))


def test_the_console_is_in_english_on_request(cast, client_class, preparer, prepared):
    browser = person(client_class, cast, preparer)
    browser.post("/i18n/setlang/", {"language": "en", "next": "/"})
    listing = text(browser.get(CONSOLE))
    assert "Payment runs" in listing and "Campagnes de paiement" not in listing
    detail = text(browser.get(f"{CONSOLE}{prepared.reference}/"))
    assert "Cut-off date" in detail and "four eyes" in detail and "Arrêté au" not in detail


def test_the_admin_shows_runs_and_transfers_read_only_without_the_file_or_an_iban(
    cast, client_class, approver, prepared
):
    from rempart.payments import runs

    run = runs.approve_run(prepared, user=approver)
    admin = person(client_class, cast, cast.admin)
    payment = run.payments.get(organisation=cast.optician)
    for url in ("/admin/payments/paymentrun/", f"/admin/payments/paymentrun/{run.pk}/change/",
                "/admin/payments/payment/", f"/admin/payments/payment/{payment.pk}/change/",
                "/admin/payments/filedownload/", "/admin/payments/bankfileimport/"):  # fmt: skip
        page = admin.get(url)
        assert page.status_code == 200, url
        assert IBANS["optician"][0] not in text(page) and "<Document" not in text(page)
    assert admin.post(f"/admin/payments/paymentrun/{run.pk}/delete/").status_code == 403
    assert admin.get("/admin/payments/payment/add/").status_code == 403
