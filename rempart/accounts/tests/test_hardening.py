"""Findings of the security review, each pinned by a test."""

import pyotp
import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from rempart.accounts import invitations, tokens
from rempart.accounts.models import Membership, Organisation, Role, SecurityEvent, User
from rempart.testing import PASSWORD, login, totp_code

from .helpers import age_second_factor


def _start(client, user):
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})


def test_guessing_second_factor_codes_slows_down_then_locks_and_tells_the_owner(client, cast):
    _start(client, cast.owner)
    from rempart.accounts.models import LoginThrottle

    for _ in range(10):
        LoginThrottle.objects.filter(key=f"mfa:{cast.owner.pk}").update(blocked_until=None)
        client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    locked = [m for m in mail.outbox if "second facteur" in m.subject]
    assert len(locked) == 1 and locked[0].to == [cast.owner.email]
    # Even the right code is refused while locked.
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(cast.secrets[cast.owner.email])})
    assert response.status_code == 200 and "Trop de codes" in response.content.decode()
    assert client.get("/").status_code == 302


def test_a_wrong_code_costs_a_growing_delay(client, cast):
    _start(client, cast.owner)
    for _ in range(3):
        client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(cast.secrets[cast.owner.email])})
    assert "Trop de codes" in response.content.decode()


def test_the_code_that_confirmed_enrolment_cannot_log_in(client, client_class, cast):
    import re

    _inv, raw = invitations.invite(cast.optician, "enrol@shop.test", Role.STAFF, cast.owner)
    client.post(f"/invitation/{raw}/", {"full_name": "E", "password1": PASSWORD, "password2": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    secret = re.search(r'value="([A-Z2-7]{32})"', page).group(1)
    code = pyotp.TOTP(secret).now()
    assert client.post("/accounts/2fa/totp/activate/", {"code": code}).status_code == 302
    other = client_class()
    other.post("/accounts/login/", {"login": "enrol@shop.test", "password": PASSWORD})
    assert other.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 200


def test_members_of_a_suspended_organisation_are_signed_out(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    Organisation.objects.filter(pk=cast.optician.pk).update(status="suspended")
    response = client.get("/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_analyst_suspends_and_restores_an_organisation(client, cast):
    token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    client.post(f"/operateur/organisations/{cast.optician.pk}/suspendre/")
    assert client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 403
    age_second_factor(client, 400)
    assert "reauthenticate" in client.post(f"/operateur/organisations/{cast.optician.pk}/retablir/").url
    age_second_factor(client, 0)
    client.post(f"/operateur/organisations/{cast.optician.pk}/retablir/")
    assert client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    tags = set(SecurityEvent.objects.filter(organisation=cast.optician).values_list("tag", flat=True))
    assert {"organisation.suspended", "organisation.restored", "token.rejected"} <= tags


def test_operator_support_cannot_remove_or_demote_an_admin(client, cast):
    support = User.objects.create_user("support@operator.test", PASSWORD)
    Membership.objects.create(user=support, organisation=cast.operator, role=Role.SUPPORT)
    from allauth.mfa.totp.internal.auth import TOTP

    secret = pyotp.random_base32()
    TOTP.activate(support, secret)
    login(client, support, secret)
    admin_membership = cast.admin.membership
    client.post(f"/organisation/membres/{admin_membership.pk}/retirer/", {"confirm": "yes"})
    client.post(f"/organisation/membres/{admin_membership.pk}/role/", {"role": Role.SUPPORT})
    cast.admin.refresh_from_db()
    assert cast.admin.is_active and cast.admin.membership.role == Role.ADMIN


def test_demoting_an_operator_admin_takes_away_the_superuser_flag(client, cast):
    second_admin = User.objects.create_user(
        "admin2@operator.test", PASSWORD, is_staff=True, is_superuser=True
    )
    Membership.objects.create(user=second_admin, organisation=cast.operator, role=Role.ADMIN)
    login(client, cast.admin, cast.secrets[cast.admin.email])
    client.post(f"/organisation/membres/{second_admin.membership.pk}/role/", {"role": Role.SUPPORT})
    second_admin.refresh_from_db()
    assert second_admin.membership.role == Role.SUPPORT
    assert second_admin.is_staff and not second_admin.is_superuser


def test_a_removed_member_gets_the_wrong_password_answer_and_can_be_invited_back(client, client_class, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    client.post(f"/organisation/membres/{cast.staff.membership.pk}/retirer/", {"confirm": "yes"})
    former = client_class()
    response = former.post("/accounts/login/", {"login": cast.staff.email, "password": PASSWORD})
    assert response.status_code == 200  # same page as a wrong password, no "inactive account" page
    assert "inactive" not in response.content.decode().lower()
    _inv, raw = invitations.invite(cast.optician, cast.staff.email, Role.STAFF, cast.owner)
    accepted = former.post(
        f"/invitation/{raw}/", {"full_name": "Back", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert accepted.status_code == 302 and accepted.url == "/compte/second-facteur/"
    cast.staff.refresh_from_db()
    assert cast.staff.is_active and cast.staff.membership.organisation == cast.optician


def test_security_events_cannot_be_deleted_from_the_admin(client, cast):
    event = SecurityEvent.objects.create(tag="login.success", user=cast.owner)
    login(client, cast.admin, cast.secrets[cast.admin.email])
    assert client.get(f"/admin/accounts/securityevent/{event.pk}/delete/").status_code == 403
    assert (
        client.post(f"/admin/accounts/securityevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert SecurityEvent.objects.filter(pk=event.pk).exists()


def test_demo_code_refuses_any_account_but_the_demo_ones(cast):
    with pytest.raises(CommandError):
        call_command("demo_code", cast.owner.email)


@pytest.mark.parametrize(
    "method, url, data",
    [
        ("post", "/accounts/2fa/totp/deactivate/", {}),
        ("get", "/accounts/2fa/webauthn/add/", None),
        ("post", "/accounts/2fa/recovery-codes/generate/", {}),
        ("post", "role", {"role": Role.OWNER}),
        ("post", "remove", {}),
    ],
)
def test_factor_and_member_changes_need_a_fresh_second_factor(client, cast, method, url, data):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    age_second_factor(client, 301)
    pk = cast.staff.membership.pk
    url = {"role": f"/organisation/membres/{pk}/role/", "remove": f"/organisation/membres/{pk}/retirer/"}.get(
        url, url
    )
    response = getattr(client, method)(url, data) if data is not None else client.get(url)
    assert response.status_code == 302 and "reauthenticate" in response.url
    cast.staff.refresh_from_db()
    assert cast.staff.is_active and cast.staff.membership.role == Role.STAFF


def test_step_up_is_recorded(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    age_second_factor(client, 400)
    client.post("/accounts/2fa/reauthenticate/", {"code": totp_code(cast.secrets[cast.owner.email], 1)})
    assert SecurityEvent.objects.filter(user=cast.owner, tag="mfa.step_up").exists()


def test_suspensions_page_offers_both_kinds_of_suspension(client, cast):
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    page = client.get("/operateur/suspensions/").content.decode()
    body = page.split("<main>", 1)[1]
    assert cast.optician.name in body and f"/operateur/organisations/{cast.optician.pk}/suspendre/" in body
    assert "<title>Suspensions" in page
    client.post("/operateur/comptes/suspendre/", {"email": cast.staff.email.upper()})
    cast.staff.refresh_from_db()
    assert cast.staff.suspended_at is not None


def test_second_factors_and_email_addresses_are_read_only_in_the_admin(client, cast):
    from allauth.mfa.models import Authenticator

    factor = Authenticator.objects.get(user=cast.owner, type="totp")
    login(client, cast.admin, cast.secrets[cast.admin.email])
    page = client.get(f"/admin/mfa/authenticator/{factor.pk}/change/")
    assert page.status_code == 200 and "secret" not in page.content.decode()
    assert client.post(f"/admin/mfa/authenticator/{factor.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/account/emailaddress/add/").status_code == 403


def test_no_invitation_into_a_suspended_organisation(cast):
    _inv, raw = invitations.invite(cast.optician, "late@shop.test", Role.STAFF, cast.owner)
    Organisation.objects.filter(pk=cast.optician.pk).update(status="suspended")
    with pytest.raises(invitations.InvitationError):
        invitations.invite(
            Organisation.objects.get(pk=cast.optician.pk), "x@shop.test", Role.STAFF, cast.owner
        )
    with pytest.raises(invitations.InvitationError):
        invitations.accept(raw, PASSWORD, "Late")
