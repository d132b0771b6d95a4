"""Insurers receive the signed anchors: a portal page with downloads, and GET /api/v1/ledger/anchors."""

import json

import pyotp
import pytest
from django.core.management import CommandError, call_command

from rempart.accounts import tokens
from rempart.accounts.models import Role
from rempart.ledger import anchors
from rempart.ledger.models import LedgerAnchor
from rempart.testing import login, make_user

from .tamper import append, cut_tail, longest_chain


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def anchored(db):
    append(10)
    anchors.sign_heads("command")
    append(3)
    anchors.sign_heads("scope_freeze")
    return list(LedgerAnchor.objects.order_by("number"))


@pytest.fixture
def insurer_owner(cast):
    secret = pyotp.random_base32()
    user = make_user("dpo@insurer.test", cast.insurer, Role.OWNER, totp_secret=secret)
    cast.secrets[user.email] = secret
    return user


def test_an_insurer_member_lists_and_downloads_the_anchors(client, cast, anchored, tmp_path):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    page = client.get("/assureur/registre/ancres/").content.decode()
    assert "Ancres signées du registre" in page and anchors.key_id(anchors.public_key()) in page
    table = page[page.index("<tbody>") :]
    assert "<td>13 (16 chaînes)</td>" in table and "gel d'un périmètre d'incident" in table, table
    one = client.get("/assureur/registre/ancres/2.json")
    assert one["Content-Disposition"].startswith('attachment; filename="anchor-000002-')
    assert one.content.decode() == anchored[1].document  # byte for byte what the directory holds
    every = client.get("/assureur/registre/ancres/toutes.json").json()
    assert [a["number"] for a in every["anchors"]] == [1, 2] and every["public_key"].startswith("-----BEGIN")
    pem = client.get("/assureur/registre/cle-publique.pem")
    assert pem.content.decode() == anchors.public_key_pem()
    assert client.get("/assureur/registre/ancres/99.json").status_code == 404

    kept = tmp_path / "kept.json"  # what the insurer keeps proves the ledger later
    kept.write_bytes(client.get("/assureur/registre/ancres/toutes.json").content)
    call_command("ledger", "verify", "--against-published", str(kept))


@pytest.mark.parametrize("who", ["owner", "staff", "analyst", "admin"])
def test_only_insurer_members_reach_the_anchor_pages(client, cast, anchored, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    for url in ("/assureur/registre/ancres/", "/assureur/registre/ancres/1.json",
                "/assureur/registre/ancres/toutes.json", "/assureur/registre/cle-publique.pem"):  # fmt: skip
        assert client.get(url).status_code == 404, url


def test_the_anchor_pages_need_a_login(client, anchored):
    response = client.get("/assureur/registre/ancres/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_an_insurer_token_fetches_the_anchors_through_the_api(
    client, cast, anchored, insurer_owner, tmp_path
):
    _token, raw = tokens.create_token(cast.insurer, "Archivage DPO", ["ledger:read"], insurer_owner)
    response = client.get("/api/v1/ledger/anchors", **bearer(raw))
    assert response.status_code == 200
    body = response.json()
    assert [a["number"] for a in body["anchors"]] == [1, 2] and body["next_after"] is None
    assert body["key_id"] == anchors.key_id(anchors.public_key())
    page = client.get("/api/v1/ledger/anchors?after=0&limit=1", **bearer(raw)).json()
    assert [a["number"] for a in page["anchors"]] == [1] and page["next_after"] == 1
    rest = client.get("/api/v1/ledger/anchors?after=1", **bearer(raw)).json()
    assert [a["number"] for a in rest["anchors"]] == [2]
    assert client.get("/api/v1/ledger/anchors?limit=0", **bearer(raw)).status_code == 400

    kept = tmp_path / "api.json"
    kept.write_text(json.dumps(body))
    call_command("ledger", "verify", "--against-published", str(kept))
    victim = longest_chain()
    cut_tail(victim, 0)
    with pytest.raises(CommandError):
        call_command("ledger", "verify", "--against-published", str(kept))


def test_the_api_refuses_other_tokens(client, cast, anchored):
    assert client.get("/api/v1/ledger/anchors").status_code == 401
    _token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    response = client.get("/api/v1/ledger/anchors", **bearer(raw))
    assert response.status_code == 403 and "ledger:read" in response.json()["detail"]


def test_ledger_read_is_for_insurers_and_rights_check_for_professionals(cast, insurer_owner):
    with pytest.raises(tokens.TokenError):
        tokens.create_token(cast.optician, "LGO", ["ledger:read"], cast.owner)
    with pytest.raises(tokens.TokenError):
        tokens.create_token(cast.insurer, "Archivage", ["rights:check"], insurer_owner)
    tokens.create_token(cast.insurer, "Archivage", ["ledger:read"], insurer_owner)


def test_an_insurer_owner_creates_a_ledger_token_from_the_page(client, cast, insurer_owner):
    login(client, insurer_owner, cast.secrets[insurer_owner.email])
    page = client.get("/organisation/jetons/").content.decode()
    assert 'value="ledger:read"' in page and 'value="rights:check"' not in page
    response = client.post(
        "/organisation/jetons/creer/", {"name": "Archivage", "scopes": ["ledger:read"], "lifetime_days": 365}
    )
    assert response.status_code == 302
    assert cast.insurer.api_tokens.get().scopes == ["ledger:read"]
    professional = client.post(
        "/organisation/jetons/creer/", {"name": "X", "scopes": ["rights:check"], "lifetime_days": 30}
    )
    assert professional.status_code == 302 and cast.insurer.api_tokens.count() == 1  # refused by the form


def test_the_anchor_page_is_in_english_on_request(client, cast, anchored):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get("/assureur/registre/ancres/").content.decode()
    assert "Signed anchors of the disclosure ledger" in page and "2 anchors published." in page
    assert "incident scope freeze" in page and "Ledger anchors" in page  # the menu too
