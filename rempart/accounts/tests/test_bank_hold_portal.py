"""Issue 14 over HTTP: the owner's bank page (ask with a fresh factor, see the change on hold, cancel it), the
operator's list of changes on hold, who may do what, and the hijacked session that tries to swap the IBAN."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from rempart.accounts.models import KnownDevice, Role, SecurityEvent
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.registry import bank_hold
from rempart.registry.bank_details import account_to_pay, change_bank_details
from rempart.registry.models import BankDetailsChange, Professional
from rempart.surveillance.models import Alert
from rempart.testing import login, make_user, totp_code

from .helpers import age_second_factor

OLD = "FR7630004000010001234567830"
NEW = "FR7630006000011234567890189"
PAGE = "/organisation/banque/"
CHANGE = "/organisation/banque/modifier/"
CONSOLE = "/operateur/banque/"
CODE_PROMPT = "/accounts/2fa/reauthenticate/"
SHOP = "203.0.113.7"
ELSEWHERE = "198.51.100.66"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def hold_settings(settings):
    settings.REMPART_OPERATOR_ALERT_EMAIL = ["tresorerie@operateur.test"]
    settings.REMPART_IBAN_HOLD_DAYS = 5
    settings.REMPART_SURVEILLANCE_ENABLED = True


@pytest.fixture
def shop(cast) -> Professional:
    professional = cast.optician.professional
    professional.set_iban(OLD)
    professional.bic = "BNPAFRPP"
    professional.save()
    return professional


def browser(address: str = SHOP) -> Client:
    return Client(REMOTE_ADDR=address, HTTP_USER_AGENT=FIREFOX)


def signed_in(cast, user, address: str = SHOP, step: int = 0) -> Client:
    client = browser(address)
    login(client, user, cast.secrets[user.email], step=step)
    return client


def paid_at(professional: Professional, at: dt.datetime) -> str | None:
    return account_to_pay(Professional.objects.get(pk=professional.pk), at).iban


def assert_no_iban(text: str) -> None:
    for iban in (OLD, NEW):
        grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        for form in (iban, grouped, iban[4:-4]):
            assert form not in text, form


def everything_mailed() -> str:
    return "\n".join(f"{m.subject}\n{m.body}" for m in mail.outbox)


def stepped_up(response) -> bool:
    return response.status_code == 302 and response.url.startswith(CODE_PROMPT)


# --- the owner -------------------------------------------------------------------------------------------


def test_the_owner_asks_with_a_fresh_factor_and_sees_the_change_on_hold(cast, shop):
    owner = signed_in(cast, cast.owner)
    response = owner.post(CHANGE, {"iban": NEW, "bic": "AGRIFRPP"}, follow=True)
    page = response.content.decode()
    assert response.status_code == 200 and "en attente jusqu" in page
    assert "FR76 •••• 7830" in page and "FR76 •••• 0189" in page and "Annuler ce changement" in page
    assert_no_iban(page)
    change = BankDetailsChange.objects.get()
    assert change.requested_by == cast.owner and change.status == "pending"
    assert paid_at(shop, timezone.now()) == OLD
    event = SecurityEvent.objects.get(tag="bank.change_requested")
    assert event.user == cast.owner and event.organisation == cast.optician and event.ip_address == SHOP
    assert {tuple(m.to) for m in mail.outbox} == {(cast.owner.email,), ("tresorerie@operateur.test",)}
    assert_no_iban(everything_mailed())


def test_without_a_fresh_second_factor_nothing_changes(cast, shop):
    owner = signed_in(cast, cast.owner)
    age_second_factor(owner, 400)
    assert stepped_up(owner.post(CHANGE, {"iban": NEW, "bic": "AGRIFRPP"}))
    assert not BankDetailsChange.objects.exists()
    assert not [m.subject for m in mail.outbox if "bancaires" in m.subject or "IBAN" in m.subject]
    assert not SecurityEvent.objects.filter(tag__startswith="bank.").exists()


def test_an_invalid_iban_is_refused_in_the_persons_language_without_echoing_it(cast, shop):
    owner = signed_in(cast, cast.owner)
    bad = NEW[:-1] + "0"
    response = owner.post(CHANGE, {"iban": bad, "bic": "AGRIFRPP"})
    page = response.content.decode()
    assert response.status_code == 400 and "IBAN invalide" in page and bad not in page
    response = owner.post(CHANGE, {"iban": NEW, "bic": "COBADEFF"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and NEW not in response.content.decode()
    assert not BankDetailsChange.objects.exists()


def test_if_the_notices_cannot_be_sent_the_owner_is_told_and_nothing_changes(cast, shop, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(bank_hold, "send_mail", broken)
    owner = signed_in(cast, cast.owner)
    response = owner.post(CHANGE, {"iban": NEW, "bic": "AGRIFRPP"})
    assert response.status_code == 503 and "rien n&#x27;a été changé" in response.content.decode()
    assert not BankDetailsChange.objects.exists()


def test_any_owner_cancels_without_a_second_factor_prompt_and_it_is_never_paid(cast, shop):
    co_owner = make_user(
        "co-owner@shop.test", cast.optician, Role.OWNER, totp_secret=cast.secrets[cast.owner.email]
    )
    cast.secrets[co_owner.email] = cast.secrets[cast.owner.email]
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    assert sorted(mail.outbox[0].to) == sorted([cast.owner.email, co_owner.email])
    mail.outbox.clear()
    other = signed_in(cast, co_owner)
    age_second_factor(other, 4000)  # cancelling only protects: no prompt
    response = other.post(f"/organisation/banque/{change.pk}/annuler/", follow=True)
    assert response.status_code == 200 and "ne sera jamais payé" in response.content.decode()
    change.refresh_from_db()
    assert change.status == "cancelled" and change.cancelled_by == co_owner
    assert paid_at(shop, timezone.now() + 30 * DAY) == OLD
    assert SecurityEvent.objects.get(tag="bank.change_cancelled").user == co_owner
    told = {a for m in mail.outbox for a in m.to}
    assert told == {cast.owner.email, co_owner.email, "tresorerie@operateur.test"}
    assert_no_iban(everything_mailed())


def test_staff_cannot_see_ask_or_cancel_whatever_their_factor(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    staff = signed_in(cast, cast.staff)
    for aged in (0, 4000):
        age_second_factor(staff, aged)
        assert staff.get(PAGE).status_code == 404
        assert staff.post(CHANGE, {"iban": OLD, "bic": "BNPAFRPP"}).status_code == 404  # never the prompt
        assert staff.post(f"/organisation/banque/{change.pk}/annuler/").status_code == 404
        assert staff.get(CONSOLE).status_code == 404
        assert staff.post(f"/operateur/banque/{change.pk}/annuler/").status_code == 404
    change.refresh_from_db()
    assert change.status == "pending" and BankDetailsChange.objects.count() == 1


def test_another_organisations_owner_cannot_cancel_nor_see(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    outsider = signed_in(cast, cast.outsider)
    assert outsider.post(f"/organisation/banque/{change.pk}/annuler/").status_code == 404
    assert "0189" not in outsider.get(PAGE).content.decode()
    assert outsider.get(CONSOLE).status_code == 404
    change.refresh_from_db()
    assert change.status == "pending"


# --- the operator ----------------------------------------------------------------------------------------


def test_the_operator_lists_changes_on_hold_and_cancels_one(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    admin = signed_in(cast, cast.admin)
    page = admin.get(CONSOLE).content.decode()
    assert cast.optician.name in page and "FR76 •••• 0189" in page and "FR76 •••• 7830" in page
    assert cast.owner.email in page and f"/operateur/banque/{change.pk}/annuler/" in page
    assert_no_iban(page)
    mail.outbox.clear()
    response = admin.post(f"/operateur/banque/{change.pk}/annuler/", follow=True)
    assert "Aucun changement en attente" in response.content.decode()
    change.refresh_from_db()
    assert change.status == "cancelled" and change.cancelled_by == cast.admin
    event = SecurityEvent.objects.get(tag="bank.change_cancelled")
    assert event.organisation == cast.optician and event.user == cast.admin and event.details["by_operator"]
    assert cast.owner.email in {a for m in mail.outbox for a in m.to}  # the owners learn who cancelled
    assert "(opérateur)" in mail.outbox[0].body
    assert paid_at(shop, timezone.now() + 10 * DAY) == OLD


def test_the_console_and_the_nav_are_for_operator_staff_only(cast, shop):
    for user in (cast.owner, cast.insurer_member):
        client = signed_in(cast, user)
        assert client.get(CONSOLE).status_code == 404
        client.post("/accounts/logout/")
    analyst = signed_in(cast, cast.analyst)
    assert analyst.get(CONSOLE).status_code == 200
    assert 'href="/operateur/banque/"' in analyst.get("/").content.decode()


def test_the_page_tells_what_is_paid_once_the_hold_ended(cast, shop):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner, now=timezone.now() - 6 * DAY)
    owner = signed_in(cast, cast.owner)
    page = owner.get(PAGE).content.decode()
    assert "Changement en attente" not in page and "Appliqué" in page
    assert Professional.objects.get(pk=shop.pk).masked_iban() == "FR76 •••• 0189"
    assert_no_iban(page)


# --- the attack ------------------------------------------------------------------------------------------


def test_a_hijacked_session_cannot_swap_the_iban_quietly(cast, shop):
    """A cookie stolen from the shop is replayed from elsewhere: the IBAN change asks for the second factor.
    The attacker then relays a phished code too: the change is accepted but held, every owner and the
    operator are told, surveillance raises the takeover alert, and no payment goes to the new IBAN during
    the hold; the real owner cancels it from the shop."""
    secret = cast.secrets[cast.owner.email]
    long_ago = timezone.now() - 40 * DAY
    SecurityEvent.objects.create(tag="login.success", user=cast.owner, ip_address=SHOP, created_at=long_ago)
    KnownDevice.objects.create(
        user=cast.owner, device_hash=hashlib.sha256(b"shop-pc").hexdigest(), first_seen=long_ago
    )
    victim = browser(SHOP)
    victim.cookies[DEVICE_COOKIE] = "shop-pc"
    login(victim, cast.owner, secret, step=-1)
    assert not SecurityEvent.objects.filter(tag="login.new_device").exists()  # the owner's usual place

    thief = browser(ELSEWHERE)
    for name in ("sessionid", DEVICE_COOKIE):
        thief.cookies[name] = victim.cookies[name].value
    assert stepped_up(thief.get(PAGE))
    assert stepped_up(thief.post(CHANGE, {"iban": NEW, "bic": "AGRIFRPP"}))
    assert not BankDetailsChange.objects.exists() and not mail.outbox

    assert thief.post(CODE_PROMPT, {"code": totp_code(secret)}).status_code == 302  # the relayed code
    assert thief.post(CHANGE, {"iban": NEW, "bic": "AGRIFRPP"}).status_code == 302
    change = BankDetailsChange.objects.get()
    assert change.status == "pending"

    owners = [m for m in mail.outbox if m.to == [cast.owner.email]]
    operator = [m for m in mail.outbox if m.to == ["tresorerie@operateur.test"]]
    assert len(owners) == 1 and len(operator) == 1
    assert "Points d'attention" in owners[0].body and "autre adresse" in owners[0].body
    assert "Alerte de surveillance" in operator[0].body
    assert_no_iban(everything_mailed())

    alert = Alert.objects.get(signal="bank_change_suspicious")
    assert alert.severity == "critical" and alert.user == cast.owner and alert.ip_address == ELSEWHERE
    assert alert.organisation == cast.optician
    evidence = alert.evidence["bank_change_suspicious"]
    assert {"session.context_changed", "new_address"} <= set(evidence["signs"])
    assert evidence["iban"] == "FR76 •••• 0189" and evidence["bank_change"] == change.pk
    assert_no_iban(repr(alert.evidence))

    asked = change.requested_at
    for at in (
        asked,
        asked + dt.timedelta(hours=1),
        asked + 2 * DAY,
        asked + 5 * DAY - dt.timedelta(seconds=1),
    ):
        assert paid_at(shop, at) == OLD, at

    page = victim.get(PAGE).content.decode()
    assert "FR76 •••• 0189" in page and "Annuler ce changement" in page
    victim.post(f"/organisation/banque/{change.pk}/annuler/")
    for at in (asked + 5 * DAY, asked + 60 * DAY):
        assert paid_at(shop, at) == OLD
    assert bank_hold.release_due(now=asked + 10 * DAY) == []
    tags = list(SecurityEvent.objects.filter(tag__startswith="bank.").values_list("tag", flat=True))
    assert sorted(tags) == ["bank.change_cancelled", "bank.change_requested"]

    analyst = signed_in(cast, cast.analyst)
    console = analyst.get("/operateur/surveillance/").content.decode()
    assert "peu après un nouvel appareil" in console and "FR76 •••• 0189" in console
    assert_no_iban(console)


def test_the_admin_shows_masks_only_and_cannot_edit_a_change(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    admin = signed_in(cast, cast.admin)
    pages = {
        url: admin.get(url)
        for url in (
            f"/admin/registry/professional/{shop.pk}/change/",
            "/admin/registry/bankdetailschange/",
            f"/admin/registry/bankdetailschange/{change.pk}/change/",
        )
    }
    for url, response in pages.items():
        assert response.status_code == 200, url
        assert_no_iban(response.content.decode())
    assert "FR76 •••• 7830" in pages[f"/admin/registry/professional/{shop.pk}/change/"].content.decode()
    assert "FR76 •••• 0189" in pages["/admin/registry/bankdetailschange/"].content.decode()
    assert admin.get("/admin/registry/bankdetailschange/add/").status_code == 403
    admin.post(f"/admin/registry/bankdetailschange/{change.pk}/delete/", {"post": "yes"})
    assert BankDetailsChange.objects.filter(pk=change.pk, status="pending").exists()


def test_events_pages_show_masks_only(cast, shop):
    change = change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    bank_hold.cancel_change(change, by=cast.owner)
    owner = signed_in(cast, cast.owner)
    page = owner.get("/organisation/evenements/").content.decode()
    assert "Changement d&#x27;IBAN annulé" in page and "Nouvel IBAN demandé" in page  # details stay masked
    assert_no_iban(page)
    analyst = signed_in(cast, cast.analyst)
    assert_no_iban(analyst.get("/operateur/evenements/?tag=bank.change_requested").content.decode())


def test_the_pages_are_in_english_when_the_reader_picks_it(cast, shop):
    change_bank_details(shop, NEW, "AGRIFRPP", by=cast.owner)
    owner = signed_in(cast, cast.owner)
    owner.post("/i18n/setlang/", {"language": "en", "next": PAGE})
    page = owner.get(PAGE).content.decode()
    assert "Change on hold" in page and "Cancel this change" in page and "5-day hold" in page
    assert "Changement en attente" not in page
    response = owner.post(CHANGE, {"iban": NEW[:-1] + "0", "bic": "AGRIFRPP"})
    assert "Invalid IBAN" in response.content.decode()
    admin = signed_in(cast, cast.admin)
    admin.post("/i18n/setlang/", {"language": "en", "next": CONSOLE})
    assert "IBAN changes on hold" in admin.get(CONSOLE).content.decode()
