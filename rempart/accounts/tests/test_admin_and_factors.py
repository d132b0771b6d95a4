"""Only operator staff reach the admin, with a second factor; factors are hardened beyond allauth's defaults."""

import json

from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib import admin
from django.contrib.auth.hashers import identify_hasher

from rempart.registry.models import Beneficiary
from rempart.testing import PASSWORD, login


def test_operator_admin_with_second_factor_reaches_the_admin(client, cast):
    login(client, cast.admin, cast.secrets[cast.admin.email])
    assert client.get("/admin/").status_code == 200


def test_a_session_without_second_factor_does_not_reach_the_admin(client, cast):
    client.force_login(cast.admin)  # bypasses the real login: no second-factor record in the session
    response = client.get("/admin/")
    assert response.status_code == 302


def test_professional_owner_never_reaches_the_admin(client, cast):
    cast.owner.is_staff = True  # even if someone flipped the flag
    cast.owner.save()
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.get("/admin/").status_code == 302


def test_beneficiaries_are_not_in_the_admin():
    assert Beneficiary not in admin.site._registry


def test_passwords_are_hashed_with_argon2id(db, settings):
    from django.contrib.auth.hashers import make_password

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    encoded = make_password("a long enough passphrase")
    assert identify_hasher(encoded).algorithm == "argon2"
    assert encoded.startswith("argon2$argon2id$")


def test_recovery_codes_are_stored_hashed_and_work_once(client, cast):
    rc = RecoveryCodes.activate(cast.owner)
    codes = rc.get_unused_codes()
    assert len(codes) == 10 and all(len(c) == 10 and c.isdigit() for c in codes)
    rc.mark_as_viewed()  # shown once: from now on only hashes remain
    stored = json.dumps(Authenticator.objects.get(pk=rc.instance.pk).data)
    assert not any(code in stored for code in codes)
    again = Authenticator.objects.get(pk=rc.instance.pk).wrap()
    assert set(again.get_unused_codes()) == {"*" * 10}

    client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 302
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 200  # used
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[1]}).status_code == 302
    from rempart.accounts.models import SecurityEvent

    assert SecurityEvent.objects.filter(user=cast.owner, tag="mfa.recovery_code_used").count() == 2


def test_regenerating_recovery_codes_voids_the_old_ones(client, cast):
    old = RecoveryCodes.activate(cast.owner).get_unused_codes()
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.post("/accounts/2fa/recovery-codes/generate/").status_code == 302
    new_auth = Authenticator.objects.get(user=cast.owner, type="recovery_codes")
    assert not new_auth.wrap().validate_code(old[0])


def test_totp_secret_is_encrypted_at_rest(cast):
    totp = Authenticator.objects.get(user=cast.owner, type="totp")
    assert cast.secrets[cast.owner.email] not in json.dumps(totp.data)


def test_newcomer_enrols_totp_from_the_qr_page_and_gets_recovery_codes(client, cast):
    import re

    import pyotp

    from rempart.accounts import invitations
    from rempart.accounts.models import Role, User

    _inv, raw = invitations.invite(cast.optician, "totp@shop.test", Role.STAFF, cast.owner)
    client.post(f"/invitation/{raw}/", {"full_name": "T", "password1": PASSWORD, "password2": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    assert "data:image/svg+xml" in page  # the QR code
    secret = re.search(r'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"', page) or re.search(
        r'value="([A-Z2-7]{32})"', page
    )
    secret = secret.group(1)
    assert client.post("/accounts/2fa/totp/activate/", {"code": "123456"}).status_code == 200
    response = client.post("/accounts/2fa/totp/activate/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    user = User.objects.get(email="totp@shop.test")
    assert Authenticator.objects.filter(user=user, type="totp").exists()
    codes_page = client.get(response.url).content.decode()
    assert len(re.findall(r"\b\d{10}\b", codes_page)) == 10  # shown once
    assert len(re.findall(r"\b\d{10}\b", client.get(response.url).content.decode())) == 0
    assert client.get("/").status_code == 200


def test_admin_pages_never_show_nir(client, cast):
    login(client, cast.admin, cast.secrets[cast.admin.email])
    assert client.get("/admin/registry/").status_code == 200
    assert b"nir" not in client.get("/admin/registry/professional/").content.lower()
