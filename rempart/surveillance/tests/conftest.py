"""Surveillance tests: the incidents' population (two insurers of synthetic people), a replayable clock,
and organisations with a clientele (people they confirmed before) for the new-identities budget."""

import datetime as dt
from dataclasses import dataclass

import pytest
from django.utils import timezone

from rempart.incidents.tests.conftest import COL, actor_for, card_of, population  # noqa: F401 - fixtures
from rempart.surveillance import canaries, responses, switches
from rempart.surveillance.counters import get_store
from rempart.surveillance.engine import baselines


@pytest.fixture(autouse=True)
def fresh_surveillance(settings, tmp_path):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")
    settings.VAR_DIR = tmp_path / "var"  # canaries are imported like any file: their reports go under VAR_DIR
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


@pytest.fixture
def synced_clock(clock, monkeypatch):
    """The counters' clock with Django's following it: ledger rows, step-up holds and throttles, the 24 h of
    the ladder all live in the replayed time (a day replays in seconds, a throttle can be waited out)."""
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime.fromtimestamp(clock.now, tz=dt.UTC))
    return clock


@dataclass
class Crowd:
    """Synthetic people of two insurers: an organisation's clientele (it confirmed them before) and strangers."""

    clientele: list[list[str]]
    strangers: list[list[str]]


@pytest.fixture
def crowd(cast, tmp_path) -> Crowd:
    """Every 21st contract of two insurers, families whole: a shop's patients have unrelated adherent numbers
    (no two within ±20, where enumeration is looked for), born before the replayed history."""
    from rempart.incidents.tests.conftest import _load
    from rempart.registry.models import Insurer

    second = Insurer.objects.create(amc_number="987654321", name="Prévoyance Seconde", kind="institution")
    born = (timezone.localdate() - dt.timedelta(days=1000)).isoformat()
    rows = []
    for insurer, seed in ((cast.insurer.insurer, 31), (second, 32)):
        rows += [
            row
            for row in _load(insurer, tmp_path, 6000, seed)
            if int(row[COL["adherent_number"]][2:]) % 21 == 0 and row[COL["birth_date"]] <= born
        ]
    rows = rows[::2] + rows[1::2]  # both insurers in each half
    return Crowd(clientele=rows[:220], strangers=rows[220:])


@pytest.fixture
def remember(settings, synced_clock):
    """Give an organisation its history: its confirmations of ``rows`` over the past months, through the gate
    (surveillance off, as before the deployment), then its memory seeded from the ledger."""
    from rempart.gate import check_rights
    from rempart.surveillance import clientele

    def give(actor, rows, domain: str, days_ago=(40, 700)) -> None:
        now = synced_clock.now
        settings.REMPART_SURVEILLANCE_ENABLED = False
        first, last = days_ago
        for n, row in enumerate(rows):
            synced_clock.now = now - (first + (last - first) * n / max(1, len(rows) - 1)) * 86400
            check_rights(actor, card_of(row, domain))
        synced_clock.now = now
        settings.REMPART_SURVEILLANCE_ENABLED = True
        clientele.forget()
        clientele.seed(actor.organisation_id, now)

    return give
