"""In a real Chromium: passkey and TOTP enrolment and login, and a correct password alone opens nothing.

Debian's Chromium (/usr/bin/chromium) driven by Playwright against pytest-django's live server on
http://localhost:<port> (WebAuthn needs a host name; allauth allows plain http outside production).
Passkeys come from Chromium's virtual authenticators (DevTools protocol, WebAuthn domain).
"""

import re
import time

import pyotp
import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from django.conf import settings

from rempart.accounts import invitations
from rempart.accounts.models import Role, SecurityEvent, User
from rempart.testing import PASSWORD, totp_code

from . import browser

if not browser.CHROMIUM.exists():
    pytest.skip(
        f"browser tests need Debian's Chromium at {browser.CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

# The fixtures (a module-wide Chromium, a fresh context and page per test, the live server's URL).
_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab

HOME = "/"
ENROL = "/compte/second-facteur/"
SECOND_FACTOR = "/accounts/2fa/authenticate/"
PROTECTED = ["/", "/compte/securite/", "/organisation/membres/", "/organisation/jetons/", "/admin/"]
# What each protected page shows once reached; none of it may appear before the second factor.
PROTECTED_MARKERS = ["Bonjour", "Ma sécurité", "Membres —", "Jetons d'API", "administration opérateur"]


# ---------------------------------------------------------------------------------------------- steps


def accept_invitation(tab, organisation, email: str, inviter) -> User:
    """Open the raw invitation link, set a password; the newcomer lands on the enrolment page."""
    _invitation, raw = invitations.invite(organisation, email, Role.STAFF, inviter, send=False)
    tab.goto(f"/invitation/{raw}/")
    assert organisation.name in tab.h1()
    tab.page.get_by_label(re.compile(r"^Nom complet")).fill("Camille Test")
    tab.page.get_by_label(re.compile(r"^Mot de passe")).fill(PASSWORD)
    tab.page.get_by_label(re.compile(r"^Confirmez le mot de passe")).fill(PASSWORD)
    tab.click_and_wait(tab.page.get_by_role("button", name="Créer mon accès"), ENROL)
    assert tab.h1() == "Activez votre second facteur"
    assert "Un mot de passe seul ne donne accès à rien" in tab.text()
    return User.objects.get(email=email)


def read_recovery_codes_once(tab) -> list[str]:
    """The recovery codes page after the first factor: ten codes, shown this once only."""
    assert tab.path() == "/accounts/2fa/recovery-codes/"
    codes = tab.page.input_value("#recovery_codes").split()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"\d{10}", code) for code in codes)
    tab.page.reload()
    assert tab.page.locator("#recovery_codes").count() == 0
    assert not any(code in tab.page.content() for code in codes)
    return codes


def log_out(tab) -> None:
    tab.page.get_by_role("button", name="Se déconnecter").click()
    tab.page.wait_for_url(re.compile(r".*/accounts/login/.*"))
    assert "Vous êtes déconnecté" in tab.text()


def log_in_with_password(tab, email: str) -> None:
    """Email and correct password: the browser is sent to the second-factor page, nowhere else."""
    if not tab.path().startswith("/accounts/login/"):
        tab.goto("/accounts/login/")
    tab.page.locator("input[name=login]").fill(email)
    tab.page.locator("input[name=password]").fill(PASSWORD)
    tab.click_and_wait(tab.page.locator("main form button[type=submit]"), SECOND_FACTOR)
    assert tab.h1() == "Second facteur"


def use_passkey(tab):
    return tab.page.get_by_role("button", name="Utiliser ma clé d'accès")


def code_input(tab):
    return tab.page.locator("#mfa-code-submit").locator("xpath=..").locator("input[name=code]")


def submit_code(tab, code: str) -> None:
    code_input(tab).fill(code)
    with tab.page.expect_navigation():
        tab.page.locator("#mfa-code-submit").click()


def assert_clean_console(tab) -> None:
    assert tab.csp_violations() == []
    assert tab.script_errors() == []
    assert [r for r in tab.failed_requests if not r.endswith("/favicon.ico")] == []


# ---------------------------------------------------------------------------------------------- passkeys


