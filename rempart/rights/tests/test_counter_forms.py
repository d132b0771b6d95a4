"""The two counter forms (rights check, PEC) after an error and after an answer, the cards carried between them
and across a step-up (server-side, encrypted, never in a URL nor written into a page), and the histories' search."""

import datetime as dt
import re

import pytest
from django import forms
from django.utils import timezone

from rempart.authorizations.models import Pec
from rempart.rights import carry
from rempart.rights.forms import RightsCheckForm, parse_french_date
from rempart.surveillance.models import ActorState
from rempart.testing import login, totp_code

REFERENCE = re.compile(r'id="check-reference">([^<]+)<')


def _fr(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def check_form(family, **extra) -> dict:
    data = {
        "amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
        "birth_date": "12/05/1985", "birth_rank": "", "domain": "OPTI", "care_date": "",
    }  # fmt: skip
    return {**data, **extra}


def pec_form(family, **extra) -> dict:
    today = timezone.localdate()
    data = {
        **check_form(family), "delivery_date": _fr(today + dt.timedelta(days=5)),
        "prescription_date": _fr(today - dt.timedelta(days=10)), "prescriber_id": "10001234567",
        "right_sphere": "-1,25", "left_sphere": "-1,00",
        "line1_code": "2290100", "line1_class": "A", "line1_side": "", "line1_quantity": "1", "line1_price": "30,00",
        "line2_code": "2290200", "line2_class": "A", "line2_side": "right", "line2_quantity": "1", "line2_price": "32,50",
        "line3_code": "2290200", "line3_class": "A", "line3_side": "left", "line3_quantity": "1", "line3_price": "32,50",
    }  # fmt: skip
    data.pop("care_date")
    return {**data, **extra}


@pytest.fixture
def shop(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    return client


def text(response) -> str:
    return response.content.decode()


# ---------------------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("typed", "iso"),
    [
        ("12/05/1985", "1985-05-12"),
        ("12051985", "1985-05-12"),
        ("29.02.2024", "2024-02-29"),
        ("1985-05-12", "1985-05-12"),
    ],
)
def test_dates_are_read_as_typed_at_the_counter(typed, iso):
    assert parse_french_date(typed) == iso


@pytest.mark.parametrize("typed", ["31/02/2026", "29/02/2025", "31/04/2026", "00/01/2026", "12/13/2026"])
def test_a_date_that_does_not_exist_is_called_so(typed):
    with pytest.raises(forms.ValidationError) as caught:
        parse_french_date(typed)
    assert caught.value.messages == [f"le {typed} n'existe pas"]


def test_a_badly_typed_date_is_a_format_error_and_a_birth_date_may_have_unknown_parts():
    with pytest.raises(forms.ValidationError) as caught:
        parse_french_date("5/2/26")
    assert "JJ/MM/AAAA" in caught.value.messages[0]
    assert parse_french_date("00/00/1975", unknown_parts=True) == "1975-00-00"
    assert parse_french_date("00/03/1975", unknown_parts=True) == "1975-03-00"
    with pytest.raises(forms.ValidationError):
        parse_french_date("00/00/1975")  # a care date is always a real day
    with pytest.raises(forms.ValidationError):
        parse_french_date("31/02/1975", unknown_parts=True)


def test_the_rights_form_reports_every_bad_field_at_once_and_puts_the_cursor_on_the_first(family):
    form = RightsCheckForm(
        check_form(family, adherent_number="?", nir="123", birth_date="31/02/1985", care_date="30/02/2026")
    )
    assert not form.is_valid()
    assert set(form.errors) == {"adherent_number", "nir", "birth_date", "care_date"}
    assert "le 31/02/1985 n'existe pas" in form.errors["birth_date"]
    form.focus_first_error()
    focused = [name for name, field in form.fields.items() if field.widget.attrs.get("autofocus")]
    assert focused == ["adherent_number"]
    assert [anchor for anchor, _text in form.error_summary()] == [
        "id_adherent_number", "id_nir", "id_birth_date", "id_care_date"
    ]  # fmt: skip


def test_both_pages_answer_400_with_the_summary_and_record_nothing(shop, family):
    from rempart.ledger.models import Disclosure

    page = shop.post("/comptoir/droits/", check_form(family, birth_date="31/02/1985", amc_number="1"))
    assert page.status_code == 400 and 'id="form-errors"' in text(page)
    assert "le 31/02/1985 n&#x27;existe pas" in text(page) and "9 chiffres" in text(page)
    page = shop.post(
        "/comptoir/prise-en-charge/",
        pec_form(family, delivery_date="31/04/2030", right_axis="90", line2_price="99,00", nir="1"),
    )
    body = text(page)
    assert page.status_code == 400 and 'id="form-errors"' in body
    for expected in ("le 31/04/2030 n&#x27;existe pas", "qu&#x27;avec un cylindre", "NIR à 15"):
        assert expected in body, expected
    page = shop.post("/comptoir/prise-en-charge/", pec_form(family, line2_price="99,00", nir="1"))
    assert "Ligne 2 — Prix unitaire (€) : Prix supérieur" in text(page)  # the quote's rules with the cards'
    assert not Disclosure.objects.exists() and not Pec.objects.exists()


# ---------------------------------------------------------------------------------------------- carried cards


def test_a_covered_answer_needing_a_pec_hands_its_cards_to_the_pec_form_in_the_session_only(shop, family):
    answer = shop.post("/comptoir/droits/", check_form(family))
    assert 'id="pec-from-check" href="/comptoir/prise-en-charge/"' in text(answer)
    reference = REFERENCE.search(text(answer)).group(1)
    assert family.parent_nir not in str(dict(shop.session.items()))  # encrypted
    page = text(shop.get("/comptoir/prise-en-charge/"))
    assert 'id="cards-carried"' in page and reference in page
    assert f'value="{family.amc}"' in page and family.parent_nir not in page
    granted = shop.post("/comptoir/prise-en-charge/", pec_form(family, nir=""))
    assert granted.status_code == 200 and Pec.objects.get().status == "accepted", text(granted)[:3000]
    assert 'id="cards-carried"' not in text(shop.get("/comptoir/prise-en-charge/"))  # used once


def test_carried_cards_are_never_mixed_into_another_patients_request(shop, family):
    shop.post("/comptoir/droits/", check_form(family))
    other = shop.post("/comptoir/prise-en-charge/", pec_form(family, nir="", adherent_number="ADH-0002"))
    assert other.status_code == 400 and not Pec.objects.exists()  # the NIR is not taken for another card


def test_an_answer_without_a_pec_to_ask_links_nowhere(shop, family):
    answer = shop.post("/comptoir/droits/", check_form(family, adherent_number="ADH-0003"))
    assert answer.status_code == 200 and 'id="pec-from-check"' not in text(answer)
    assert carry.CARDS not in shop.session


def test_a_step_up_keeps_the_typed_cards_for_the_return_and_only_there(shop, cast, family):
    ActorState.objects.update_or_create(
        actor=f"u:{cast.staff.pk}", defaults={"step_up_since": timezone.now()}
    )
    asked = shop.post(
        "/comptoir/droits/", check_form(family), HTTP_REFERER="http://testserver/comptoir/droits/"
    )
    assert asked.status_code == 302 and asked.url.startswith("/accounts/2fa/reauthenticate/")
    assert family.parent_nir not in asked.url and family.amc not in asked.url
    assert family.parent_nir not in str(dict(shop.session.items()))
    assert 'id="draft-kept"' not in text(shop.get("/comptoir/prise-en-charge/"))  # bound to its own page
    prompt = shop.get(asked.url)
    assert 'name="password"' not in text(prompt) and 'name="code"' in text(prompt)
    proved = shop.post(asked.url, {"code": totp_code(cast.secrets[cast.staff.email], 1)})
    assert proved.status_code == 302 and proved.url.endswith("/comptoir/droits/")
    back = text(shop.get("/comptoir/droits/"))
    assert 'id="draft-kept"' in back and f'value="{family.amc}"' in back and family.parent_nir not in back
    answer = shop.post("/comptoir/droits/", check_form(family, nir=""))
    assert answer.status_code == 200 and REFERENCE.search(text(answer))
    assert 'id="draft-kept"' not in text(shop.get("/comptoir/droits/"))  # used once


def test_a_kept_draft_that_was_tampered_with_or_is_stale_is_dropped(shop, family, monkeypatch):
    shop.post("/comptoir/droits/", check_form(family))
    session = shop.session
    session[carry.CARDS] = session[carry.CARDS][:-8] + "AAAAAAA="
    session.save()
    assert 'id="cards-carried"' not in text(shop.get("/comptoir/prise-en-charge/"))
    shop.post("/comptoir/droits/", check_form(family))
    monkeypatch.setattr(carry, "MAX_AGE_SECONDS", -1)
    assert 'id="cards-carried"' not in text(shop.get("/comptoir/prise-en-charge/"))
    assert carry.CARDS not in shop.session


# ---------------------------------------------------------------------------------------------- revised quotes


def test_a_revised_quote_is_told_which_own_pec_blocks_it_but_never_another_shops(client, cast, family):
    login(client, cast.outsider, cast.secrets[cast.outsider.email])
    cast.other_shop.professional.domains = ["OPTI"]
    cast.other_shop.professional.save(update_fields=["domains"])
    client.post("/comptoir/prise-en-charge/", pec_form(family))
    theirs = Pec.objects.get()
    client.logout()
    login(client, cast.staff, cast.secrets[cast.staff.email])
    page = text(client.post("/comptoir/prise-en-charge/", pec_form(family)))
    assert "Refusée" in page and 'id="pec-blocking"' not in page and theirs.number not in page
    Pec.objects.filter(pk=theirs.pk).update(cancelled_at=timezone.now())

    client.post("/comptoir/prise-en-charge/", pec_form(family))
    ours = Pec.objects.filter(organisation=cast.optician, status="accepted").get()
    page = text(client.post("/comptoir/prise-en-charge/", pec_form(family, line1_price="28,00")))
    assert 'id="pec-blocking"' in page and ours.number in page
    assert f'action="/comptoir/prises-en-charge/{ours.number}/annuler/"' in page
    assert "est déjà pris en charge" in page  # its delivery is still to come
    back = client.post(
        f"/comptoir/prises-en-charge/{ours.number}/annuler/", {"then": "ask", "confirm": "yes"}
    )
    assert back.status_code == 302 and back.url == "/comptoir/prise-en-charge/"
    kept = text(client.get("/comptoir/prise-en-charge/"))
    assert 'id="revision-kept"' in kept and 'value="28,00"' in kept and family.parent_nir not in kept
    history = text(client.get("/comptoir/prises-en-charge/"))
    refused = Pec.objects.filter(organisation=cast.optician, status="refused")
    assert refused.count() == 2 and history.count("en cours") == 0


# ---------------------------------------------------------------------------------------------- histories


def test_the_history_is_searched_by_reference_day_and_period(shop, family):
    references = [
        REFERENCE.search(text(shop.post("/comptoir/droits/", check_form(family)))).group(1) for _ in "ab"
    ]
    today = timezone.localdate()
    found = text(shop.get("/comptoir/historique/", {"q": references[1].lower()}))
    assert references[1] in found and references[0] not in found
    day = text(shop.get("/comptoir/historique/", {"day": _fr(today)}))
    assert all(r in day for r in references)
    before = text(shop.get("/comptoir/historique/", {"until": _fr(today - dt.timedelta(days=1))}))
    assert not any(r in before for r in references) and "ne correspond à la recherche" in before
    backwards = text(
        shop.get("/comptoir/historique/", {"since": _fr(today), "until": _fr(today - dt.timedelta(days=1))})
    )
    assert "la fin de la période précède son début" in backwards and references[0] not in backwards
    impossible = text(shop.get("/comptoir/historique/", {"day": "31/02/2026"}))
    assert "le 31/02/2026 n&#x27;existe pas" in impossible and references[0] not in impossible


def test_the_pec_history_is_searched_by_number_and_ledger_reference(shop, family):
    shop.post("/comptoir/prise-en-charge/", pec_form(family))
    pec = Pec.objects.get()
    assert pec.number in text(shop.get("/comptoir/prises-en-charge/", {"q": pec.number[-4:]}))
    assert pec.number in text(shop.get("/comptoir/prises-en-charge/", {"q": pec.ledger_reference}))
    assert pec.number not in text(shop.get("/comptoir/prises-en-charge/", {"q": "PEC-0000"}))
