"""A correct password stopped at the second factor is recorded, and from a new device or address the
person and their organisation's owners are told "someone knows your password" — once per device."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from rempart.accounts.models import SecurityEvent
from rempart.accounts.password_notice import TAG
from rempart.testing import PASSWORD, login

PERSON_SUBJECT = "quelqu'un connaît votre mot de passe"
OWNER_SUBJECT = "le mot de passe d'un membre est connu de quelqu'un"


def type_password(client, user, ip="198.51.100.77", password=PASSWORD):
    return client.post(
        "/accounts/login/",
        {"login": user.email, "password": password},
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT="Curl/8",
    )


def notices(subject: str) -> list:
    return [m for m in mail.outbox if subject in m.subject]


def test_a_correct_password_stopped_at_the_second_factor_is_recorded_and_told(client, cast):
    response = type_password(client, cast.staff)
    assert response.status_code == 302 and response.url.startswith("/accounts/2fa/authenticate/")
    event = SecurityEvent.objects.get(tag=TAG)
    assert (event.user, event.organisation, event.ip_address) == (cast.staff, cast.optician, "198.51.100.77")
    assert event.details["new_device"] and event.details["new_address"] and event.details["notified"]

    [person] = notices(PERSON_SUBJECT)
    assert person.to == [cast.staff.email]
    assert "198.51.100.77" in person.body and "Curl/8" in person.body
    assert "quelqu'un connaît votre mot de passe" in person.body  # French first …
    assert "someone knows your password" in person.body.lower()  # … and English
    assert "/accounts/password/change/" in person.body
    [owners] = notices(OWNER_SUBJECT)
    assert owners.to == [cast.owner.email] and cast.staff.email in owners.body
    assert "/organisation/membres/" in owners.body


def test_the_page_at_the_keyboard_does_not_change(cast, client_class):
    def second_factor_page(user, ip):
        browser = client_class()
        first = type_password(browser, user, ip=ip)
        page = browser.get(first.url).content.decode()
        page = re.sub(r'value="[^"]{20,}"|"challenge": "[^"]+"', "", page)  # CSRF token, WebAuthn challenge
        return first.status_code, first.url, sorted(first.cookies), page

    told = second_factor_page(cast.staff, "198.51.100.10")
    assert len(mail.outbox) == 2
    mail.outbox.clear()
    again = second_factor_page(cast.staff, "198.51.100.10")  # same address, no email this time
    assert not mail.outbox
    assert told == again


def test_a_known_device_and_address_records_without_telling(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])  # device cookie, address 127.0.0.1 known
    client.post("/accounts/logout/")
    mail.outbox.clear()
    client.post("/accounts/login/", {"login": cast.staff.email, "password": PASSWORD})
    event = SecurityEvent.objects.filter(tag=TAG).latest("created_at")
    assert (
        not event.details["new_device"] and not event.details["new_address"] and not event.details["notified"]
    )
    assert not mail.outbox


def test_a_known_device_from_a_new_address_is_told(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    client.post("/accounts/logout/")
    mail.outbox.clear()
    type_password(client, cast.staff, ip="203.0.113.99")
    event = SecurityEvent.objects.filter(tag=TAG).latest("created_at")
    assert not event.details["new_device"] and event.details["new_address"] and event.details["notified"]
    assert len(notices(PERSON_SUBJECT)) == 1


def test_once_per_device_within_the_period(cast, client_class):
    for _ in range(3):
        type_password(client_class(), cast.owner, ip="198.51.100.5")
    assert SecurityEvent.objects.filter(tag=TAG, user=cast.owner).count() == 3  # each one recorded
    assert len(notices(PERSON_SUBJECT)) == 1
    assert not notices(OWNER_SUBJECT)  # the owner is the person: told once, as such

    SecurityEvent.objects.filter(tag=TAG).update(created_at=timezone.now() - dt.timedelta(hours=2))
    type_password(client_class(), cast.owner, ip="198.51.100.5")
    assert len(notices(PERSON_SUBJECT)) == 2


def test_changing_address_cannot_flood_the_mailbox(cast, client_class, settings):
    settings.REMPART_PASSWORD_NOTICE = {"per_device_seconds": 3600, "max_per_day": 5}
    for n in range(8):
        type_password(client_class(), cast.staff, ip=f"198.51.100.{n + 1}")
    assert SecurityEvent.objects.filter(tag=TAG).count() == 8
    assert len(notices(PERSON_SUBJECT)) == 5


def test_a_wrong_password_is_not_a_known_password(client, cast):
    type_password(client, cast.staff, password="not the password at all")
    assert not SecurityEvent.objects.filter(tag=TAG).exists()
    assert not notices(PERSON_SUBJECT)


def test_the_login_still_completes_with_the_second_factor(cast):
    browser = Client(REMOTE_ADDR="198.51.100.8")
    response = login(browser, cast.staff, cast.secrets[cast.staff.email])
    assert response.status_code == 302 and browser.get("/").status_code == 200
    tags = list(
        SecurityEvent.objects.filter(user=cast.staff).order_by("created_at").values_list("tag", flat=True)
    )
    assert tags[-2:] == [TAG, "login.success"]


def test_an_operator_analyst_is_told_alone(client, cast):
    type_password(client, cast.analyst)
    [person] = mail.outbox
    assert person.to == [cast.analyst.email] and PERSON_SUBJECT in person.subject


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_owner_sees_the_event_in_the_organisation_events(client_class, cast, language):
    type_password(client_class(), cast.staff)
    owner = client_class()
    login(owner, cast.owner, cast.secrets[cast.owner.email])
    owner.post("/i18n/setlang/", {"language": language, "next": "/"})
    page = owner.get("/organisation/evenements/").content.decode()
    expected = {"fr": "Mot de passe correct, second facteur demandé", "en": "Correct password, second factor"}
    assert expected[language] in page
