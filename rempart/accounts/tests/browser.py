"""Fixtures for the browser tests: Debian's Chromium driven by Playwright (sync API) against live_server.

The browser is /usr/bin/chromium from apt-get (.ci/run installs it); never ``playwright install``.
Set REMPART_BROWSER_SCREENSHOTS to a directory to keep screenshots of the pages the tests name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
class Tab:
    """One page in a fresh browser context; console messages and failed requests are collected."""

    page: Any  # playwright.sync_api.Page
    base_url: str
    console: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    # Waiting for DOMContentLoaded is enough: allauth's scripts attach their handlers on that event.
    def goto(self, path: str):
        return self.page.goto(self.base_url + path, wait_until="domcontentloaded")

    def path(self) -> str:
        url = self.page.url
        return url[len(self.base_url) :] if url.startswith(self.base_url) else url

    def text(self) -> str:
        return self.page.inner_text("body")

    def h1(self) -> str:
        return self.page.inner_text("h1").strip()

    def wait_for_path(self, path: str) -> None:
        self.page.wait_for_url(self.base_url + path, wait_until="domcontentloaded")

    def click_and_wait(self, locator, path: str) -> None:
        locator.click()
        self.wait_for_path(path)

    def js_data(self) -> dict:
        """The options allauth's page hands to navigator.credentials (json_script #js_data)."""
        return json.loads(self.page.text_content("#js_data"))

    def set_js_data(self, data: dict) -> None:
        """Tamper with those options, as a modified page or browser could."""
        self.page.evaluate("d => { document.getElementById('js_data').textContent = d }", json.dumps(data))

    def add_virtual_authenticator(
        self, *, transport: str = "internal", has_user_verification: bool = True, user_verified: bool = True
    ) -> VirtualAuthenticator:
        """Plug one of Chromium's virtual WebAuthn authenticators into this page, through CDP."""
        cdp = self.page.context.new_cdp_session(self.page)
        cdp.send("WebAuthn.enable")
        added = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": transport,
                    "hasResidentKey": True,
                    "hasUserVerification": has_user_verification,
                    "isUserVerified": user_verified,
                    "automaticPresenceSimulation": True,
                }
            },
        )
        return VirtualAuthenticator(cdp, added["authenticatorId"])

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "Content-Security-Policy" in m]

    def script_errors(self) -> list[str]:
        return [m for m in self.console if m.startswith("pageerror:")]

    def screenshot(self, name: str) -> None:
        directory = os.environ.get("REMPART_BROWSER_SCREENSHOTS")
        if directory:
            self.page.wait_for_load_state("load")  # stylesheet and images in
            self.page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)


@dataclass
class VirtualAuthenticator:
    cdp: Any  # playwright.sync_api.CDPSession
    id: str

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def set_user_verified(self, verified: bool) -> None:
        self.cdp.send("WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": verified})

    def remove(self) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})


@pytest.fixture(scope="module")
def _orm_beside_playwright():
    """Playwright's sync API keeps an event loop running in the main thread: let this module use the ORM."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def chromium_browser(_orm_beside_playwright):
    """One Chromium process for the module (Playwright gives it a temporary user-data-dir)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def base_url(live_server) -> str:
    # WebAuthn's relying-party id is the page's host name: it must be "localhost", not 127.0.0.1.
    url = live_server.url.replace("//127.0.0.1:", "//localhost:")
    assert url.startswith("http://localhost:"), url
    return url


@pytest.fixture
def tab(chromium_browser, base_url):
    """A fresh browser context (no cookies, no storage, no credentials) and one page, for one test."""
    context = chromium_browser.new_context(locale="fr-FR", viewport={"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    tab = Tab(page=page, base_url=base_url)
    page.on("console", lambda message: tab.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: tab.console.append(f"pageerror: {error}"))
    page.on("response", lambda r: r.status >= 400 and tab.failed_requests.append(f"{r.status} {r.url}"))
    try:
        yield tab
    finally:
        context.close()
