"""The claims pages: Factures and a claim's detail, invoicing a PEC from its button, the plain invoice form,
and the operator's review queue — for the right person only, with every error at once and no identity shown."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from urllib.parse import unquote

import pyotp
import pytest
from django.utils import timezone

from rempart.accounting import service as accounting
from rempart.accounts.models import Role, SecurityEvent
from rempart.accounts.tests.helpers import age_second_factor
from rempart.authorizations.models import Pec
from rempart.claims import portal, rules
from rempart.claims.models import Claim
from rempart.claims.service import submit_claim
from rempart.gate import Actor
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure
from rempart.rights.cards import read_card_data
from rempart.surveillance.engine import CheckRefused
from rempart.testing import login, make_user

from .test_review import _big_pharmacy_invoice

CIP13 = "3400930000014"  # synthetic, valid key
RPPS = "10001234565"  # Luhn-valid


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


def fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def euros(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}"


def text(response) -> str:
    return unescape(response.content.decode()).replace("\u202f", "").replace("\u00a0", " ")


def card_fields(row) -> dict:
    born = row[COL["birth_date"]]
    return {
        "amc_number": row[COL["amc_number"]], "adherent_number": row[COL["adherent_number"]],
        "nir": row[COL["nir"]], "birth_date": f"{born[8:10]}/{born[5:7]}/{born[0:4]}", "birth_rank": "",
    }  # fmt: skip


def secrets_of(row) -> tuple[str, ...]:
    """What must never be on a page: the NIR (in both notations), the names, the birth date."""
    nir = row[COL["nir"]]
    born = row[COL["birth_date"]]
    return (nir, f"{nir[0]} {nir[1:3]} {nir[3:5]}", row[COL["last_name"]], row[COL["first_name"]],
            f"{born[8:10]}/{born[5:7]}/{born[0:4]}")  # fmt: skip


def pec_invoice(row, pec_number: str, number: str = "F-PORTAIL-1", **extra) -> dict:
    """What the shop posts on « Facturer cette prise en charge »: the cards, the invoice, the AMO paid."""
    today = timezone.localdate()
    data = {**card_fields(row), "invoice_number": number, "invoice_date": fr(today), "care_date": fr(today),
            "prescriber_rpps": RPPS}  # fmt: skip
    for n, line in enumerate(portal.pec_invoice_lines(Pec.objects.get(number=pec_number)), start=1):
        data[f"line{n}_amo_paid"] = euros(line["amo_cents"])
        data[f"line{n}_amc_claimed"] = euros(line["amc_cents"])
    data.update(extra)
    return data


def pharmacy_invoice(row, number: str = "PH-PORTAIL-1", **extra) -> dict:
    today = timezone.localdate()
    data = {**card_fields(row), "domain": "PHAR", "invoice_number": number, "invoice_date": fr(today),
            "care_date": fr(today - dt.timedelta(days=1)), "prescriber_rpps": RPPS,
            "line1_code_system": "CIP13", "line1_code": CIP13, "line1_quantity": "1", "line1_unit_price": "10,00",
            "line1_base": "10,00", "line1_amo_paid": "6,50", "line1_amc_claimed": "3,50"}  # fmt: skip
    data.update(extra)
    return data


def person(client_class, user, secret):
    browser = client_class()
    login(browser, user, secret)
    return browser


@pytest.fixture
def shop(client, cast):
    """The optician's staff member, logged in (the same client holds the PEC token's API calls)."""
    login(client, cast.staff, cast.secrets[cast.staff.email])
    return client


@pytest.fixture
def invoiced(shop, delivered):
    """The delivered PEC invoiced from the portal; returns (row, pec number, the response)."""
    row, pec = delivered
    response = shop.post(
        f"/comptoir/prises-en-charge/{pec['number']}/facturer/", pec_invoice(row, pec["number"])
    )
    assert response.status_code == 200, text(response)[:3000]
    return row, pec["number"], response


@pytest.fixture
def pharmacist(client_class, cast):
    return person(client_class, cast.outsider, cast.secrets[cast.outsider.email])


@pytest.fixture
def reviewer(client_class, cast):
    return person(client_class, cast.admin, cast.secrets[cast.admin.email])


def pharmacy_claim(cast, population, number: str, *, claimed: int = 350, care_days_ago: int = 2):
    """A claim of the pharmacy (the cast's other shop) through the service, as the API would make it."""
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    today = timezone.localdate()
    card = read_card_data(amc_number=row[COL["amc_number"]], adherent_number=row[COL["adherent_number"]],
                          nir=row[COL["nir"]], birth_date=row[COL["birth_date"]], domain="PHAR", today=today)  # fmt: skip
    line = rules.InvoiceLine(number=1, code_system="CIP13", code=CIP13, quantity=1, unit_price_cents=1000 + claimed,
                             base_cents=1000, amo_paid_cents=650, amc_claimed_cents=claimed)  # fmt: skip
    invoice = rules.Invoice(invoice_number=number, invoice_date=today, care_date=today - dt.timedelta(days=care_days_ago),
                            domain="PHAR", prescriber_rpps=RPPS, pec_number=None, lines=(line,),
                            total_price_cents=1000 + claimed, total_amo_cents=650, total_amc_cents=claimed)  # fmt: skip
    actor = Actor(channel="api", organisation_id=cast.other_shop.pk, token_id=None, ip="203.0.113.5")
    return submit_claim(actor, card, invoice, channel="api").claim


# ---------------------------------------------------------------------------------------------- PEC → invoice


def test_the_pec_button_opens_the_invoice_pre_filled_with_the_pecs_lines(shop, delivered):
    row, pec = delivered
    history = text(shop.get("/comptoir/prises-en-charge/"))
    url = f"/comptoir/prises-en-charge/{pec['number']}/facturer/"
    assert f'href="{url}"' in history and "Facturer cette prise en charge" in history
    response = shop.get(url)
    page = text(response)
    assert response.status_code == 200 and pec["number"] in page and "Optique" in page
    lines = portal.pec_invoice_lines(Pec.objects.get(number=pec["number"]))
    assert [line["code"] for line in lines] == ["2290100", "2290200", "2290200"]
    for n, line in enumerate(lines, start=1):
        assert f'name="line{n}_amo_paid" value="{euros(line["amo_cents"])}"' in page  # the PEC's AMO estimate
        assert f'name="line{n}_amc_claimed" value="{euros(line["amc_cents"])}"' in page
        assert line["code"] in page and euros(line["unit_price_cents"]) in page
    assert f'name="care_date" value="{fr(timezone.localdate())}"' in page  # the delivery date (today here)
    assert 'name="line1_code"' not in page  # the lines come from the PEC, not from the page


def test_invoicing_a_pec_is_accepted_consumes_it_and_shows_nothing_of_the_person(cast, shop, invoiced):
    row, number, response = invoiced
    page = text(response)
    claim = Claim.objects.get()
    assert 'id="invoice-status">Acceptée<' in page and "66,50 €" in page
    assert (claim.channel, claim.user_id, claim.status, claim.accepted_cents) == (
        "portal",
        cast.staff.pk,
        "accepted",
        6650,
    )
    assert Pec.objects.get(number=number).consumed_at is not None
    ledger = Disclosure.objects.get(reference=claim.ledger_reference)
    assert (ledger.purpose, ledger.channel, ledger.user_id) == ("claim", "portal", cast.staff.pk)
    assert accounting.balance(accounting.professional_payable(cast.optician.pk)) == -6650
    listing, detail = shop.get("/comptoir/factures/"), shop.get("/comptoir/factures/F-PORTAIL-1/")
    for shown in (response, listing, detail):
        assert not any(secret in text(shown) for secret in secrets_of(row))
    assert "F-PORTAIL-1" in text(listing) and "66,50 €" in text(listing) and "Acceptée" in text(listing)
    detail_page = text(detail)
    assert number in detail_page and claim.ledger_reference in detail_page and "2290200" in detail_page
    # Consumed: no more button, and the page says so instead of a form.
    assert "Facturer cette prise en charge</a>" not in text(shop.get("/comptoir/prises-en-charge/"))
    again = shop.get(f"/comptoir/prises-en-charge/{number}/facturer/")
    assert again.status_code == 302 and again.url == "/comptoir/prises-en-charge/"


def test_sending_the_same_invoice_twice_replays_it_and_another_body_is_a_conflict(shop, invoiced):
    row, number, _response = invoiced
    url = f"/comptoir/prises-en-charge/{number}/facturer/"
    again = shop.post(url, pec_invoice(row, number))
    assert again.status_code == 200 and "déjà été reçue" in text(again)
    other = shop.post(url, pec_invoice(row, number, line1_amc_claimed="1,00"))
    assert other.status_code == 409 and "a déjà servi" in text(other)
    # Neither the replay nor the conflict identifies anyone again: the organisation's own number decides.
    assert Claim.objects.count() == 1 and Disclosure.objects.filter(purpose="claim").count() == 1


def test_a_bad_invoice_shows_every_error_at_once_writes_no_ledger_row_and_focuses_the_first(shop, delivered):
    row, pec = delivered
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    data = pec_invoice(row, pec["number"], nir="1 23", birth_date="31/02", invoice_number="",
                       care_date=fr(tomorrow), line2_amo_paid="999,00", line3_amc_claimed="trente")  # fmt: skip
    response = shop.post(f"/comptoir/prises-en-charge/{pec['number']}/facturer/", data)
    page = text(response)
    assert response.status_code == 400
    for expected in ("NIR à 15 caractères", "date de naissance au format", "Ce champ est obligatoire",
                     "La date des soins est dans le futur", "La part obligatoire dépasse",
                     "montant en euros attendu"):  # fmt: skip
        assert expected in page, expected
    assert page.count('role="alert"') >= 7  # the summary, then each field's own message
    focused = re.findall(r"<input[^>]*autofocus[^>]*>", page)
    assert len(focused) == 1 and 'name="nir"' in focused[0]  # the first bad field, not the first field
    # Only the adherent number comes back; the other card data are never written into the page.
    assert f'value="{row[COL["adherent_number"]]}"' in page
    assert (
        not any(secret in page for secret in secrets_of(row))
        and f'value="{row[COL["amc_number"]]}"' not in page
    )
    assert not Claim.objects.exists() and not Disclosure.objects.filter(purpose="claim").exists()
    assert Pec.objects.get(number=pec["number"]).consumed_at is None


def test_a_card_that_matches_nobody_is_the_uniform_no_match(shop, delivered):
    row, pec = delivered
    response = shop.post(
        f"/comptoir/prises-en-charge/{pec['number']}/facturer/",
        pec_invoice(row, pec["number"], adherent_number="NOBODY-42"),
    )
    assert response.status_code == 200 and "Aucune correspondance" in text(response)
    assert not Claim.objects.exists()
    assert Disclosure.objects.get(purpose="claim").outcome == Disclosure.Outcome.NO_MATCH


def test_a_step_up_keeps_the_typed_card_data_for_the_return(shop, delivered, monkeypatch):
    row, pec = delivered
    url = f"/comptoir/prises-en-charge/{pec['number']}/facturer/"

    def step_up(*args, **kwargs):
        raise CheckRefused("step_up_required", "Activité inhabituelle : confirmez votre second facteur.", 403)

    monkeypatch.setattr("rempart.claims.views.submit_claim", step_up)
    response = shop.post(url, pec_invoice(row, pec["number"]), HTTP_REFERER=f"http://testserver{url}")
    assert response.status_code == 302 and "reauthenticate" in response.url and url in unquote(response.url)
    assert not any(secret in str(shop.session.items()) for secret in secrets_of(row)[:1])  # encrypted
    monkeypatch.undo()

    back = text(shop.get(url))  # back from the second-factor prompt
    assert 'id="draft-kept"' in back and 'value="F-PORTAIL-1"' in back
    assert not any(secret in back for secret in secrets_of(row))  # still never written into the page
    blanks = {name: "" for name in ("amc_number", "nir", "birth_date", "birth_rank")}
    done = shop.post(url, pec_invoice(row, pec["number"], **blanks))
    assert done.status_code == 200 and Claim.objects.get().status == "accepted"
    assert 'id="draft-kept"' not in text(shop.get("/comptoir/factures/nouvelle/"))  # used once


# ---------------------------------------------------------------------------------------------- plain invoices


def test_the_plain_form_offers_the_domains_without_pec_and_adjudicates(cast, pharmacist, population):
    page = text(pharmacist.get("/comptoir/factures/nouvelle/"))
    assert (
        '<option value="PHAR"' in page
        and '<option value="OPTI"' not in page
        and page.count('name="line8_code"') == 1
    )
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    response = pharmacist.post("/comptoir/factures/nouvelle/", pharmacy_invoice(row))
    assert response.status_code == 200, text(response)[:2000]
    claim = Claim.objects.get()
    assert claim.organisation == cast.other_shop and claim.channel == "portal" and claim.domain == "PHAR"
    assert claim.lines.get().code == CIP13 and claim.claimed_cents == 350
    assert not any(secret in text(response) for secret in secrets_of(row))


def test_a_plain_invoice_needs_at_least_one_complete_line(pharmacist, population):
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    empty = {
        f"line1_{name}": ""
        for name in ("code_system", "code", "quantity", "unit_price", "base", "amo_paid", "amc_claimed")
    }
    response = pharmacist.post("/comptoir/factures/nouvelle/", pharmacy_invoice(row, **empty))
    assert response.status_code == 400 and "au moins une ligne" in text(response)
    half = pharmacist.post(
        "/comptoir/factures/nouvelle/", pharmacy_invoice(row, line1_base="", line2_code=CIP13)
    )
    assert half.status_code == 400 and text(half).count("requis") >= 2
    assert not Disclosure.objects.filter(purpose="claim").exists()


def test_a_forged_domain_is_refused_and_recorded(pharmacist, population):
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    response = pharmacist.post("/comptoir/factures/nouvelle/", pharmacy_invoice(row, domain="DENT"))
    assert response.status_code == 403 and "DENT" in text(response)
    refused = Disclosure.objects.get(purpose="claim")
    assert refused.outcome == Disclosure.Outcome.REFUSED and not Claim.objects.exists()


def test_an_optician_has_no_plain_invoice_to_make(shop):
    page = text(shop.get("/comptoir/factures/nouvelle/"))
    assert "se facturent à partir d'une prise en charge" in page and 'name="invoice_number"' not in page


# ---------------------------------------------------------------------------------------------- Factures


def test_factures_filters_by_status_dates_and_number(cast, pharmacist, population):
    pharmacy_claim(cast, population, "PH-A-1", care_days_ago=2)
    pharmacy_claim(cast, population, "PH-A-2", care_days_ago=40)
    _big_pharmacy_invoice(cast, population, number="PH-BIG-1")  # pending review
    Claim.objects.filter(invoice_number="PH-A-2").update(created_at=timezone.now() - dt.timedelta(days=30))
    today = timezone.localdate()

    def shown(**query) -> set[str]:
        page = text(pharmacist.get("/comptoir/factures/", query))
        return {n for n in ("PH-A-1", "PH-A-2", "PH-BIG-1") if f">{n}</a>" in page}

    assert shown() == {"PH-A-1", "PH-A-2", "PH-BIG-1"}
    page = text(pharmacist.get("/comptoir/factures/"))
    assert page.index("PH-BIG-1") < page.index("PH-A-1") < page.index("PH-A-2")  # newest first
    assert "En examen" in page and "Montant au-dessus du seuil d'examen" in page  # a label, not the code
    assert "amount_above_threshold" not in page
    assert shown(status="pending_review") == {"PH-BIG-1"}
    assert shown(date_field="care", since=fr(today - dt.timedelta(days=10))) == {"PH-A-1", "PH-BIG-1"}
    assert shown(date_field="care", until=fr(today - dt.timedelta(days=10))) == {"PH-A-2"}
    assert shown(date_field="received", until=fr(today - dt.timedelta(days=20))) == {"PH-A-2"}
    assert shown(q="a-") == {"PH-A-1", "PH-A-2"}
    assert shown(status="rejected") == set()
    bad = pharmacist.get("/comptoir/factures/", {"since": "32/13/2026", "status": "nonsense"})
    assert bad.status_code == 200  # a bad filter is shown as such, never an error page


def test_factures_paginate_and_keep_the_filters(cast, pharmacist, population, monkeypatch):
    for n in range(3):
        pharmacy_claim(cast, population, f"PH-P-{n}", care_days_ago=3 + n)
    monkeypatch.setattr("rempart.claims.views.PAGE_SIZE", 2)
    first = text(pharmacist.get("/comptoir/factures/", {"status": "accepted"}))
    second = text(pharmacist.get("/comptoir/factures/", {"status": "accepted", "page": 2}))
    assert "?status=accepted&page=2" in first  # the filters stay on the next page
    assert first.count(">PH-P-") == 2 and second.count(">PH-P-") == 1


def test_each_page_answers_the_right_people_only(cast, client_class, invoiced):
    _row, number, _response = invoiced
    detail, listing = "/comptoir/factures/F-PORTAIL-1/", "/comptoir/factures/"
    owner = person(client_class, cast.owner, cast.secrets[cast.owner.email])
    assert owner.get(detail).status_code == 200 and "F-PORTAIL-1" in text(owner.get(listing))
    outsider = person(client_class, cast.outsider, cast.secrets[cast.outsider.email])
    assert outsider.get(detail).status_code == 404 and "F-PORTAIL-1" not in text(outsider.get(listing))
    assert outsider.get(f"/comptoir/prises-en-charge/{number}/facturer/").status_code == 404
    for user in (cast.insurer_member, cast.analyst, cast.admin):
        other = person(client_class, user, cast.secrets[user.email])
        for url in (
            listing,
            detail,
            "/comptoir/factures/nouvelle/",
            f"/comptoir/prises-en-charge/{number}/facturer/",
        ):
            assert other.get(url).status_code == 404, (user.email, url)
    assert client_class().get(listing).status_code == 302  # anonymous: to the login page


def test_the_navigation_shows_factures_to_professionals_and_the_queue_to_reviewers(cast, client_class, shop):
    assert 'href="/comptoir/factures/"' in text(shop.get("/"))
    admin = person(client_class, cast.admin, cast.secrets[cast.admin.email])
    analyst = person(client_class, cast.analyst, cast.secrets[cast.analyst.email])
    assert 'href="/operateur/factures/examen/"' in text(admin.get("/"))
    assert 'href="/operateur/factures/examen/"' not in text(analyst.get("/"))
    assert 'href="/comptoir/factures/"' not in text(admin.get("/"))


def test_the_pages_are_in_english_on_request(cast, client_class, shop, invoiced, population):
    shop.post("/i18n/setlang/", {"language": "en", "next": "/"})
    listing = text(shop.get("/comptoir/factures/"))
    assert "Invoices — Optique du Test" in listing and ">Accepted<" in listing and "Factures —" not in listing
    detail = text(shop.get("/comptoir/factures/F-PORTAIL-1/"))
    assert "Date of care" in detail and "Date des soins" not in detail
    _big_pharmacy_invoice(cast, population)  # reason labels follow the language too
    admin = person(client_class, cast.admin, cast.secrets[cast.admin.email])
    admin.post("/i18n/setlang/", {"language": "en", "next": "/"})
    queue = text(admin.get("/operateur/factures/examen/"))
    assert "Invoices under review" in queue and "Amount above the review threshold" in queue
    assert "Montant au-dessus" not in queue


# ---------------------------------------------------------------------------------------------- review


def test_the_queue_lists_pending_claims_oldest_first_without_identity(cast, reviewer, population):
    first = _big_pharmacy_invoice(cast, population, number="PH-BIG-1")
    second = _big_pharmacy_invoice(cast, population, number="PH-BIG-2", claimed=140_000)
    pharmacy_claim(cast, population, "PH-SMALL", care_days_ago=5)  # accepted: not in the queue
    Claim.objects.filter(pk=second.pk).update(created_at=first.created_at - dt.timedelta(hours=1))
    page = text(reviewer.get("/operateur/factures/examen/"))
    assert page.index("PH-BIG-2") < page.index("PH-BIG-1") and "PH-SMALL" not in page
    assert cast.other_shop.name in page and "Mutuelle Test" in page and "1500,00 €" in page
    assert "Montant au-dessus du seuil d'examen" in page
    row = next(r for r in population.people[population.insurers[0].pk] if r[COL["nir"]])
    assert not any(secret in page for secret in secrets_of(row))
    decision = text(reviewer.get(f"/operateur/factures/examen/{first.pk}/"))
    assert not any(secret in decision for secret in secrets_of(row))


@pytest.mark.parametrize(
    ("posted", "status", "owed"),
    [
        ({"decision": "accept", "reason": "amount_above_threshold"}, "accepted", 150_000),
        ({"decision": "reduce", "amount": "900,00", "reason": "act_ceiling"}, "partially_accepted", 90_000),
        ({"decision": "reject", "reason": "duplicate"}, "rejected", 0),
    ],
)
def test_a_reviewer_decides_once_with_a_reason_and_it_is_recorded(
    cast, reviewer, population, posted, status, owed
):
    claim = _big_pharmacy_invoice(cast, population)
    url = f"/operateur/factures/examen/{claim.pk}/"
    response = reviewer.post(url, {**posted, "note": "ordonnance vérifiée"})
    assert response.status_code == 302 and response.url == "/operateur/factures/examen/"
    claim.refresh_from_db()
    assert (claim.status, claim.accepted_cents, claim.reviewed_by) == (status, owed, cast.admin)
    assert (claim.review_reason, claim.review_note) == (posted["reason"], "ordonnance vérifiée")
    event = SecurityEvent.objects.get(tag="claim.reviewed")
    assert (
        event.user == cast.admin
        and event.details["decision"] == posted["decision"]
        and event.details["accepted_cents"] == owed
    )
    assert accounting.balance(accounting.professional_payable(cast.other_shop.pk)) == -owed
    # A second send (a double click, another tab) changes nothing and says so.
    again = reviewer.post(url, {"decision": "accept", "reason": "amount_above_threshold"}, follow=True)
    assert "déjà été jugée" in text(again) and SecurityEvent.objects.filter(tag="claim.reviewed").count() == 1
    assert Claim.objects.get(pk=claim.pk).accepted_cents == owed
    assert accounting.balance(accounting.professional_payable(cast.other_shop.pk)) == -owed
    assert 'id="review-done"' in text(reviewer.get(url))


def test_a_decision_out_of_bounds_is_refused_and_changes_nothing(cast, reviewer, population):
    claim = _big_pharmacy_invoice(cast, population)
    url = f"/operateur/factures/examen/{claim.pk}/"
    for posted in (
        {"decision": "reduce", "amount": "1 500,01", "reason": "act_ceiling"},  # above the proposal
        {"decision": "reduce", "amount": "", "reason": "act_ceiling"},
        {"decision": "reduce", "amount": "-5", "reason": "act_ceiling"},
        {"decision": "reject", "reason": "act_ceiling"},  # a reduction's reason for a rejection
        {"decision": "accept", "reason": "nonsense"},
        {"decision": "pay-twice", "reason": "duplicate"},
    ):
        assert reviewer.post(url, posted).status_code == 400, posted
    assert Claim.objects.get(pk=claim.pk).status == "pending_review"
    assert not SecurityEvent.objects.filter(tag="claim.reviewed").exists()


def test_a_decision_needs_a_fresh_second_factor(cast, reviewer, population):
    claim = _big_pharmacy_invoice(cast, population)
    url = f"/operateur/factures/examen/{claim.pk}/"
    age_second_factor(reviewer, 400)
    assert "reauthenticate" in reviewer.get(url).url
    response = reviewer.post(
        url, {"decision": "accept", "reason": "amount_above_threshold"}, HTTP_REFERER=url
    )
    assert response.status_code == 302 and "reauthenticate" in response.url
    assert Claim.objects.get(pk=claim.pk).status == "pending_review"
    age_second_factor(reviewer, 0)
    assert reviewer.post(url, {"decision": "accept", "reason": "amount_above_threshold"}).status_code == 302
    assert Claim.objects.get(pk=claim.pk).status == "accepted"


def test_only_support_and_admin_reach_the_review_queue(cast, client_class, population):
    claim = _big_pharmacy_invoice(cast, population)
    secret = pyotp.random_base32()
    support = make_user("support@operator.test", cast.operator, Role.SUPPORT, totp_secret=secret)
    helpdesk = person(client_class, support, secret)
    assert helpdesk.get("/operateur/factures/examen/").status_code == 200
    response = helpdesk.post(
        f"/operateur/factures/examen/{claim.pk}/", {"decision": "reject", "reason": "duplicate"}
    )
    assert response.status_code == 302 and Claim.objects.get(pk=claim.pk).reviewed_by == support
    for user in (cast.analyst, cast.owner, cast.staff, cast.outsider, cast.insurer_member):
        other = person(client_class, user, cast.secrets[user.email])
        assert other.get("/operateur/factures/examen/").status_code == 404, user.email
        assert (
            other.post(f"/operateur/factures/examen/{claim.pk}/", {"decision": "accept"}).status_code == 404
        )
