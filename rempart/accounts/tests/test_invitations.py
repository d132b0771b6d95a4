"""No self sign-up: a single-use, expiring invitation, then a second factor before anything else."""

import datetime as dt
import re
import time

from django.core import mail
from django.utils import timezone

from rempart.accounts import invitations
from rempart.accounts.models import Invitation, Membership, Role, User
from rempart.testing import login

from .helpers import age_second_factor

NEW_PASSWORD = "une phrase de passe assez longue"


def _link_from_outbox() -> str:
    body = mail.outbox[-1].body
    return re.search(r"http://\S+/invitation/(\S+)/", body).group(1)


def test_owner_invites_staff_who_must_enrol_a_second_factor_first(client, client_class, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    response = client.post("/organisation/membres/inviter/", {"email": "new@shop.test", "role": Role.STAFF})
    assert response.status_code == 302
    assert mail.outbox[-1].to == ["new@shop.test"]
    token = _link_from_outbox()
    assert not Invitation.objects.filter(token_hash=token).exists()  # only its hash is stored

    newcomer = client_class()
    page = newcomer.get(f"/invitation/{token}/")
    assert page.status_code == 200 and cast.optician.name in page.content.decode()
    accepted = newcomer.post(
        f"/invitation/{token}/",
        {"full_name": "Nouvelle", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert accepted.status_code == 302 and accepted.url == "/compte/second-facteur/"
    user = User.objects.get(email="new@shop.test")
    assert user.membership.organisation == cast.optician and user.membership.role == Role.STAFF
    # Before a factor is enrolled, every other page leads back to enrolment.
    for url in ["/", "/compte/securite/", "/organisation/membres/", "/admin/"]:
        response = newcomer.get(url)
        assert response.status_code == 302 and response.url == "/compte/second-facteur/", url
    assert newcomer.get("/accounts/2fa/totp/activate/").status_code == 200


def test_an_invitation_works_once(client, cast):
    _invitation, raw = invitations.invite(cast.optician, "once@shop.test", Role.STAFF, cast.owner)
    data = {"full_name": "A", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert client.post(f"/invitation/{raw}/", data).status_code == 302
    client.post("/accounts/logout/")
    again = client.post(f"/invitation/{raw}/", data)
    assert again.status_code == 404
    assert "pas valable" in again.content.decode()


def test_an_expired_invitation_is_refused(client, cast):
    invitation, raw = invitations.invite(cast.optician, "late@shop.test", Role.STAFF, cast.owner)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(f"/invitation/{raw}/").status_code == 404
    assert not User.objects.filter(email="late@shop.test").exists()


def test_invitations_expire_after_72_hours_by_default(cast):
    invitation, _raw = invitations.invite(cast.optician, "x@shop.test", Role.STAFF, cast.owner)
    assert abs((invitation.expires_at - invitation.created_at) - dt.timedelta(hours=72)) < dt.timedelta(
        seconds=5
    )


def test_weak_passwords_are_refused(client, cast):
    _invitation, raw = invitations.invite(cast.optician, "weak@shop.test", Role.STAFF, cast.owner)
    for weak in ["court", "qwerty123456", "1q2w3e4r5t6y"]:
        response = client.post(
            f"/invitation/{raw}/", {"full_name": "W", "password1": weak, "password2": weak}
        )
        assert response.status_code == 200, weak
        assert not User.objects.filter(email="weak@shop.test").exists()
    long_plain = "tout en minuscules sans chiffres"
    ok = client.post(
        f"/invitation/{raw}/", {"full_name": "W", "password1": long_plain, "password2": long_plain}
    )
    assert ok.status_code == 302  # no composition rules


def test_invitation_link_is_useless_after_revocation(client, cast):
    invitation, raw = invitations.invite(cast.optician, "rev@shop.test", Role.STAFF, cast.owner)
    invitations.revoke(invitation)
    assert client.get(f"/invitation/{raw}/").status_code == 404


def test_unenrolled_account_cannot_log_in_with_password_after_the_enrolment_window(
    client, client_class, cast
):
    _invitation, raw = invitations.invite(cast.optician, "slow@shop.test", Role.STAFF, cast.owner)
    client.post(
        f"/invitation/{raw}/", {"full_name": "S", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    session = client.session
    session["rempart_enrolment_until"] = time.time() - 1
    session.save()
    assert client.get("/compte/second-facteur/").status_code == 302
    # A phished password of a never-enrolled account opens nothing either: no one can enrol a factor with it.
    attacker = client_class()
    response = attacker.post(
        "/accounts/login/", {"login": "slow@shop.test", "password": NEW_PASSWORD}, follow=True
    )
    assert attacker.get("/accounts/2fa/totp/activate/").status_code == 302
    assert "second facteur" in response.content.decode()


def test_staff_cannot_invite(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    assert client.get("/organisation/membres/").status_code == 404
    assert (
        client.post("/organisation/membres/inviter/", {"email": "x@y.test", "role": "staff"}).status_code
        == 404
    )


def test_owner_cannot_invite_an_operator_role_or_into_another_organisation(cast):
    import pytest

    with pytest.raises(invitations.InvitationError):
        invitations.invite(cast.optician, "evil@shop.test", Role.ADMIN, cast.owner)
    with pytest.raises(invitations.InvitationError):
        invitations.invite(cast.other_shop, "evil@shop.test", Role.STAFF, cast.owner)
    with pytest.raises(invitations.InvitationError):
        invitations.invite(cast.optician, cast.outsider.email, Role.STAFF, cast.owner)


def test_inviting_asks_for_the_second_factor_again_after_five_minutes(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    age_second_factor(client, 301)
    response = client.post("/organisation/membres/inviter/", {"email": "later@shop.test", "role": Role.STAFF})
    assert response.status_code == 302 and response.url.startswith("/accounts/2fa/reauthenticate/")
    assert not Invitation.objects.filter(email="later@shop.test").exists()


def test_role_change_is_recorded_and_needs_the_same_organisation(client, cast):
    from rempart.accounts.models import SecurityEvent

    login(client, cast.owner, cast.secrets[cast.owner.email])
    staff_membership = cast.staff.membership
    client.post(f"/organisation/membres/{staff_membership.pk}/role/", {"role": Role.OWNER})
    assert Membership.objects.get(pk=staff_membership.pk).role == Role.OWNER
    assert SecurityEvent.objects.filter(tag="member.role_changed", organisation=cast.optician).exists()
    outsider_membership = cast.outsider.membership
    assert (
        client.post(f"/organisation/membres/{outsider_membership.pk}/role/", {"role": "staff"}).status_code
        == 404
    )


def test_operator_onboarding_creates_the_organisation_and_invites_its_owner(cast):
    from django.core.management import call_command

    from rempart.registry.models import Professional

    call_command(
        "create_organisation",
        kind="professional",
        finess="750000036",
        name="Audition Neuve",
        owner_email="boss@audio.test",
    )
    professional = Professional.objects.get(finess="750000036")
    assert professional.organisation.name == "Audition Neuve"
    assert Invitation.objects.get(email="boss@audio.test").role == Role.OWNER
    assert mail.outbox[-1].to == ["boss@audio.test"]
