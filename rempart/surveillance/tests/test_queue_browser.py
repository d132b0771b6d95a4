"""The analyst's queue in a real Chromium: it refreshes by itself with its filters, alerts are assigned from
it, and the list of everything suspended says who decided what — no script error, no CSP violation."""

from __future__ import annotations

import pytest
from django.utils import timezone

from rempart.accounts.tests import browser
from rempart.surveillance import labels, responses
from rempart.surveillance.models import Alert
from rempart.surveillance.policy import SUSPEND, Finding

from .conftest import actor_for
from .test_console_browser import assert_clean, log_in

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url
tab = browser.tab


def _alert(cast, **fields) -> Alert:
    values = {"severity": "warning", "signal": "velocity_minute", "level": 2, "user": cast.staff,
              "organisation": cast.optician, "response": labels.STEP_UP,
              "evidence": {"velocity_minute": {"checks_last_minute": 9, "ceiling": 6}}}  # fmt: skip
    return Alert.objects.create(**{**values, **fields})


def test_the_queue_refreshes_itself_keeps_its_filters_and_assigns(tab, cast):
    first = _alert(cast)
    log_in(tab, cast.analyst, cast.secrets[cast.analyst.email])
    tab.goto("/operateur/surveillance/?signal=velocity_minute")
    page = tab.page
    assert page.locator(f"#alert-{first.pk}").is_visible()
    assert page.locator("#id_signal").input_value() == "velocity_minute"
    # New alerts arrive: the one of the filtered signal appears without a reload, the other does not.
    shown = _alert(cast, created_at=timezone.now())
    hidden = _alert(cast, signal="canary", severity="critical")
    page.evaluate("document.getElementById('alerts-live').refreshNow()")
    page.locator(f"#alert-{shown.pk}").wait_for(timeout=10000)
    assert page.locator(f"#alert-{hidden.pk}").count() == 0
    assert tab.path() == "/operateur/surveillance/?signal=velocity_minute"  # the same page, not reloaded
    # Assign the new alert to the administrator from the refreshed table: back on the filtered queue.
    page.locator(f"#assignee-{shown.pk}").select_option(str(cast.admin.pk))
    with page.expect_navigation():
        page.locator(f"#alert-{shown.pk} form.assign button").click()
    assert "signal=velocity_minute" in page.url
    assert f"attribuée à {cast.admin.email}" in page.inner_text("ul.messages")
    assert page.locator(f"#assigned-{shown.pk}").inner_text() == f"Suivie par {cast.admin.email}"
    assert_clean(tab)


def test_the_list_of_everything_suspended(tab, cast):
    responses.apply(actor_for(cast.staff), SUSPEND, [Finding("canary", SUSPEND, {"canary": 1})])
    alert = Alert.objects.get(level=SUSPEND)
    log_in(tab, cast.analyst, cast.secrets[cast.analyst.email])
    tab.goto("/operateur/surveillance/suspendus/")
    row = tab.page.locator("tr.suspended-account")
    text = row.inner_text()
    assert cast.staff.email in text and "la surveillance" in text and f"alerte n° {alert.pk}" in text
    assert "canari" in text and "Rétablir" in text
    tab.goto("/operateur/surveillance/suspendus/?kind=switch")
    assert tab.page.locator("tr.suspended-account").count() == 0
    assert "Rien n'est suspendu ni coupé." in tab.page.inner_text("#suspended")
    assert_clean(tab)
