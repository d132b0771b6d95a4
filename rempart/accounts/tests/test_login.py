"""A phished password alone opens nothing; the second factor cannot be skipped or replayed."""

import time

import pytest
from django.core import mail

from rempart.accounts.models import LoginThrottle, SecurityEvent
from rempart.testing import PASSWORD, login, totp_code

PROTECTED = ["/", "/compte/securite/", "/organisation/membres/", "/organisation/jetons/", "/admin/"]


def test_correct_password_alone_reaches_only_the_second_factor_page(client, cast):
    response = client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.url.startswith("/accounts/2fa/authenticate/")
    for url in PROTECTED:
        page = client.get(url)
        assert page.status_code == 302, url
        assert "/login/" in page.url or page.url.startswith("/accounts/2fa/authenticate"), url
    assert client.get("/api/v1/whoami").status_code == 401


def test_password_and_totp_open_the_portal(client, cast):
    response = login(client, cast.owner, cast.secrets[cast.owner.email])
    assert response.status_code == 302
    home = client.get("/")
    assert home.status_code == 200
    assert cast.optician.name in home.content.decode()
    assert SecurityEvent.objects.filter(user=cast.owner, tag="login.success").exists()


def test_wrong_second_factor_code_is_refused_and_recorded(client, cast):
    client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    response = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert response.status_code == 200
    assert client.get("/").status_code == 302
    assert SecurityEvent.objects.filter(user=cast.owner, tag="mfa.failed").exists()


def test_a_totp_code_is_accepted_once_only(client, cast, django_user_model):
    secret = cast.secrets[cast.owner.email]
    code = totp_code(secret)
    client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert client.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302
    client.post("/accounts/logout/")
    client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    replay = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert replay.status_code == 200  # the form again, with an error
    assert client.get("/").status_code == 302


def test_totp_allows_one_step_of_clock_drift_not_two(client, cast):
    secret = cast.secrets[cast.owner.email]
    client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, -2)}).status_code == 200
    assert client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, -1)}).status_code == 302


def _fail(client, email, times):
    for _ in range(times):
        client.post("/accounts/login/", {"login": email, "password": "wrong password here"})


def test_failed_logins_are_throttled_with_the_same_answer_for_unknown_emails(client, cast):
    _fail(client, cast.owner.email, 4)
    known = client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert known.status_code == 200
    assert "Trop de tentatives" in known.content.decode()
    _fail(client, "nobody@nowhere.test", 4)
    unknown = client.post("/accounts/login/", {"login": "nobody@nowhere.test", "password": PASSWORD})
    assert "Trop de tentatives" in unknown.content.decode()


def test_delays_grow_with_each_failure(cast):
    from rempart.accounts.throttle import delay_after

    delays = [delay_after(n, "account").total_seconds() for n in range(1, 9)]
    assert delays[:2] == [0, 0]
    assert all(later >= earlier for earlier, later in zip(delays, delays[1:], strict=False))
    assert delays[-1] > delays[3] > 0


def test_lockout_emails_the_account_owner_once(client, cast, settings):
    for _ in range(10):
        LoginThrottle.objects.filter(key__startswith="email:").update(blocked_until=None)
        LoginThrottle.objects.filter(key__startswith="ip:").delete()
        _fail(client, cast.owner.email, 1)
    locked = [m for m in mail.outbox if "verrouillé" in m.subject]
    assert len(locked) == 1 and locked[0].to == [cast.owner.email]
    assert SecurityEvent.objects.filter(user=cast.owner, tag="login.locked").count() == 1
    # Even the right password is refused while locked.
    LoginThrottle.objects.filter(key__startswith="ip:").delete()
    response = client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert response.status_code == 200


def test_lockout_of_an_unknown_email_sends_nothing(client, cast):
    for _ in range(10):
        LoginThrottle.objects.filter(key__startswith="email:").update(blocked_until=None)
        LoginThrottle.objects.filter(key__startswith="ip:").delete()
        _fail(client, "ghost@nowhere.test", 1)
    assert not [m for m in mail.outbox if "verrouillé" in m.subject]


def test_source_address_is_throttled_across_accounts(client, cast):
    for n in range(12):
        _fail(client, f"user{n}@spray.test", 1)
    response = client.post("/accounts/login/", {"login": cast.owner.email, "password": PASSWORD})
    assert "Trop de tentatives" in response.content.decode()


def test_login_from_a_new_device_sends_a_notice(client, cast, client_class):
    secret = cast.secrets[cast.owner.email]
    login(client, cast.owner, secret, step=-1)
    assert not [
        m for m in mail.outbox if "nouvelle connexion" in m.subject
    ]  # first login ever: nothing to compare
    client.post("/accounts/logout/")
    login(client, cast.owner, secret, step=0)  # same browser (device cookie kept)
    assert not [m for m in mail.outbox if "nouvelle connexion" in m.subject]
    other = client_class(REMOTE_ADDR="203.0.113.9")
    login(other, cast.owner, secret, step=1)
    notices = [m for m in mail.outbox if "nouvelle connexion" in m.subject]
    assert len(notices) == 1 and "203.0.113.9" in notices[0].body


def test_session_expires_after_idle_timeout(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    session = client.session
    session["rempart_last_seen"] = time.time() - 16 * 60
    session.save()
    response = client.get("/compte/securite/")
    assert response.status_code == 302 and "/accounts/login/" in response.url
    assert client.get("/").status_code == 302
    assert SecurityEvent.objects.filter(user=cast.owner, tag="session.expired").exists()


def test_session_has_an_absolute_lifetime(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    session = client.session
    session["rempart_started_at"] = time.time() - 10 * 3600 - 1
    session.save()
    assert client.get("/").status_code == 302


def test_session_id_changes_at_login(client, cast):
    client.get("/accounts/login/")
    client.session.save()
    before = client.session.session_key
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.session.session_key != before


def test_log_out_everywhere_ends_every_session(client, cast, client_class):
    secret = cast.secrets[cast.owner.email]
    other = client_class()
    login(other, cast.owner, secret, step=-1)
    login(client, cast.owner, secret)
    assert other.get("/").status_code == 200
    client.post("/compte/securite/deconnexion-partout/")
    assert client.get("/").status_code == 302
    assert other.get("/").status_code == 302


def test_suspended_account_is_signed_out(client, cast):
    from django.utils import timezone

    login(client, cast.owner, cast.secrets[cast.owner.email])
    cast.owner.suspended_at = timezone.now()
    cast.owner.save()
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("url", ["/", "/accounts/login/"])
def test_pages_carry_a_strict_content_security_policy(client, url):
    response = client.get(url)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"


def test_no_self_sign_up(client, db):
    response = client.get("/accounts/signup/")
    assert response.status_code in (200, 403)
    assert 'name="password1"' not in response.content.decode()
