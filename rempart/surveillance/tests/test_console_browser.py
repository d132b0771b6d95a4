"""The security console in a real Chromium: a scripted abuse raises alerts, the analyst contains it.

1. A hijacked staff session scripts checks at one per second from a new address (gate-level, test speed):
   the surveillance raises alerts and asks for the second factor. The analyst (password + TOTP) sees the
   alerts in the queue, opens the account's page (activity chart, checks without identities), acknowledges,
   suspends the account and switches the whole organisation off with a reason: the next check is refused
   for that organisation while another goes on; switching back on is recorded.
2. Canaries planted from the console catch a leak at the first hit; lifting that automatic suspension
   shows it was automatic and asks for the second factor again.

With REMPART_DOC_SCREENSHOTS=1, screenshots go to docs/images/surveillance-*.png for docs/surveillance.md.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from rempart.accounts.models import SecurityEvent, User
from rempart.accounts.tests import browser
from rempart.gate import Actor, check_rights
from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.surveillance import canaries
from rempart.surveillance.engine import CheckRefused
from rempart.surveillance.models import Alert, Canary, Switch
from rempart.testing import PASSWORD, totp_code

from .conftest import COL, actor_for, card_of

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab

IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
SAVE_SHOTS = bool(os.environ.get("REMPART_DOC_SCREENSHOTS"))  # refresh the docs' screenshots only when asked
VIEWPORT = {"width": 1200, "height": 800}
SHOP_IP, HIJACKED_IP = "203.0.113.7", "198.51.100.23"


def shot(page, name: str, *, element=None, full_page: bool = False, down_to=None) -> None:
    """docs/images/surveillance-<name>.png: the viewport, the whole page, one element, or from the top of the
    page down to the bottom of one element (``down_to``)."""
    if not SAVE_SHOTS:
        return
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = str(IMAGES / f"surveillance-{name}.png")
    page.wait_for_load_state("load")  # the stylesheet in
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring in the docs
    if down_to is not None:
        box, scroll = down_to.bounding_box(), page.evaluate("window.scrollY")
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": box["y"] + scroll + box["height"] + 16}
        page.screenshot(path=path, full_page=True, clip=clip, animations="disabled")
    elif element is not None:
        element.screenshot(path=path, animations="disabled")
    else:
        page.screenshot(path=path, full_page=full_page, animations="disabled")


def log_in(tab, user, secret: str) -> None:
    tab.page.set_viewport_size(VIEWPORT)
    tab.goto("/accounts/login/")
    tab.page.locator("input[name=login]").fill(user.email)
    tab.page.locator("input[name=password]").fill(PASSWORD)
    tab.click_and_wait(tab.page.locator("main form button[type=submit]"), "/accounts/2fa/authenticate/")
    tab.page.locator("#mfa-code-submit").locator("xpath=..").locator("input[name=code]").fill(
        totp_code(secret)
    )
    with tab.page.expect_navigation():
        tab.page.locator("#mfa-code-submit").click()
    assert tab.path() == "/", tab.path()


def message(tab) -> str:
    return tab.page.inner_text("ul.messages")


def assert_clean(tab) -> None:
    assert tab.csp_violations() == [] and tab.script_errors() == []
    assert [r for r in tab.failed_requests if not r.endswith("/favicon.ico")] == []


def counter_history(cast, insurer) -> int:
    """Thirteen ordinary days at the shop before today, written to the ledger as the gate writes them
    (a dozen checks a day, now and then a miss), so the chart has a history to stand out from."""
    today = timezone.localdate()
    written = 0
    with transaction.atomic():
        for back in range(13, 0, -1):
            day = today - dt.timedelta(days=back)
            if day.weekday() == 6:
                continue  # closed on Sundays
            for n in range(8 + (back * 5) % 7):
                at = timezone.make_aware(dt.datetime.combine(day, dt.time(9 + n % 9, (n * 13) % 60)))
                outcome = Disclosure.Outcome.NO_MATCH if (back + n) % 9 == 0 else Disclosure.Outcome.COVERED
                chain.append(created_at=at, channel="portal", purpose="rights_check", organisation_id=cast.optician.pk,
                             user_id=cast.staff.pk, session_ref="counter", ip_address=SHOP_IP, insurer_id=insurer.pk,
                             domain="OPTI", outcome=outcome, fields=[])  # fmt: skip
                written += 1
    assert written < 200  # below the history that teaches the organisation's usual hours
    return written


def hijacked_session(cast, population, clock) -> dict:
    """The staff account checks once at the shop, then a script drives its session from another address at
    one check per second until the surveillance stops it (the step-up it cannot pass)."""
    rows = population.people[population.insurers[0].pk] + population.people[population.insurers[1].pk]
    shop = actor_for(cast.staff, ip=SHOP_IP)
    check_rights(shop, card_of(rows[0]))
    clock.advance(60)
    script = Actor(channel="portal", organisation_id=cast.optician.pk, user_id=cast.staff.pk, ip=HIJACKED_IP,
                   session_ref="hijacked")  # fmt: skip
    answered, refusal = 1, None
    for row in rows[1:30]:
        try:
            check_rights(script, card_of(row))
        except CheckRefused as exc:
            refusal = exc
            break
        answered += 1
        clock.advance(1)
    assert refusal is not None and refusal.code == "step_up_required", refusal
    return {"rows": rows, "answered": answered}


def test_an_analyst_contains_a_scripted_abuse_from_the_console(tab, cast, population, clock):
    history = counter_history(cast, population.insurers[0])
    abuse = hijacked_session(cast, population, clock)
    step_up = Alert.objects.get(user=cast.staff, signal="velocity_minute")
    assert step_up.level == 2 and step_up.severity == Alert.Severity.WARNING
    assert Alert.objects.filter(user=cast.staff, signal="two_addresses").exists()
    page = tab.page
    log_in(tab, cast.analyst, cast.secrets[cast.analyst.email])

    # 1. The queue: open alerts first, in words, with their evidence and what was done automatically.
    tab.click_and_wait(page.get_by_role("link", name="Surveillance", exact=True), "/operateur/surveillance/")
    assert tab.h1() == "Alertes de surveillance"
    row = page.locator(f"#alert-{step_up.pk}")
    assert "trop de vérifications par minute" in row.inner_text()
    assert "second facteur redemandé" in row.inner_text() and cast.staff.email in row.inner_text()
    assert "plafond" in row.inner_text() and HIJACKED_IP in row.inner_text()
    assert "compte actif depuis deux adresses à la fois" in page.inner_text("#alerts")
    assert page.locator("#alerts .sev-warning").count() >= 2
    shot(page, "queue", full_page=True)

    # 2. The account's page: the activity chart, its checks without identities, its addresses.
    tab.click_and_wait(
        row.get_by_role("link", name=cast.staff.email), f"/operateur/surveillance/comptes/{cast.staff.pk}/"
    )
    chart = page.locator("#activity-chart svg")
    assert chart.is_visible() and page.locator("#activity-chart rect.bar-hit").count() >= 11
    assert page.locator("#activity-chart rect.bar-miss").count() >= 1
    total = history + abuse["answered"]
    assert f"{total} vérifications sur 14 jours" in page.inner_text("#activity-chart figcaption")
    assert page.locator("#recent-checks tbody tr").count() == min(50, total)
    addresses = page.inner_text("#addresses")
    assert SHOP_IP in addresses and HIJACKED_IP in addresses
    assert "Second facteur redemandé" in page.inner_text("#actor-status")
    html = page.content()
    for person in abuse["rows"][: abuse["answered"]]:
        assert person[COL["nir"]] not in html if person[COL["nir"]] else True
        assert person[COL["last_name"]] not in html
    shot(page, "actor", down_to=page.locator("#activity-chart"))
    shot(page, "chart", element=page.locator("#activity-chart"))

    # 3. Acknowledge, then contain: suspend the account, and cut the organisation with a reason.
    with page.expect_navigation():
        page.locator(f"#actor-alerts #alert-{step_up.pk}").get_by_role(
            "button", name="Prendre en compte"
        ).click()
    assert tab.path() == f"/operateur/surveillance/comptes/{cast.staff.pk}/"
    step_up.refresh_from_db()
    assert step_up.status == Alert.Status.ACKNOWLEDGED and step_up.handled_by == cast.analyst
    with page.expect_navigation():
        page.locator("#suspend").click()
    assert f"Compte {cast.staff.email} suspendu" in message(tab)
    assert User.objects.get(pk=cast.staff.pk).suspended_at is not None
    assert "par une personne" in page.inner_text("#actor-status")

    page.get_by_role("link", name="Couper toute l'organisation…").click()
    page.wait_for_url(re.compile(r".*/operateur/surveillance/coupures/\?target=organisation.*"))
    assert page.locator("input[name=target][value=organisation]").is_checked()
    page.get_by_label("Motif").fill("Session détournée : vérifications en série depuis 198.51.100.23")
    with page.expect_navigation():
        page.locator("#switch-off").click()
    assert "Coupure activée : organisation « Optique du Test »" in message(tab)
    active = page.inner_text("#active-switches")
    assert "Optique du Test" in active and "Session détournée" in active and cast.analyst.email in active
    shot(page, "switches", full_page=True)

    # 4. The check is refused for that organisation, with the stable code; another organisation goes on.
    switch = Switch.objects.get(on_at__isnull=True)
    proved = Actor(channel="portal", organisation_id=cast.optician.pk, user_id=cast.owner.pk, ip=SHOP_IP,
                   second_factor_at=timezone.now().timestamp())  # fmt: skip
    with pytest.raises(CheckRefused) as refused:
        check_rights(proved, card_of(abuse["rows"][40]))
    assert refused.value.code == "switched_off" and refused.value.status == 503
    other = check_rights(actor_for(cast.outsider, ip="192.0.2.80"), card_of(abuse["rows"][41]))
    assert other.outcome != Disclosure.Outcome.NO_MATCH
    assert SecurityEvent.objects.get(tag="switch.off").organisation == cast.optician

    # 5. Switch back on (a person's switch: no step-up), recorded.
    with page.expect_navigation():
        page.locator(f"#switch-{switch.pk}").get_by_role("button", name="Rétablir").click()
    assert "Coupure levée" in message(tab) and "Rien n'est coupé." in page.inner_text("#active-switches")
    assert SecurityEvent.objects.filter(tag="switch.on", organisation=cast.optician).exists()
    check_rights(proved, card_of(abuse["rows"][42]))
    assert_clean(tab)


def test_canaries_planted_from_the_console_stop_a_leak_at_the_first_hit(tab, cast, population, settings):
    insurer = population.insurers[1]
    page = tab.page
    log_in(tab, cast.analyst, cast.secrets[cast.analyst.email])

    # 1. Plant two canaries for the second insurer.
    tab.goto("/operateur/surveillance/")
    tab.click_and_wait(
        page.locator(".subnav").get_by_role("link", name="Canaris"), "/operateur/surveillance/canaris/"
    )
    page.get_by_label("Assureur").select_option(str(insurer.pk))
    page.get_by_label("Nombre de canaris").fill("2")
    with page.expect_navigation():
        page.locator("#plant").click()
    planted = list(Canary.objects.filter(insurer=insurer).order_by("pk"))
    assert len(planted) >= 2 and planted[0].created_by == cast.analyst  # whole families: 2 at least
    assert f"{len(planted)} canari(s) planté(s) pour Prévoyance Seconde" in message(tab)
    assert str(len(planted)) in page.inner_text(f"#insurer-{insurer.pk}")
    cards = [canaries.sealed_card(c) for c in planted]
    assert all(card["nir"] not in page.content() for card in cards)  # sealed: not on the panel
    shot(page, "canaries", full_page=True)

    # 2. The sealed data, just after logging in (a fresh second factor): for investigators.
    tab.click_and_wait(
        page.locator(f"#insurer-{insurer.pk}").get_by_role("link", name="Données scellées…"),
        f"/operateur/surveillance/canaris/{insurer.pk}/cartes/",
    )
    assert all(card["nir"] in page.inner_text("#canary-cards") for card in cards)

    # 3. Someone checks a canary from leaked registry data: suspended at once, a critical alert, an incident.
    row = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        row[COL[name]] = cards[0][name]
    check_rights(actor_for(cast.outsider, ip="192.0.2.66"), card_of(row))
    alert = Alert.objects.get(signal="canary")
    assert alert.severity == Alert.Severity.CRITICAL and alert.incident is not None
    tab.goto("/operateur/surveillance/?severity=critical")
    row_text = page.inner_text(f"#alert-{alert.pk}")
    assert "bénéficiaire témoin (canari)" in row_text and "Prévoyance Seconde" in row_text
    assert alert.incident.number in row_text and cast.outsider.email in row_text
    shot(page, "canary-alert", element=page.locator(f"#alert-{alert.pk}"))

    # 4. Lifting the automatic suspension says it was automatic and asks for the second factor again.
    tab.click_and_wait(
        page.locator(f"#alert-{alert.pk}").get_by_role("link", name=cast.outsider.email),
        f"/operateur/surveillance/comptes/{cast.outsider.pk}/",
    )
    assert "automatiquement par la surveillance" in page.inner_text("#actor-status")
    assert "Suspension automatique" in page.inner_text("#system-suspension")
    shot(page, "automatic-suspension", element=page.locator("#containment"))
    settings.REMPART_STEP_UP_SECONDS = 0  # the login's second factor is no longer fresh
    page.get_by_role("button", name="Lever la suspension automatique").click()
    page.wait_for_url(re.compile(r".*/accounts/2fa/reauthenticate/.*"))
    assert User.objects.get(pk=cast.outsider.pk).suspended_at is not None
    settings.REMPART_STEP_UP_SECONDS = 300
    page.locator("input[name=code]").fill(totp_code(cast.secrets[cast.analyst.email], 1))
    with page.expect_navigation():
        page.locator("input[name=code]").press("Enter")
    assert tab.path() == f"/operateur/surveillance/comptes/{cast.outsider.pk}/"
    with page.expect_navigation():
        page.get_by_role("button", name="Lever la suspension automatique").click()
    assert "Suspension automatique levée" in message(tab)
    assert User.objects.get(pk=cast.outsider.pk).suspended_at is None
    assert SecurityEvent.objects.get(tag="account.restored", user=cast.outsider).details["automatic"] is True
    assert_clean(tab)
