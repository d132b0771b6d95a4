"""The ledger's test cast: three synthetic insurers, three professional organisations, the operator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from rempart.accounting import service
from rempart.accounting.models import Account
from rempart.accounts.models import Organisation
from rempart.registry import synthetic
from rempart.registry.models import Insurer, Professional

DAY = dt.date(2026, 11, 2)


@dataclass
class Parties:
    insurers: list[Insurer]
    shops: list[Organisation]
    receivables: list[Account]
    payables: list[Account]
    bank: Account
    revenue: Account


def make_parties(count: int = 3, seed: int = 13) -> Parties:
    insurers = [
        Insurer.objects.create(amc_number=spec.amc_number, name=spec.name, kind=spec.kind)
        for spec in synthetic.plan_insurers(seed=seed, beneficiaries=30)[:count]
    ]
    shops = []
    for spec in synthetic.professionals(seed, count):
        professional = Professional.objects.create(finess=spec.finess, name=spec.name, domains=spec.domains)
        shops.append(
            Organisation.objects.create(kind="professional", name=spec.name, professional=professional)
        )
    return Parties(
        insurers=insurers,
        shops=shops,
        receivables=[service.insurer_receivable(insurer) for insurer in insurers],
        payables=[service.professional_payable(shop) for shop in shops],
        bank=service.operator_bank(),
        revenue=service.operator_revenue(),
    )


@pytest.fixture
def parties(db) -> Parties:
    return make_parties()


def accept(parties: Parties, cents: int, *, insurer: int = 0, shop: int = 0, key: str = "claim:1:1", **extra):
    """A claim accepted: the insurer owes ``cents``, the operator owes them to the shop."""
    return service.post(
        service.Kind.CLAIM_ACCEPTED,
        [(parties.receivables[insurer], cents), (parties.payables[shop], -cents)],
        idempotency_key=key,
        source=extra.pop("source", ("claim", key.split(":")[1] if key.count(":") >= 1 else key)),
        effective_date=extra.pop("effective_date", DAY),
        **extra,
    )
