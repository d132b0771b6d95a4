"""The portal's error pages: in the site's style and the person's language, with a way back, never a URL map."""

import importlib.util
from pathlib import Path

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.contrib.staticfiles.management.commands.runserver import Command as RunServer
from django.test import Client

from rempart.testing import login

ROOT = Path(__file__).resolve().parents[3]


def en(client: Client) -> Client:
    client.cookies["django_language"] = "en"
    return client


def test_a_member_of_the_wrong_role_gets_the_404_page_not_a_url_map(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    page = client.get("/operateur/incidents/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "Page introuvable" in html and 'href="/"' in html and "Revenir à l'accueil" in html
    assert 'href="/static/rempart/rempart.css"' in html  # the site's style
    assert "Using the URLconf" not in html and "operateur/" not in html.split("<main>")[1]
    assert cast.staff.email in html  # still the person's header: logged in, with the menu
    assert page["Content-Language"] == "fr"


def test_the_404_page_in_english_when_chosen(client, cast):
    login(en(client), cast.staff, cast.secrets[cast.staff.email])
    page = client.get("/operateur/surveillance/")
    html = page.content.decode()
    assert page.status_code == 404 and "Page not found" in html and "Page introuvable" not in html
    assert '<html lang="en">' in html


def test_an_unknown_address_for_someone_not_logged_in_offers_the_login(db, client):
    page = client.get("/nulle-part/", HTTP_ACCEPT_LANGUAGE="en")
    html = page.content.decode()
    assert page.status_code == 404 and "Page not found" in html and 'href="/accounts/login/"' in html


@pytest.mark.urls("rempart.tests.ux.urls")
def test_a_defect_is_the_500_page_without_the_traceback(db, client):
    client.raise_request_exception = False
    for lang, words in (("fr", "Une erreur est survenue"), ("en", "Something went wrong")):
        page = client.get("/ux-test/boom/", HTTP_ACCEPT_LANGUAGE=lang)
        html = page.content.decode()
        assert page.status_code == 500 and words in html and 'href="/"' in html
        assert "SECRET-TRACEBACK-TEXT" not in html and "RuntimeError" not in html and "Traceback" not in html


@pytest.mark.urls("rempart.tests.ux.urls")
def test_even_with_debug_an_api_defect_is_json_without_the_traceback(db, client, settings):
    settings.DEBUG = True
    client.raise_request_exception = False
    page = client.get("/api/ux-test/boom/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 500 and page["Content-Type"] == "application/json"
    assert page.json() == {"detail": "internal error", "code": "internal"}
    assert b"SECRET-TRACEBACK-TEXT" not in page.content


def test_a_form_sent_without_its_csrf_token_is_the_403_page(db):
    client = Client(enforce_csrf_checks=True)
    page = client.post(
        "/accounts/login/", {"login": "x@example.org", "password": "y"}, HTTP_ACCEPT_LANGUAGE="fr"
    )
    html = page.content.decode()
    assert page.status_code == 403 and "Accès refusé" in html and "formulaire a expiré" in html
    assert "CSRF" not in html  # Django's English reason stays in the log
    page = en(Client(enforce_csrf_checks=True)).post("/accounts/login/", {"login": "x@example.org"})
    assert page.status_code == 403 and "Access denied" in page.content.decode()


def test_permission_denied_is_the_403_page(rf, db):
    from django.contrib.auth.models import AnonymousUser

    from rempart.error_pages import permission_denied

    request = rf.get("/quelque-part/", HTTP_ACCEPT_LANGUAGE="en")
    request.user = AnonymousUser()
    page = permission_denied(request)
    assert page.status_code == 403 and "Access denied" in page.content.decode()
    api = permission_denied(rf.get("/api/v1/x", HTTP_ACCEPT_LANGUAGE="fr"))
    assert api.status_code == 403 and api["Content-Type"] == "application/json"


def test_the_503_page_still_renders_in_the_sites_style(rf):
    from rempart.outage import page_response

    page = page_response(rf.get("/comptoir/droits/", HTTP_ACCEPT_LANGUAGE="en"))
    assert page.status_code == 503 and b"rempart.css" in page.content and b'lang="en"' in page.content


def _dev_script():
    spec = importlib.util.spec_from_file_location("rempart_dev_script", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_runs_without_debug_and_still_serves_static_files(monkeypatch):
    """Decision (docs/decisions.md): the demo is served without DEBUG; runserver --insecure serves the CSS."""
    dev = _dev_script()
    calls = []
    monkeypatch.delenv("REMPART_DEBUG", raising=False)
    monkeypatch.setattr(dev, "ensure_venv", lambda: None)
    monkeypatch.setattr(dev, "rempart", lambda *args: None)
    monkeypatch.setattr(dev, "supervise", lambda *args, env=None: calls.append((args, env)), raising=False)
    monkeypatch.setattr(dev, "run", lambda *args, env=None, **kw: calls.append((args, env)))
    monkeypatch.setattr(dev, "start_worker", lambda env: calls.append((("worker",), env)))
    monkeypatch.setattr(dev, "stop_worker", lambda worker: None)
    dev.demo([])
    assert (("worker",), calls[0][1]) in calls  # the demo runs its jobs in a worker beside the server
    (args, env), *_ = [c for c in calls if "runserver" in c[0]]
    assert env["REMPART_DEBUG"] in ("0", "", "false") and "--insecure" in args
    handler = RunServer().get_handler(use_static_handler=True, insecure_serving=True)
    assert isinstance(handler, StaticFilesHandler)  # DEBUG off: --insecure is what serves /static/
