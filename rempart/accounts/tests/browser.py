"""Fixtures for the browser tests: Debian's Chromium driven by Playwright (sync API) against live_server.

Never ``playwright install``: the browser is /usr/bin/chromium from apt-get (see .ci/run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


@dataclass
class Browser:
    """One fresh Chromium profile with one page; console messages are collected for CSP checks."""

    page: object  # playwright.sync_api.Page
    base_url: str
    console: list[str] = field(default_factory=list)

    def goto(self, path: str):
        return self.page.goto(self.base_url + path)

    def path(self) -> str:
        url = self.page.url
        return url[len(self.base_url) :] if url.startswith(self.base_url) else url

    def text(self) -> str:
        return self.page.inner_text("body")

    def add_virtual_authenticator(self, *, user_verified: bool = True) -> tuple[object, str]:
        """Plug a platform authenticator (a passkey on this device) into this page, through CDP."""
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("WebAuthn.enable")
        added = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": user_verified,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        return cdp, added["authenticatorId"]


@pytest.fixture(scope="module")
def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop running in the main thread; let the test body use the ORM."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def playwright(_orm_beside_playwright):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def base_url(live_server) -> str:
    # WebAuthn's relying-party id is the page's host: it must be a name ("localhost"), not 127.0.0.1.
    url = live_server.url.replace("//127.0.0.1:", "//localhost:")
    assert url.startswith("http://localhost:"), url
    return url


@pytest.fixture
def browser(playwright, base_url, tmp_path):
    """A fresh Chromium (its own user-data-dir) for one test."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        locale="fr-FR",
        viewport={"width": 1100, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.pages[0] if context.pages else context.new_page()
    session = Browser(page=page, base_url=base_url)
    page.on("console", lambda message: session.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: session.console.append(f"pageerror: {error}"))
    try:
        yield session
    finally:
        context.close()
