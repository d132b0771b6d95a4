"""Every API error is JSON {"detail", "code", "field"}, in one language per request, and in the schema."""

import datetime as dt

import pytest
from django.utils import timezone

from rempart.lib.identifiers import nir_check_key
from rempart.surveillance.models import ActorState

NIR = "1850575123456" + nir_check_key("1850575123456")
ENGLISH_OF_PYDANTIC = ("Field required", "Input should", "Value error", "Not Found", "Method not allowed")


def card(**extra):
    return {"amc_number": "123456789", "adherent_number": "ADH-0001", "nir": NIR, "birth_date": "1985-05-12",
            "domain": "OPTI", **extra}  # fmt: skip


def error(response, status: int, code: str, language: str) -> str:
    """The answer is an API error of this status and code, said in ``language``; returns its detail."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and isinstance(body["detail"], str) and body["detail"]
    assert response["Content-Language"] == language
    if language == "fr":
        assert not any(english in body["detail"] for english in ENGLISH_OF_PYDANTIC), body["detail"]
    return body["detail"]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_not_found_unknown_path_and_unknown_resource(db, api, token_for, lang):
    word = {"fr": "ressource introuvable", "en": "resource not found"}[lang]
    assert error(api("get", "/api/v1/nulle-part", lang=lang), 404, "not_found", lang) == word
    raw = token_for("payments:read")
    detail = error(api("get", "/api/v1/payments/PAY-NOPE", raw, lang=lang), 404, "not_found", lang)
    assert (
        detail
        == {"fr": "paiement inconnu pour votre organisation", "en": "payment unknown for your organisation"}[
            lang
        ]
    )


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_method_not_allowed_keeps_allow(db, api, token_for, lang):
    response = api("get", "/api/v1/rights/check", token_for("rights:check"), lang=lang)
    detail = error(response, 405, "method_not_allowed", lang)
    assert "POST" in response["Allow"]
    assert (
        detail
        == {"fr": "méthode non permise pour cette adresse", "en": "method not allowed for this address"}[lang]
    )
    error(api("delete", "/api/v1/whoami", lang=lang), 405, "method_not_allowed", lang)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_body_that_does_not_parse(db, api, token_for, lang):
    for path, scope in (("/api/v1/rights/check", "rights:check"), ("/api/v1/pec", "pec:write")):
        detail = error(
            api("post", path, token_for(scope), '{"amc_number": ', lang=lang), 400, "malformed_body", lang
        )
        assert detail == {"fr": "corps JSON illisible", "en": "unreadable JSON body"}[lang]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_unauthenticated_and_bad_tokens(db, api, lang):
    detail = error(api("get", "/api/v1/whoami", lang=lang), 401, "unauthenticated", lang)
    assert "Bearer" in detail and (("manquant" in detail) == (lang == "fr"))
    detail = error(api("get", "/api/v1/whoami", "rmp_abc_def", lang=lang), 401, "token_invalid", lang)
    assert detail == {"fr": "jeton invalide", "en": "invalid token"}[lang]
    error(api("post", "/api/v1/rights/check", None, card(), lang=lang), 401, "unauthenticated", lang)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_token_without_the_scope(db, api, token_for, lang):
    detail = error(
        api("get", "/api/v1/payments", token_for("rights:check"), lang=lang), 403, "scope_missing", lang
    )
    assert "payments:read" in detail and (("autorisation" in detail) == (lang == "fr"))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_too_large_by_content_length_and_by_djangos_limit(db, api, token_for, settings, lang):
    raw = token_for("rights:check")
    big = card(adherent_number="A" * 20_000)
    detail = error(api("post", "/api/v1/rights/check", raw, big, lang=lang), 413, "too_large", lang)
    assert "16384" in detail and (("octets" in detail) == (lang == "fr"))
    settings.REMPART_API_MAX_BODY_BYTES = 10_000_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000  # RequestDataTooBig when django-ninja reads the body
    error(api("post", "/api/v1/rights/check", raw, big, lang=lang), 413, "too_large", lang)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_wrong_content_type(db, api, token_for, lang):
    response = api(
        "post", "/api/v1/rights/check", token_for("rights:check"), "x=1", lang=lang, content_type="text/plain"
    )
    detail = error(response, 415, "unsupported_media_type", lang)
    assert "application/json" in detail and (("attendu" in detail) == (lang == "fr"))


@pytest.mark.parametrize(
    ("body", "field", "fr", "en"),
    [
        ({k: v for k, v in card().items() if k != "nir"}, "nir", "nir : champ obligatoire", "nir: required field"),
        (card(birth_rank="deux"), "birth_rank", "birth_rank : nombre entier attendu", "birth_rank: integer expected"),
        (card(birth_rank=12), "birth_rank", "birth_rank : au plus 9", "birth_rank: at most 9"),
        (card(care_date="hier"), "care_date", "care_date : date attendue au format AAAA-MM-JJ", "care_date: date expected as YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_validation_errors_in_one_language(db, api, token_for, body, field, fr, en):
    raw = token_for("rights:check")
    for lang, expected in (("fr", fr), ("en", en)):
        response = api("post", "/api/v1/rights/check", raw, body, lang=lang)
        detail = error(response, 400, "invalid", lang)
        assert response.json()["field"] == field
        assert (
            detail.replace(" : ", ": ") == expected.replace(" : ", ": ")
            if lang == "en"
            else detail == expected
        )


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_rate_limited_says_when_to_retry(db, api, cast, lang):
    from rempart.accounts import tokens

    token, raw = tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)
    ActorState.objects.create(
        actor=f"t:{token.pk}", throttled_until=timezone.now() + dt.timedelta(seconds=60)
    )
    response = api("post", "/api/v1/rights/check", raw, card(), lang=lang)
    detail = error(response, 429, "rate_limited", lang)
    assert int(response["Retry-After"]) > 0 and (("réessayez" in detail) == (lang == "fr"))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_defect_is_a_bare_500_and_a_database_outage_a_503(db, api, token_for, monkeypatch, lang):
    from django.db import OperationalError

    import rempart.accounts.api as accounts_api

    raw = token_for("rights:check")

    def broken(**kwargs):
        raise RuntimeError("SECRET-TRACEBACK-TEXT")

    monkeypatch.setattr(accounts_api, "WhoAmI", broken)
    response = api("get", "/api/v1/whoami", raw, lang=lang)
    assert error(response, 500, "internal", lang) == {"fr": "erreur interne", "en": "internal error"}[lang]
    assert b"SECRET" not in response.content and b"Traceback" not in response.content

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(accounts_api, "WhoAmI", down)
    response = api("get", "/api/v1/whoami", raw, lang=lang)
    assert error(response, 503, "unavailable", lang) and response["Retry-After"]


def test_the_schema_documents_every_error_with_the_error_schema(db, client):
    schema = client.get("/api/v1/openapi.json").json()
    error_schema = schema["components"]["schemas"]["ApiError"]
    assert set(error_schema["required"]) == {"detail", "code"}
    paths = schema["paths"]
    expected = {
        ("/api/v1/rights/check", "post"): {"400", "401", "403", "405", "413", "415", "429", "500", "503"},
        ("/api/v1/whoami", "get"): {"401", "403", "405", "500", "503"},
        ("/api/v1/payments/{reference}", "get"): {"401", "403", "404", "405", "500", "503"},
        ("/api/v1/claims/{invoice_number}/credit-notes", "post"): {"400", "401", "404", "405", "413", "415"},
    }
    for (path, method), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert statuses <= set(responses), (path, statuses - set(responses))
        for status in statuses:
            assert responses[status]["content"]["application/json"]["schema"], (path, status)
    # nothing is documented that cannot happen: no 422 (bad input is a 400), no 404 on a path without a resource
    assert all("422" not in op["responses"] for ops in paths.values() for op in ops.values())
    assert "404" not in paths["/api/v1/whoami"]["get"]["responses"]
