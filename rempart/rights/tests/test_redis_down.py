"""Redis down or restarting: the API answers the same 503 JSON as for the database (rempart/outage.py), never a 500.

Found by the soak test (bench/soak.py): right after a Redis restart, the surveillance counters' script call raised
``BusyLoadingError`` ("Redis is loading the dataset in memory") and the rights check answered a 500.
"""

from __future__ import annotations

import json
import socket

import pytest
from django.test import Client
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rempart.accounts import tokens
from rempart.ledger.models import Disclosure
from rempart.surveillance import counters


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when the socket is: nothing listens there any more


@pytest.fixture
def redis_counters(settings):
    """Surveillance on, its counters in a Redis that is not there (a closed port on 127.0.0.1)."""
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = "redis"
    settings.REMPART_SURVEILLANCE_REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    counters._redis_store.cache_clear()
    yield
    counters._redis_store.cache_clear()


@pytest.fixture
def token(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]


def check(raw: str, family, language: str = "fr"):
    payload = {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
               "birth_date": family.parent_birth, "domain": "OPTI"}  # fmt: skip
    return Client(raise_request_exception=False).post(
        "/api/v1/rights/check", data=json.dumps(payload), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_ACCEPT_LANGUAGE=language,
    )  # fmt: skip


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    body = response.json()
    assert body["code"] == "unavailable" and set(body) == {"detail", "code"}
    assert "Redis" not in response.content.decode() and "Traceback" not in response.content.decode()


def test_a_redis_that_is_not_there_is_a_503_and_the_disclosure_stays_recorded(
    cast, family, token, redis_counters
):
    response = check(token, family)
    assert_unavailable(response)
    assert "indisponible" in response.json()["detail"]
    # The counters are reached after the ledger's commit: no answer was given, the lookup stays recorded.
    assert Disclosure.objects.count() == 1
    assert check(token, family, "en").json()["detail"].startswith("service temporarily unavailable")


@pytest.mark.parametrize(
    "failure",
    [
        BusyLoadingError("Redis is loading the dataset in memory"),
        RedisTimeoutError("Timeout reading from socket"),
    ],
)
def test_a_redis_restarting_or_slow_is_a_503(cast, family, token, redis_counters, monkeypatch, failure):
    def fails(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(counters.RedisStore, "update", fails)
    assert_unavailable(check(token, family))


def test_another_redis_error_is_still_a_defect_answered_500_json(
    cast, family, token, redis_counters, monkeypatch
):
    """Only an outage is a 503: a wrong command or script (a bug) stays a 500, so that it is seen and fixed."""

    def fails(self, *args, **kwargs):
        raise ResponseError("ERR Error running script")

    monkeypatch.setattr(counters.RedisStore, "update", fails)
    response = check(token, family)
    assert response.status_code == 500 and response.json()["code"] == "internal"
