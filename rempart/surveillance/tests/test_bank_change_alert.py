"""Issue 14: an IBAN change that follows a new device or address, or comes shortly after a password reset or a
second-factor change, is the hijacked-account pattern: surveillance raises a critical alert, the notices say
why, and the thresholds are the policy's."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.utils import timezone

from rempart.accounts.models import KnownDevice, SecurityEvent
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.registry.bank_details import change_bank_details
from rempart.surveillance.bank_change import SIGNAL
from rempart.surveillance.models import Alert
from rempart.testing import PASSWORD, login, totp_code

OLD = "FR7630004000010001234567830"
NEW = "FR7630006000011234567890189"
MULE = "FR7630001007941234567890185"
SHOP = "203.0.113.7"
ELSEWHERE = "198.51.100.66"
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def hold_settings(settings):
    settings.REMPART_OPERATOR_ALERT_EMAIL = ["tresorerie@operateur.test"]


@pytest.fixture
def shop(cast):
    professional = cast.optician.professional
    professional.set_iban(OLD)
    professional.bic = "BNPAFRPP"
    professional.save()
    return professional


@pytest.fixture
def usual(cast):
    """The owner's history: logging in from the shop's computer for months."""
    long_ago = timezone.now() - 90 * DAY
    SecurityEvent.objects.create(tag="login.success", user=cast.owner, ip_address=SHOP, created_at=long_ago)
    KnownDevice.objects.create(
        user=cast.owner, device_hash=hashlib.sha256(b"shop-pc").hexdigest(), first_seen=long_ago
    )


def request_from(address: str, device: str | None = "shop-pc"):
    request = RequestFactory().post("/organisation/banque/modifier/", REMOTE_ADDR=address)
    if device:
        request.COOKIES[DEVICE_COOKIE] = device
    return request


def happened(user, tag: str, days_ago: float, **fields) -> SecurityEvent:
    return SecurityEvent.objects.create(
        tag=tag, user=user, created_at=timezone.now() - dt.timedelta(days=days_ago), **fields
    )


def change(cast, shop, request=None, iban: str = NEW):
    return change_bank_details(shop, iban, "AGRIFRPP", by=cast.owner, request=request or request_from(SHOP))


def the_alert() -> Alert:
    return Alert.objects.get(signal=SIGNAL)


def test_an_owner_at_the_usual_place_raises_nothing(cast, shop, usual):
    change(cast, shop)
    assert not Alert.objects.exists()
    assert "Points d'attention" not in mail.outbox[0].body


@pytest.mark.parametrize(
    ("tag", "days_ago"),
    [
        ("login.new_device", 2),
        ("session.context_changed", 0.1),
        ("account.password_reset", 6.9),
        ("account.password_changed", 1),
        ("mfa.added", 3),
        ("mfa.removed", 3),
        ("mfa.recovery_codes_generated", 0.5),
    ],
)
def test_a_change_shortly_after_a_new_device_or_a_credentials_change_raises_a_critical_alert(
    cast, shop, usual, tag, days_ago
):
    happened(cast.owner, tag, days_ago)
    request = change(cast, shop)
    alert = the_alert()
    assert alert.severity == "critical" and alert.user == cast.owner and alert.organisation == cast.optician
    evidence = alert.evidence[SIGNAL]
    assert evidence["signs"] == [tag] and evidence["bank_change"] == request.pk
    assert evidence["iban"] == "FR76 •••• 0189" and NEW not in repr(alert.evidence)
    owners = mail.outbox[0]
    assert "Points d'attention" in owners.body and owners.to == [cast.owner.email]
    assert "Alerte de surveillance" in mail.outbox[1].body


@pytest.mark.parametrize(("tag", "days_ago"), [("login.new_device", 8), ("account.password_reset", 7.5)])
def test_older_signs_raise_nothing(cast, shop, usual, tag, days_ago):
    happened(cast.owner, tag, days_ago)
    change(cast, shop)
    assert not Alert.objects.exists()


def test_the_thresholds_are_the_policys(cast, shop, usual, settings):
    settings.REMPART_SURVEILLANCE = {"bank_change_credentials_days": 2, "bank_change_new_context_days": 14}
    happened(cast.owner, "account.password_reset", 3)
    change(cast, shop)
    assert not Alert.objects.exists()
    happened(cast.owner, "login.new_device", 10)
    change(cast, shop, iban=MULE)
    assert the_alert().evidence[SIGNAL]["signs"] == ["login.new_device"]


def test_someone_elses_signs_do_not_count(cast, shop, usual):
    happened(cast.staff, "account.password_reset", 1)
    happened(cast.outsider, "login.new_device", 1)
    change(cast, shop)
    assert not Alert.objects.exists()


def test_an_address_or_a_device_the_owner_never_used_raises_the_alert(cast, shop, usual):
    change(cast, shop, request_from(ELSEWHERE))
    assert the_alert().evidence[SIGNAL]["signs"] == ["new_address"]
    assert the_alert().ip_address == ELSEWHERE
    Alert.objects.all().delete()
    change(cast, shop, request_from(SHOP, device="another-pc"), iban=MULE)
    assert the_alert().evidence[SIGNAL]["signs"] == ["new_device"]


def test_a_new_owner_is_not_flagged_for_having_no_history(cast, shop):
    """Everything is new to someone who just joined: factors enrolled at the invitation are not a change."""
    accepted = happened(cast.owner, "invitation.accepted", 1)
    happened(cast.owner, "login.success", 1, ip_address=SHOP)
    SecurityEvent.objects.create(
        tag="mfa.added", user=cast.owner, created_at=accepted.created_at + dt.timedelta(minutes=2)
    )
    change(cast, shop, request_from(SHOP, device=None))
    assert not Alert.objects.exists()


def test_an_iban_already_given_by_another_organisation_raises_the_alert(cast, shop, usual):
    other = cast.other_shop.professional
    other.set_iban(MULE)
    other.save()
    change(cast, shop, iban=MULE)
    assert the_alert().evidence[SIGNAL]["signs"] == ["iban_shared"]


def test_nothing_is_raised_when_surveillance_is_off(cast, shop, usual, settings):
    settings.REMPART_SURVEILLANCE_ENABLED = False
    happened(cast.owner, "account.password_reset", 1)
    change(cast, shop)
    assert not Alert.objects.exists()


def test_a_phished_login_from_a_new_device_then_an_iban_change_over_http(cast, shop, usual):
    """Real-time phishing: password and code relayed from the attacker's own browser. The login is from a new
    device and address (the owner is emailed); the change that follows is held and alerted."""
    secret = cast.secrets[cast.owner.email]
    attacker = Client(REMOTE_ADDR=ELSEWHERE, HTTP_USER_AGENT="curl/8.5")
    login(attacker, cast.owner, secret)
    assert SecurityEvent.objects.filter(tag="login.new_device", user=cast.owner).exists()
    response = attacker.post("/organisation/banque/modifier/", {"iban": NEW, "bic": "AGRIFRPP"})
    assert response.status_code == 302
    signs = set(the_alert().evidence[SIGNAL]["signs"])
    assert {"login.new_device", "new_address", "new_device"} <= signs
    assert the_alert().ip_address == ELSEWHERE
    # The owner's own session sees the alert's reason in the notice and cancels.
    owner = Client(REMOTE_ADDR=SHOP)
    owner.cookies[DEVICE_COOKIE] = "shop-pc"
    assert (
        owner.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD}).status_code == 302
    )
    owner.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, 1)})
    pending = cast.optician.professional.bank_changes.get()
    owner.post(f"/organisation/banque/{pending.pk}/annuler/")
    pending.refresh_from_db()
    assert pending.status == "cancelled"
    notice = next(m for m in mail.outbox if "demande de changement" in m.subject)
    assert "nouvel appareil" in notice.body and NEW not in notice.body
