"""The database down: the API answers 503 JSON with Retry-After, the portal a 503 page, and nothing is
counted twice (or without its ledger row) when it comes back (rempart/outage.py)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client

from rempart.accounts import tokens
from rempart.ledger.models import Disclosure
from rempart.surveillance.actors import actor_key
from rempart.surveillance.counters import HOUR, Count, get_store
from rempart.testing import login

TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextlib.contextmanager
def database_down(*, only: str | None = None):
    """Every statement (or, with ``only``, those that name that table) fails as on a lost connection.

    Savepoint statements pass, so that the test's own transaction stays usable once the database is back.
    """

    def refuse(execute, sql, params, many, context):
        if not sql.lstrip().upper().startswith(TRANSACTION_CONTROL) and (only is None or only in sql):
            raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        yield


@pytest.fixture
def api_client():
    return Client(raise_request_exception=False)


@pytest.fixture
def token(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)


def check(client, raw: str, family):
    payload = {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
               "birth_date": family.parent_birth, "domain": "OPTI"}  # fmt: skip
    return client.post(
        "/api/v1/rights/check",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


def assert_unavailable_json(response) -> None:
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    body = response.json()
    assert body["code"] == "unavailable" and set(body) == {"detail", "code"}
    assert (
        "Traceback" not in response.content.decode() and "OperationalError" not in response.content.decode()
    )


def counted(token_obj) -> int:
    class TokenActor:
        token_id = token_obj.pk
        user_id = None

    key = actor_key(TokenActor)
    return get_store().update([Count(key, HOUR, add=0)], [])[f"{key}|hour"]


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = request.param
    if request.param == "redis":
        settings.REMPART_SURVEILLANCE_REDIS_URL = "redis://127.0.0.1:6379/13"  # this module's own db
        get_store().clear()
    yield request.param
    if request.param == "redis":
        get_store().clear()


def test_every_api_request_gets_503_json_when_the_database_is_down(api_client, cast, family, token):
    raw = token[1]
    with database_down():
        assert_unavailable_json(check(api_client, raw, family))
        assert_unavailable_json(api_client.get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {raw}"))
        assert_unavailable_json(api_client.get("/api/v1/ledger/anchors", HTTP_AUTHORIZATION="Bearer rmp_x_y"))
    assert check(api_client, raw, family).status_code == 200  # back: answers again


def test_a_check_that_fails_in_its_transaction_counts_nothing(api_client, cast, family, token, store):
    token_obj, raw = token
    with database_down(only="ledger_disclosure"):  # the lookup works, the ledger row cannot be written
        assert_unavailable_json(check(api_client, raw, family))
    assert not Disclosure.objects.exists()
    assert counted(token_obj) == 0  # no counted check without its ledger row

    response = check(api_client, raw, family)  # the database is back: the same request again
    assert response.status_code == 200
    assert Disclosure.objects.count() == 1 and counted(token_obj) == 1


def test_a_check_whose_counters_fail_after_the_commit_keeps_its_ledger_row(
    api_client, cast, family, token, settings
):
    """The database goes down between the ledger's commit and the counters (database store): the answer is
    lost, the disclosure stays recorded, and the check is counted at most once: never without its row."""
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = "database"
    token_obj, raw = token
    with database_down(only="surveillance_counter"):
        assert_unavailable_json(check(api_client, raw, family))
    assert Disclosure.objects.count() == 1
    assert counted(token_obj) == 0
    assert check(api_client, raw, family).status_code == 200
    assert Disclosure.objects.count() == 2 and counted(token_obj) == 1


def test_the_portal_shows_a_503_page_in_french_then_in_english(cast, family):
    browser = Client(raise_request_exception=False)
    login(browser, cast.staff, cast.secrets[cast.staff.email])
    with database_down():
        response = browser.get("/comptoir/droits/")
    assert response.status_code == 503 and response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == "30" and response["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in response  # the site's headers, the site's style
    page = response.content.decode()
    assert '<html lang="fr">' in page and "Service momentanément indisponible" in page
    assert "rempart.css" in page and "Traceback" not in page and "OperationalError" not in page
    assert cast.staff.email not in page  # nothing of the session is read to draw it

    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    with database_down():
        response = browser.get("/comptoir/droits/")
    page = response.content.decode()
    assert response.status_code == 503 and '<html lang="en">' in page
    assert "Service temporarily unavailable" in page and "Service momentanément" not in page
    assert browser.get("/comptoir/droits/").status_code == 200  # back


def test_other_server_errors_stay_500_and_the_api_ones_are_json(rf):
    from rempart import outage

    try:
        raise ValueError("a bug")
    except ValueError:
        api = outage.server_error(rf.get("/api/v1/whoami"))
        page = outage.server_error(rf.get("/"))
    assert api.status_code == 500 and json.loads(api.content)["code"] == "internal"
    assert page.status_code == 500 and "Retry-After" not in page


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


CHILD = textwrap.dedent(
    """
    import json, django
    django.setup()
    from django.test import Client
    client = Client(raise_request_exception=False, HTTP_HOST="localhost")
    api = client.post("/api/v1/rights/check", data="{}", content_type="application/json",
                      HTTP_AUTHORIZATION="Bearer rmp_abcdef12_secret")
    client.cookies["sessionid"] = "a" * 32
    page = client.get("/comptoir/droits/")
    print(json.dumps({"api": [api.status_code, api["Content-Type"], api.get("Retry-After"), api.content.decode()],
                      "page": [page.status_code, page["Content-Type"], page.content.decode()]}))
    """
)


def test_a_real_postgresql_server_that_is_not_there(tmp_path):
    """Not a patch: a process whose DATABASE_URL points at a closed port, as after the server went away."""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_closed_port()}/rempart_gone",
        "REMPART_VAR_DIR": str(settings.VAR_DIR),
        "DJANGO_SETTINGS_MODULE": "rempart.settings",
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=settings.BASE_DIR, capture_output=True, timeout=120
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")[-2000:]
    result = json.loads(child.stdout.decode().strip().splitlines()[-1])
    status, content_type, retry_after, body = result["api"]
    assert (status, content_type, retry_after) == (503, "application/json", "30")
    assert json.loads(body)["code"] == "unavailable"
    status, content_type, page = result["page"]
    assert status == 503 and content_type.startswith("text/html")
    assert "Service momentanément indisponible" in page and "Traceback" not in page


@pytest.mark.django_db
def test_an_unknown_api_path_answers_json_and_a_page_stays_a_page(client):
    """Every API error is JSON, an unknown path under /api/ included; people still get the site's 404 page."""
    for path in ("/api/v1/nowhere", "/api/v1/claims/lots/x/y/z", "/api/v2/"):
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "resource not found", "code": "not_found"}
    page = client.get("/nulle-part/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
