"""GET /api/v1/insurer/statements…: an insurer's token reads its statements and detail files, nobody else's."""

# ruff: noqa: F811 - the fixtures imported from test_detail are redefined as test parameters, as pytest wants

from __future__ import annotations

import pytest

from rempart.accounts import tokens
from rempart.accounts.models import Organisation, Role, SecurityEvent
from rempart.billing.models import Statement
from rempart.billing.tests.test_detail import (  # noqa: F401 - fixtures
    _billing_dir,
    billed,
    make_statement,
    paid_claim,
    people_of,
    population,
    read_rows,
)
from rempart.ledger.models import Disclosure
from rempart.testing import make_user


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def insurer_token(cast):
    owner = make_user("dsi@insurer.test", cast.insurer, Role.OWNER)
    return tokens.create_token(cast.insurer, "Comptabilité", ["billing:read"], owner)


@pytest.fixture
def rival_token(cast, population):  # noqa: F811
    insurer = population.insurers[1]
    organisation = Organisation.objects.create(kind="insurer", name=insurer.name, insurer=insurer)
    owner = make_user("dsi@rival.test", organisation, Role.OWNER)
    (person,) = people_of(insurer, 1)
    theirs = make_statement(insurer, [paid_claim(cast.optician, insurer, person, [(2_000, "accepted")])])
    return tokens.create_token(organisation, "Comptabilité", ["billing:read"], owner)[1], theirs


def test_list_and_read_statements(client, billed, insurer_token):
    statement = billed[0]
    _token, raw = insurer_token
    body = client.get("/api/v1/insurer/statements", **bearer(raw)).json()
    assert body["count"] == 1 and body["results"][0]["number"] == statement.number
    assert body["results"][0]["paid_cents"] == 19_500 and body["results"][0]["detail_sha256"] is None
    one = client.get(f"/api/v1/insurer/statements/{statement.number}", **bearer(raw)).json()
    assert one["number"] == statement.number and one["received_cents"] == 0
    assert one["detail_url"] == f"/api/v1/insurer/statements/{statement.number}/detail"
    assert client.get("/api/v1/insurer/statements?since=2099-01-01", **bearer(raw)).json()["count"] == 0


def test_bad_filters_are_json_400s(client, billed, insurer_token):
    raw = insurer_token[1]
    for query, field in (("since=yesterday", "since"), ("page=0", "page"), ("page_size=1000", "page_size"),
                         ("since=2026-02-01&until=2026-01-01", "until")):  # fmt: skip
        response = client.get(f"/api/v1/insurer/statements?{query}", **bearer(raw))
        assert response.status_code == 400 and response.json()["field"] == field, query


def test_the_detail_file_through_the_api_is_recorded(client, billed, insurer_token, cast, tmp_path):
    statement, _claims, people = billed
    token, raw = insurer_token
    response = client.get(f"/api/v1/insurer/statements/{statement.number}/detail", **bearer(raw))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    path = tmp_path / "got.csv"
    path.write_bytes(b"".join(response.streaming_content))
    rows = read_rows(path)
    assert len(rows) == 4 and {r["statement_number"] for r in rows} == {statement.number}
    statement.refresh_from_db()
    assert response["X-Content-SHA256"] == statement.detail_sha256
    download = Disclosure.objects.get(purpose="billing", beneficiary_id__isnull=True)
    assert download.channel == "api" and download.token_id == token.pk
    assert download.organisation_id == cast.insurer.pk
    assert Disclosure.objects.filter(purpose="billing", beneficiary_id__isnull=False).count() == len(people)
    event = SecurityEvent.objects.get(tag="billing.detail_downloaded")
    assert event.organisation == cast.insurer and event.details["reference"] == download.reference


def test_another_insurers_statement_is_the_same_404(client, billed, insurer_token, rival_token):
    raw = insurer_token[1]
    _rival_raw, theirs = rival_token
    listed = client.get("/api/v1/insurer/statements", **bearer(raw)).json()["results"]
    assert theirs.number not in {s["number"] for s in listed}
    for suffix in ("", "/detail"):
        mine = client.get(f"/api/v1/insurer/statements/{theirs.number}{suffix}", **bearer(raw))
        unknown = client.get(f"/api/v1/insurer/statements/REL-NOPE{suffix}", **bearer(raw))
        assert mine.status_code == unknown.status_code == 404
        assert mine.json() == unknown.json()
    assert not Disclosure.objects.filter(purpose="billing").exists()
    assert not Statement.objects.get(pk=theirs.pk).detail_sha256


def test_other_tokens_are_refused(client, cast, billed):
    assert client.get("/api/v1/insurer/statements").status_code == 401
    _token, raw = tokens.create_token(cast.optician, "LGO", ["payments:read"], cast.owner)
    response = client.get("/api/v1/insurer/statements", **bearer(raw))
    assert response.status_code == 403 and "billing:read" in response.json()["detail"]
    with pytest.raises(tokens.TokenError):
        tokens.create_token(cast.optician, "LGO", ["billing:read"], cast.owner)


def test_an_altered_detail_file_is_a_json_409(client, billed, insurer_token):
    import os

    from rempart.billing import detail

    statement = billed[0]
    written = detail.write_detail(statement)
    os.chmod(written.path, 0o640)
    written.path.write_text("forged\n", encoding="utf-8")
    response = client.get(f"/api/v1/insurer/statements/{statement.number}/detail", **bearer(insurer_token[1]))
    assert response.status_code == 409 and "empreinte" in response.json()["detail"]
