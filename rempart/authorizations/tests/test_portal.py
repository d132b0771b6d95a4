"""The shop's quote form: a decision with its lines, line-specific errors, the organisation's list, cancelling."""

import datetime as dt

import pytest
from django.utils import timezone

from rempart.authorizations.models import Pec
from rempart.incidents.tests.conftest import COL
from rempart.ledger.models import Disclosure
from rempart.testing import login

from .test_api import _adult


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False


def _fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _form(row, **extra):
    today = timezone.localdate()
    born = row[COL["birth_date"]]
    data = {
        "amc_number": row[COL["amc_number"]], "adherent_number": row[COL["adherent_number"]], "nir": row[COL["nir"]],
        "birth_date": f"{born[8:10]}/{born[5:7]}/{born[0:4]}", "birth_rank": "1", "domain": "OPTI",
        "delivery_date": _fr(today + dt.timedelta(days=5)), "prescription_date": _fr(today - dt.timedelta(days=10)),
        "prescriber_id": "10001234567", "right_sphere": "-1,25", "left_sphere": "-1,00",
        "line1_code": "2290100", "line1_class": "A", "line1_side": "", "line1_quantity": "1", "line1_price": "30,00",
        "line2_code": "2290200", "line2_class": "A", "line2_side": "right", "line2_quantity": "1", "line2_price": "32,50",
        "line3_code": "2290200", "line3_class": "A", "line3_side": "left", "line3_quantity": "1", "line3_price": "32,50",
    }  # fmt: skip
    data.update(extra)
    return data


@pytest.fixture
def shop(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    return client


def test_a_quote_is_decided_on_the_page_without_identity(shop, cast, population):
    row = _adult(population)
    response = shop.post("/comptoir/prise-en-charge/", _form(row))
    page = response.content.decode()
    assert response.status_code == 200 and 'id="pec-number"' in page and "Accordée" in page
    assert "95,00" in page.replace("\u202f", "")
    for secret in (row[COL["nir"]], row[COL["last_name"]], row[COL["first_name"]]):
        assert secret not in page
    pec = Pec.objects.get()
    assert (
        pec.user_id == cast.staff.pk
        and Disclosure.objects.get(reference=pec.ledger_reference).channel == "portal"
    )


def test_errors_name_the_line_and_store_nothing(shop, population):
    row = _adult(population)
    response = shop.post("/comptoir/prise-en-charge/", _form(row, line2_price="99,00"))
    assert response.status_code == 400 and "Ligne 2" in response.content.decode()
    response = shop.post("/comptoir/prise-en-charge/", _form(row, right_sphere="-45"))
    assert response.status_code == 400
    response = shop.post(
        "/comptoir/prise-en-charge/", _form(row, line1_code="", line2_code="", line3_code="")
    )
    assert response.status_code == 400 and "au moins une ligne" in response.content.decode()
    assert not Pec.objects.exists() and not Disclosure.objects.filter(purpose="pec").exists()


def test_the_list_shows_the_organisations_pecs_and_cancels_them(shop, client, cast, population):
    shop.post("/comptoir/prise-en-charge/", _form(_adult(population)))
    pec = Pec.objects.get()
    page = shop.get("/comptoir/prises-en-charge/").content.decode()
    assert pec.number in page
    shop.post(f"/comptoir/prises-en-charge/{pec.number}/annuler/", {"confirm": "yes"})
    pec.refresh_from_db()
    assert pec.cancelled_at is not None


def test_cancelling_a_pec_asks_for_a_confirmation_that_works_without_javascript(shop, population):
    shop.post("/comptoir/prise-en-charge/", _form(_adult(population)))
    pec = Pec.objects.get()
    page = shop.get("/comptoir/prises-en-charge/").content.decode()
    assert 'name="confirm" value="yes" required' in page  # the browser refuses to send it unticked
    response = shop.post(f"/comptoir/prises-en-charge/{pec.number}/annuler/", follow=True)  # unticked anyway
    pec.refresh_from_db()
    assert pec.cancelled_at is None and "Cochez la case de confirmation" in response.content.decode()
    shop.post(f"/comptoir/prises-en-charge/{pec.number}/annuler/", {"confirm": "yes"})
    pec.refresh_from_db()
    assert pec.cancelled_at is not None


def test_other_organisations_and_other_trades_get_nothing(client, cast, population):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    client.post("/comptoir/prise-en-charge/", _form(_adult(population)))
    number = Pec.objects.get().number
    client.logout()
    cast.other_shop.professional.domains = ["PHAR"]  # a pharmacy: no optics, no audiology
    cast.other_shop.professional.save(update_fields=["domains"])
    login(client, cast.outsider, cast.secrets[cast.outsider.email])
    assert client.get("/comptoir/prise-en-charge/").status_code == 404
    assert client.post(f"/comptoir/prises-en-charge/{number}/annuler/").status_code == 404
    assert Pec.objects.get().cancelled_at is None
