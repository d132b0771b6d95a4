"""Surveillance tests: the incidents' population (two insurers of synthetic people), a replayable clock."""

import pytest

from rempart.incidents.tests.conftest import COL, actor_for, card_of, population  # noqa: F401 - fixtures
from rempart.surveillance import canaries, responses, switches
from rempart.surveillance.counters import get_store
from rempart.surveillance.engine import baselines


@pytest.fixture(autouse=True)
def fresh_surveillance(settings, tmp_path):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")
    switches.forget()
    canaries.forget()
    baselines.forget()
    responses._recent_alerts.clear()
    yield
    if settings.REMPART_SURVEILLANCE_STORE == "redis":
        get_store().clear()


class Clock:
    """Replaces the counters' clock: ``advance`` moves time on without waiting."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    import time

    from rempart.surveillance import engine

    fake = Clock(time.time())
    monkeypatch.setattr(engine, "clock", fake)
    return fake


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    """Both counter stores: the embedded default (database) and Redis (127.0.0.1:6379)."""
    settings.REMPART_SURVEILLANCE_STORE = request.param
    if request.param == "redis":
        settings.REMPART_SURVEILLANCE_REDIS_URL = "redis://127.0.0.1:6379/15"
        get_store().clear()
    return request.param