def test_newcomer_enrols_a_passkey_then_logs_in_with_password_and_passkey(tab, cast):
    assert mfa_settings.WEBAUTHN_USER_VERIFICATION == "required"
    key = tab.add_virtual_authenticator()  # a platform passkey that verifies its user (PIN, biometrics)
    user = accept_invitation(tab, cast.optician, "passkey@shop.test", cast.owner)
    tab.screenshot("enrolment")

    tab.click_and_wait(tab.page.locator("#enrol-passkey"), "/accounts/2fa/webauthn/add/")
    creation = tab.js_data()["creation_options"]["publicKey"]
    assert creation["rp"]["id"] == "localhost"
    assert creation["authenticatorSelection"]["userVerification"] == "required"
    tab.click_and_wait(tab.page.locator("#mfa_webauthn_add"), "/accounts/2fa/recovery-codes/")
    read_recovery_codes_once(tab)
    assert list(Authenticator.objects.filter(user=user).values_list("type", flat=True).order_by("type")) == [
        Authenticator.Type.RECOVERY_CODES,
        Authenticator.Type.WEBAUTHN,
    ]
    [credential] = key.credentials()
    assert credential["rpId"] == "localhost" and credential["signCount"] == 1

    log_out(tab)
    log_in_with_password(tab, user.email)
    tab.screenshot("second-factor")
    request = tab.js_data()["request_options"]["publicKey"]
    assert request["userVerification"] == "required"
    assert (
        use_passkey(tab).bounding_box()["y"] < code_input(tab).bounding_box()["y"]
    )  # the passkey comes first
    tab.click_and_wait(use_passkey(tab), HOME)
    assert tab.h1() == "Bonjour Camille Test"
    assert key.credentials()[0]["signCount"] == 2  # the passkey signed this login
    assert SecurityEvent.objects.filter(user=user, tag="login.success").exists()
    assert_clean_console(tab)


def test_step_up_of_a_passkey_holder_takes_the_passkey_in_the_browser(tab, cast):
    """Logged in with a code, a passkey holder steps up with the passkey: the prompt offers nothing else."""
    from allauth.mfa.totp.internal.auth import TOTP

    key = tab.add_virtual_authenticator()
    user = accept_invitation(tab, cast.optician, "stepup@shop.test", cast.owner)
    tab.click_and_wait(tab.page.locator("#enrol-passkey"), "/accounts/2fa/webauthn/add/")
    tab.click_and_wait(tab.page.locator("#mfa_webauthn_add"), "/accounts/2fa/recovery-codes/")
    secret = pyotp.random_base32()
    TOTP.activate(user, secret)
    log_out(tab)
    log_in_with_password(tab, user.email)
    submit_code(tab, totp_code(secret))
    assert tab.path() == HOME

    tab.goto("/accounts/2fa/webauthn/add/")  # a sensitive page: the code of the login is no proof here
    assert tab.path().startswith("/accounts/2fa/webauthn/reauthenticate/?next=")
    assert tab.h1() == "Confirmer avec votre clé d'accès"
    main = tab.page.locator("main")
    assert main.locator("input[name=code], input[name=password]").count() == 0
    assert main.locator("a[href*='reauthenticate']").count() == 0  # no other way offered
    tab.click_and_wait(use_passkey(tab), "/accounts/2fa/webauthn/add/")
    assert key.credentials()[0]["signCount"] == 2  # enrolment, then this step-up (the login used a code)
    assert SecurityEvent.objects.get(user=user, tag="mfa.step_up").details["factor"] == "webauthn"
    assert_clean_console(tab)


def test_a_passkey_that_does_not_verify_its_user_neither_enrols_nor_logs_in(tab, cast):
    """User verification is required: Chromium refuses, and so does the server when the page is altered."""
    user = accept_invitation(tab, cast.optician, "uv@shop.test", cast.owner)
    add = tab.page.locator("#mfa_webauthn_add")
    tab.click_and_wait(tab.page.locator("#enrol-passkey"), "/accounts/2fa/webauthn/add/")

    # Enrolment. A passkey whose PIN/biometric check fails: Chromium does not create a credential.
    failing = tab.add_virtual_authenticator(user_verified=False)
    with tab.page.expect_console_message(lambda m: "NotAllowedError" in m.text):
        add.click()
    assert tab.path() == "/accounts/2fa/webauthn/add/" and failing.credentials() == []
    failing.remove()
    # A security key with no PIN or biometrics at all: Chromium will not use it either...
    plain = tab.add_virtual_authenticator(transport="usb", has_user_verification=False)
    with tab.page.expect_console_message(lambda m: "NotAllowedError" in m.text):
        add.click()
    assert plain.credentials() == []
    # ...unless the page is altered to ask for no verification: then the key answers, the server refuses.
    options = tab.js_data()
    options["creation_options"]["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged"
    tab.set_js_data(options)
    with tab.page.expect_navigation():
        add.click()
    assert len(plain.credentials()) == 1
    assert tab.path() == "/accounts/2fa/webauthn/add/" and "Code incorrect" in tab.text()
    assert not Authenticator.objects.filter(user=user).exists()
    plain.remove()

    # Login. A passkey enrolled with verification, whose verification then fails.
    key = tab.add_virtual_authenticator()
    tab.click_and_wait(add, "/accounts/2fa/recovery-codes/")
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).count() == 1
    log_out(tab)
    log_in_with_password(tab, user.email)
    key.set_user_verified(False)
    with tab.page.expect_console_message(lambda m: "NotAllowedError" in m.text):
        use_passkey(tab).click()
    assert tab.path() == SECOND_FACTOR
    options = tab.js_data()
    options["request_options"]["publicKey"]["userVerification"] = "discouraged"
    tab.set_js_data(options)
    with tab.page.expect_navigation():
        use_passkey(tab).click()
    assert tab.path() == SECOND_FACTOR and "Code incorrect" in tab.text()
    assert key.credentials()[0]["signCount"] == 2  # the key did sign (without verification): refused
    tab.goto(HOME)
    assert tab.path() == SECOND_FACTOR
    key.set_user_verified(True)  # control: the same passkey, verified, opens the portal
    tab.click_and_wait(use_passkey(tab), HOME)
    assert tab.h1().startswith("Bonjour")
    assert tab.csp_violations() == [] and tab.script_errors() == []


