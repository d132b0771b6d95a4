"""The insurer's data team in a real Chromium, 1,024 pixels wide, in French then in English.

The member loads a rights file with bad rows (they are listed on the page, worded, and listed in the history
under the file's name), a full file past the safety share as a dry run (it says what it would end), a products
file; reads the registry's state; then reads the same run in English. No raw code, no crash, nothing wider
than the window, no script or CSP error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from pathlib import Path

import pytest

from rempart.accounts.tests import browser
from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.models import ImportRun
from rempart.testing import PASSWORD, totp_code

if not browser.CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {browser.CHROMIUM}", allow_module_level=True)
pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")

pytestmark = pytest.mark.browser

_orm_beside_playwright = browser._orm_beside_playwright
chromium_browser = browser.chromium_browser
base_url = browser.base_url

WINDOW = {"width": 1024, "height": 768}
RAW = re.compile(
    r"\b(delta|full|dry_run|succeeded|refused|day_impossible|month_impossible|above_threshold\w*|"
    r"not_rights_file|yes_no|forced|None|True|False)\b"
)
CRASH = ("Traceback", "Server Error", "Exception Value", "{%", "{{")
ENGLISH = re.compile(r"\b(Rejected|rows|Download|Load|Result|File|impossible day|the|and)\b")
FRENCH = re.compile(r"\b(Lignes rejetées|Télécharger|Charger|Résultat|Fichier|jour impossible)\b")


@pytest.fixture
def loaded_insurer(cast, tmp_path):
    from rempart.registry.products_import import import_products

    insurer = cast.insurer.insurer
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text(insurer.amc_number), encoding="utf-8")
    import_products(path, insurer)
    return insurer


@contextlib.contextmanager
def window(chromium_browser, base_url):
    context = chromium_browser.new_context(locale="fr-FR", viewport=WINDOW)
    context.set_default_timeout(browser.TIMEOUT_MS)
    page = context.new_page()
    tab = browser.Tab(page=page, base_url=base_url)
    page.on("console", lambda message: tab.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: tab.console.append(f"pageerror: {error}"))
    page.on("response", lambda r: r.status >= 400 and tab.failed_requests.append(f"{r.status} {r.url}"))
    try:
        yield tab
    finally:
        context.close()


def log_in(tab, email: str, secret: str) -> None:
    tab.goto("/accounts/login/")
    tab.page.locator("input[name=login]").fill(email)
    tab.page.locator("input[name=password]").fill(PASSWORD)
    tab.click_and_wait(tab.page.locator("main form button[type=submit]"), "/accounts/2fa/authenticate/")
    tab.page.locator("#mfa-code-submit").locator("xpath=..").locator("input[name=code]").fill(
        totp_code(secret)
    )
    with tab.page.expect_navigation():
        tab.page.locator("#mfa-code-submit").click()
    assert tab.path() == "/", tab.path()


def looks_right(tab, *, english: bool = False) -> str:
    text = tab.page.inner_text("main")
    assert not RAW.findall(text), (tab.path(), RAW.findall(text))
    assert not any(mark in text for mark in CRASH), tab.path()
    other = FRENCH if english else ENGLISH
    assert not other.findall(text), (tab.path(), other.findall(text))
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= WINDOW["width"], (tab.path(), width)
    assert tab.csp_violations() == [] and tab.script_errors() == []
    return text


def snap(tab, name: str) -> None:
    """A full-page screenshot into $REMPART_TEST_SHOTS (to look at the pages), when it is set."""
    directory = os.environ.get("REMPART_TEST_SHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        tab.page.screenshot(path=str(Path(directory) / f"registry-{name}.png"), full_page=True)


def rights_bytes(insurer, rows) -> bytes:
    lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
    return ("\n".join([*lines, fmt.trailer_line(len(rows))]) + "\n").encode()


def upload(tab, form_id: str, name: str, data: bytes, *, checks=(), mode: str | None = None) -> None:
    form = tab.page.locator(f"#{form_id}")
    form.locator("input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": data}]
    )
    if mode:
        form.locator("select[name=mode]").select_option(mode)
    for label in checks:
        form.get_by_label(label).check()
    with tab.page.expect_navigation():
        form.locator("button[type=submit]").click()
    if tab.path().startswith("/taches/"):
        # The upload is a job: its page reaches "Terminée" at 100 % and links to the run's page.
        link = tab.page.locator("#job-result-link")
        link.wait_for(state="visible", timeout=15_000)
        assert tab.page.locator("#job-progress").get_attribute("value") == "100"
        assert "Terminée" in tab.page.locator("main").inner_text()
        with tab.page.expect_navigation():
            link.click()


def test_the_data_team_loads_files_and_reads_the_results(cast, loaded_insurer, chromium_browser, base_url):
    insurer = loaded_insurer
    spec = synthetic.InsurerSpec(0, insurer.amc_number, insurer.name, insurer.kind, "", 30)
    rows = [list(r) for r in synthetic.beneficiary_rows(spec, 3, dt.date(2026, 11, 25))]
    rows[2][11], rows[5][11] = "1980-02-30", "1980-13-01"
    member = cast.insurer_member
    with window(chromium_browser, base_url) as tab:
        log_in(tab, member.email, cast.secrets[member.email])
        tab.click_and_wait(
            tab.page.get_by_role("link", name="Fichiers de droits").first, "/assureur/imports/"
        )
        looks_right(tab)
        # Every input of the upload forms has an accessible name.
        for field in tab.page.locator("main form input:not([type=hidden]), main form select").all():
            assert field.evaluate("e => e.labels && e.labels.length > 0"), field.get_attribute("name")

        # 1. A delta file with two bad rows: the run's page lists them, worded.
        upload(tab, "rights-upload", "droits-novembre.csv", rights_bytes(insurer, rows))
        run = ImportRun.objects.get()
        assert tab.path() == f"/assureur/imports/{run.pk}/"
        text = looks_right(tab)
        assert "droits-novembre.csv" in text and "Lignes rejetées" in text
        table = tab.page.locator("table.rejected tbody tr")
        assert table.count() == 2
        assert (
            "jour impossible" in table.nth(0).inner_text() and "mois impossible" in table.nth(1).inner_text()
        )
        snap(tab, "run")

        # 2. The history: under the file's name, with its rejected rows said.
        tab.click_and_wait(tab.page.get_by_role("link", name="Retour aux chargements"), "/assureur/imports/")
        row = tab.page.locator("table.imports tbody tr").first
        assert "droits-novembre.csv" in row.inner_text() and "2 lignes rejetées" in row.inner_text()
        snap(tab, "imports")
        looks_right(tab)

        # 3. A full file keeping one contract in ten: a dry run says what it would end, past the threshold.
        kept = [r for r in rows if r[1] == rows[0][1]]
        upload(tab, "rights-upload", "complet.csv", rights_bytes(insurer, kept), mode="full",
               checks=("Simulation (ne rien modifier)",))  # fmt: skip
        text = looks_right(tab)
        assert "au-delà du seuil de sécurité" in text and "Simulation" in text
        snap(tab, "dry-run")
        assert ImportRun.objects.order_by("-pk").first().status == "dry_run"

        # 4. A products file with a bad row.
        tab.goto("/assureur/imports/")
        products = synthetic.products_file_text(insurer.amc_number).strip().splitlines()
        body = [*products[:-1], "BAD;Offre;peut-être;PHAR;2026-01-01;100;100;;N;;"]
        data = ("\n".join([*body, f"#end;{len(body) - 2}"]) + "\n").encode()
        upload(tab, "products-upload", "produits.csv", data)
        text = looks_right(tab)
        assert "produits.csv" in text and "O ou N attendu" in text

        # 5. The registry's state, in counts.
        tab.click_and_wait(tab.page.get_by_role("link", name="État du registre").first, "/assureur/registre/")
        text = looks_right(tab)
        assert "Contrats" in text and "canari" in text and "produits.csv" in text
        snap(tab, "state")

        # 6. The first run again, in English.
        with tab.page.expect_navigation():
            tab.page.locator("form.lang button[value=en]").click()
        tab.goto(f"/assureur/imports/{run.pk}/")
        text = looks_right(tab, english=True)
        assert "Rejected rows" in text and "impossible day" in text and "impossible month" in text
