"""API tokens: created with step-up, shown once, stored hashed, scoped, expiring, revocable, never a cookie."""

import datetime as dt

import pytest
from django.utils import timezone

from rempart.accounts import tokens
from rempart.accounts.models import ApiToken, SecurityEvent
from rempart.testing import login

from .helpers import age_second_factor


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_owner_creates_a_token_shown_once_and_stored_hashed(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    response = client.post(
        "/organisation/jetons/creer/",
        {"name": "Logiciel LGO", "scopes": ["rights:check"], "lifetime_days": 365},
    )
    assert response.status_code == 302
    page = client.get("/organisation/jetons/").content.decode()
    token = ApiToken.objects.get(organisation=cast.optician)
    raw = page.split('id="new-token">')[1].split("<")[0]
    assert raw.startswith(f"rmp_{token.prefix}_")
    assert raw not in client.get("/organisation/jetons/").content.decode()  # never again
    assert raw not in str(ApiToken.objects.values_list().get(pk=token.pk))
    assert SecurityEvent.objects.filter(tag="token.created", organisation=cast.optician).exists()
    assert client.get("/api/v1/whoami", **bearer(raw)).json()["organisation"] == cast.optician.name


def test_token_creation_needs_a_fresh_second_factor(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    age_second_factor(client, 301)
    response = client.post(
        "/organisation/jetons/creer/", {"name": "X", "scopes": ["rights:check"], "lifetime_days": 30}
    )
    assert response.status_code == 302 and "reauthenticate" in response.url
    assert not ApiToken.objects.exists()


def test_token_lifetime_is_capped_at_two_years(cast):
    with pytest.raises(tokens.TokenError):
        tokens.create_token(cast.optician, "X", ["rights:check"], cast.owner, lifetime_days=731)
    token, _ = tokens.create_token(cast.optician, "X", ["rights:check"], cast.owner)
    assert (token.expires_at - timezone.now()).days in (364, 365)


def test_unknown_scope_is_refused(cast):
    with pytest.raises(tokens.TokenError):
        tokens.create_token(cast.optician, "X", ["beneficiaries:list"], cast.owner)


@pytest.fixture
def live(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)


def test_api_accepts_a_live_token_and_records_its_use(client, live):
    token, raw = live
    assert client.get("/api/v1/whoami", **bearer(raw), REMOTE_ADDR="198.51.100.7").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_ip == "198.51.100.7"


@pytest.mark.parametrize(
    "spoil, status",
    [
        (lambda t, c: ApiToken.objects.filter(pk=t.pk).update(revoked_at=timezone.now()), 401),
        (
            lambda t, c: ApiToken.objects.filter(pk=t.pk).update(
                expires_at=timezone.now() - dt.timedelta(seconds=1)
            ),
            401,
        ),
        (lambda t, c: ApiToken.objects.filter(pk=t.pk).update(suspended_at=timezone.now()), 403),
        (lambda t, c: type(c.optician).objects.filter(pk=c.optician.pk).update(status="suspended"), 403),
        (lambda t, c: type(c.owner).objects.filter(pk=c.owner.pk).update(suspended_at=timezone.now()), 403),
    ],
    ids=["revoked", "expired", "token-suspended", "organisation-suspended", "creator-suspended"],
)
def test_api_rejects_dead_tokens(client, cast, live, spoil, status):
    token, raw = live
    spoil(token, cast)
    response = client.get("/api/v1/whoami", **bearer(raw))
    assert response.status_code == status
    assert "detail" in response.json()


def test_api_rejects_forged_and_malformed_tokens(client, live):
    token, raw = live
    for bad in [
        raw[:-1] + ("A" if raw[-1] != "A" else "B"),
        "rmp_zzzz_abc",
        "garbage",
        f"rmp_{token.prefix}",
    ]:
        assert client.get("/api/v1/whoami", **bearer(bad)).status_code == 401, bad


def test_api_never_accepts_the_portal_session_cookie(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/whoami").status_code == 401


def test_scope_is_enforced(cast):
    token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    with pytest.raises(tokens.TokenRejected) as excinfo:
        tokens.authenticate_token(raw, "pec:write")
    assert excinfo.value.status == 403


def test_revoking_from_the_page(client, cast, live):
    token, raw = live
    login(client, cast.owner, cast.secrets[cast.owner.email])
    client.post(f"/organisation/jetons/{token.pk}/revoquer/")
    assert client.get("/api/v1/whoami", **bearer(raw)).status_code == 401
    assert SecurityEvent.objects.filter(tag="token.revoked").exists()


def test_openapi_schema_documents_bearer_auth(client, db):
    schema = client.get("/api/v1/openapi.json").json()
    assert any(s.get("scheme") == "bearer" for s in schema["components"]["securitySchemes"].values())
    assert client.get("/api/v1/docs").status_code == 200
