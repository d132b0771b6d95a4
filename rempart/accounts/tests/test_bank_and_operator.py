"""Changing the account Rempart pays, and restoring a suspended person: both need a fresh second factor."""

from django.core import mail
from django.utils import timezone

from rempart.accounts.models import SecurityEvent
from rempart.registry.models import Professional
from rempart.testing import login

from .helpers import age_second_factor

NEW_IBAN = "FR7630004000010001234567830"


def test_owner_changes_iban_with_step_up_and_every_owner_is_told(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    response = client.post("/organisation/banque/modifier/", {"iban": NEW_IBAN, "bic": "BNPAFRPP"})
    assert response.status_code == 302
    professional = Professional.objects.get(pk=cast.optician.professional_id)
    change = professional.bank_changes.get()  # on hold (issue 14): rempart/registry/tests/test_iban_hold.py
    assert change.iban_masked.endswith("7830") and not professional.iban_cipher
    assert NEW_IBAN.encode() not in bytes(change.iban_cipher)
    notice = [m for m in mail.outbox if "coordonnées bancaires" in m.subject]
    assert notice and notice[0].to == [cast.owner.email] and NEW_IBAN not in notice[0].body
    assert SecurityEvent.objects.filter(tag="bank.change_requested", organisation=cast.optician).exists()
    assert NEW_IBAN not in client.get("/organisation/banque/").content.decode()


def test_iban_change_needs_a_fresh_second_factor(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    age_second_factor(client, 400)
    response = client.post("/organisation/banque/modifier/", {"iban": NEW_IBAN, "bic": "BNPAFRPP"})
    assert "reauthenticate" in response.url
    assert not Professional.objects.get(pk=cast.optician.professional_id).bank_changes.exists()


def test_invalid_iban_is_refused_without_echoing_it(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    bad = "FR7630004000010001234567831"
    response = client.post("/organisation/banque/modifier/", {"iban": bad, "bic": "BNPAFRPP"})
    assert response.status_code == 400
    assert "IBAN" in response.content.decode() and bad not in response.content.decode()


def test_staff_cannot_see_or_change_bank_details(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    assert client.get("/organisation/banque/").status_code == 404
    assert (
        client.post("/organisation/banque/modifier/", {"iban": NEW_IBAN, "bic": "BNPAFRPP"}).status_code
        == 404
    )


def test_analyst_suspends_then_restores_with_step_up(client, client_class, cast):
    victim = client_class()
    login(victim, cast.staff, cast.secrets[cast.staff.email])
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    client.post(f"/operateur/comptes/{cast.staff.pk}/suspendre/")
    assert victim.get("/").status_code == 302  # signed out at once
    cast.staff.refresh_from_db()
    assert cast.staff.suspended_at is not None
    age_second_factor(client, 400)
    response = client.post(f"/operateur/comptes/{cast.staff.pk}/retablir/")
    assert "reauthenticate" in response.url
    cast.staff.refresh_from_db()
    assert cast.staff.suspended_at is not None
    age_second_factor(client, 0)
    client.post(f"/operateur/comptes/{cast.staff.pk}/retablir/")
    cast.staff.refresh_from_db()
    assert cast.staff.suspended_at is None
    assert SecurityEvent.objects.filter(tag="account.restored", user=cast.staff).exists()


def test_only_operator_security_staff_reach_suspensions(client, cast):
    cast.staff.suspended_at = timezone.now()
    cast.staff.save()
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.get("/operateur/suspensions/").status_code == 404
    assert client.post(f"/operateur/comptes/{cast.staff.pk}/retablir/").status_code == 404


def test_operator_staff_see_every_organisations_events_and_owners_do_not(client, cast):
    from rempart.accounts.events import record_event

    record_event("token.created", user=cast.outsider, token="aaaa")
    record_event("token.created", user=cast.owner, token="bbbb")
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    page = client.get("/operateur/evenements/?tag=token.created").content.decode()
    assert cast.outsider.email in page and cast.owner.email in page
    filtered = client.get(f"/operateur/evenements/?organisation={cast.other_shop.pk}").content.decode()
    assert cast.outsider.email in filtered and cast.owner.email not in filtered
    client.post("/accounts/logout/")
    login(client, cast.owner, cast.secrets[cast.owner.email], step=1)
    assert client.get("/operateur/evenements/").status_code == 404
