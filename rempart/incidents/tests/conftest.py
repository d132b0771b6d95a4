"""Two insurers with synthetic people, and checks made through the recording gate by chosen actors."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from rempart.gate import Actor, check_rights
from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.models import Insurer
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import import_rights
from rempart.rights.cards import read_card_data

COL = {name: index for index, name in enumerate(fmt.COLUMNS)}


@pytest.fixture(autouse=True)
def no_surveillance(settings):
    """These tests script abuse at test speed to build scopes; surveillance (issue 7) is tested on its own."""
    settings.REMPART_SURVEILLANCE_ENABLED = False


@pytest.fixture(autouse=True)
def incident_dir(settings, tmp_path):
    """Generated documents go to the test's own directory, never to var/incidents."""
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")
    return tmp_path / "incidents"


@dataclass
class Population:
    insurers: list[Insurer]
    people: dict[int, list[list[str]]] = field(default_factory=dict)  # insurer id → rights rows


def _load(insurer: Insurer, tmp_path, count: int, seed: int) -> list[list[str]]:
    products = tmp_path / f"products-{insurer.pk}.csv"
    products.write_text(synthetic.products_file_text(insurer.amc_number), encoding="utf-8")
    assert not import_products(products, insurer).errors
    spec = synthetic.InsurerSpec(0, insurer.amc_number, insurer.name, insurer.kind, "", count)
    today = timezone.localdate()
    rows = [
        row
        for row in synthetic.beneficiary_rows(spec, seed, today)
        if row[COL["birth_date"]] <= today.isoformat() and row[COL["contract_status"]] == "active"
    ]
    path = tmp_path / f"rights-{insurer.pk}.csv"
    lines = [
        fmt.magic_line(insurer.amc_number),
        fmt.header_line(),
        *(";".join(r) for r in rows),
        fmt.trailer_line(len(rows)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run, summary = import_rights(
        path, insurer, report_dir=tmp_path / f"report-{insurer.pk}", show_progress=False
    )
    assert summary.rejected == 0
    return rows


@pytest.fixture
def population(cast, tmp_path) -> Population:
    second = Insurer.objects.create(amc_number="987654321", name="Prévoyance Seconde", kind="institution")
    insurers = [cast.insurer.insurer, second]
    population = Population(insurers)
    for seed, insurer in enumerate(insurers, start=11):
        population.people[insurer.pk] = _load(insurer, tmp_path, 40, seed)
    return population


def card_of(row: list[str], domain: str = "OPTI"):
    nir = row[COL["nir"]] or row[COL["ouvrant_droit_nir"]]
    rank = row[COL["birth_rank"]] if not row[COL["nir"]] else None
    return read_card_data(
        amc_number=row[COL["amc_number"]],
        adherent_number=row[COL["adherent_number"]],
        nir=nir,
        birth_date=row[COL["birth_date"]],
        birth_rank=rank,
        domain=domain,
        today=timezone.localdate(),
    )


def actor_for(user, ip="203.0.113.7", channel="portal") -> Actor:
    return Actor(
        channel=channel,
        organisation_id=user.membership.organisation_id,
        user_id=user.pk,
        ip=ip,
        session_ref="test",
    )


def check(actor: Actor, row: list[str], domain: str = "OPTI"):
    return check_rights(actor, card_of(row, domain))


def since(minutes: int = 60) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)