# ---------------------------------------------------------------------------------------------- TOTP


def test_newcomer_enrols_totp_from_the_qr_page_then_logs_in_with_a_code(tab, cast):
    user = accept_invitation(tab, cast.optician, "totp@shop.test", cast.owner)
    tab.click_and_wait(tab.page.locator("#enrol-totp"), "/accounts/2fa/totp/activate/")
    qr = tab.page.locator("img[src^='data:image/svg+xml']")
    assert qr.is_visible() and qr.bounding_box()["width"] >= 100
    secret = tab.page.input_value("#authenticator_secret")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    first_code = pyotp.TOTP(secret).now()
    tab.page.get_by_label(re.compile(r"^Code de l'authentificateur")).fill(first_code)
    tab.click_and_wait(tab.page.get_by_role("button", name="Activer"), "/accounts/2fa/recovery-codes/")
    read_recovery_codes_once(tab)
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()

    log_out(tab)
    log_in_with_password(tab, user.email)
    submit_code(tab, first_code)  # a code is accepted once only, the enrolment's one too
    assert tab.path() == SECOND_FACTOR and "Code incorrect" in tab.text()
    tab.goto(HOME)
    assert tab.path() == SECOND_FACTOR
    submit_code(tab, pyotp.TOTP(secret).at(time.time() + 30))  # the next time step (drift window)
    assert tab.path() == HOME and tab.h1() == "Bonjour Camille Test"
    assert_clean_console(tab)


# ---------------------------------------------------------------------------------------------- password alone


def test_a_correct_password_alone_reaches_only_the_second_factor_page(tab, cast):
    admin = cast.admin  # operator administrator: staff and superuser, the one the admin site would open to
    log_in_with_password(tab, admin.email)
    for url in PROTECTED:
        tab.goto(url)
        assert tab.path().startswith((SECOND_FACTOR, "/accounts/login/")), (url, tab.path())
        assert tab.h1() in {"Second facteur", "Connexion"}, url
        text = tab.text()
        assert [marker for marker in PROTECTED_MARKERS if marker in text] == [], url
        assert admin.email not in text and "Se déconnecter" not in text, url
    tab.screenshot("second-factor-after-protected-pages")
    # Control: the same pending login, completed with a code, opens what was refused above.
    tab.goto(SECOND_FACTOR)
    submit_code(tab, totp_code(cast.secrets[admin.email]))
    assert tab.path() == HOME
    tab.goto("/admin/")
    assert tab.path() == "/admin/" and "administration opérateur" in tab.text()
    assert_clean_console(tab)


# ---------------------------------------------------------------------------------------------- CSP


def test_the_content_security_policy_holds_in_the_browser(tab, cast):
    response = tab.goto("/accounts/login/")
    assert response.headers["content-security-policy"] == settings.REMPART_CSP
    log_in_with_password(tab, cast.owner.email)
    assert tab.csp_violations() == []  # the second-factor page and its WebAuthn scripts load cleanly
    # An injected inline script does not run, and Chromium reports the violation.
    with tab.page.expect_console_message(lambda m: "Content Security Policy" in m.text):
        tab.page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';"
            " document.body.appendChild(s) }"
        )
    assert tab.page.evaluate("() => window.pwned") is None
