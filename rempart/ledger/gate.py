"""The recording gate: the one place that reads beneficiaries' personal data, and records every answer.

Whatever the channel, a read goes: validate → look up → decide → append a ledger row → answer, all
in one database transaction. If the ledger row cannot be written, no answer leaves.
A test (rempart/ledger/tests/test_gate_is_the_only_reader.py) fails if another module reads the
personal fields of a beneficiary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.lib.crypto import field_cipher
from rempart.registry.models import Beneficiary, Contract, Insurer
from rempart.rights.cards import CardData
from rempart.rights.coverage import ContractFacts, CoverageFacts, GuaranteeFacts, decide

PURPOSE_RIGHTS_CHECK = "rights_check"


@dataclass(frozen=True)
class Actor:
    """Who asks, through which channel, from where: known to the gate for every read."""

    channel: str
    organisation_id: int
    user_id: int | None = None
    token_id: int | None = None
    ip: str | None = None
    session_ref: str = ""

    @classmethod
    def portal(cls, request) -> Actor:
        from rempart.lib.http import client_ip

        session_key = request.session.session_key or ""
        return cls(
            channel=Disclosure.Channel.PORTAL,
            organisation_id=request.user.membership.organisation_id,
            user_id=request.user.pk,
            ip=client_ip(request),
            session_ref=hashlib.sha256(session_key.encode()).hexdigest()[:32] if session_key else "",
        )

    @classmethod
    def api(cls, request) -> Actor:
        from rempart.lib.http import client_ip

        token = request.api_token
        return cls(
            channel=Disclosure.Channel.API,
            organisation_id=token.organisation_id,
            token_id=token.pk,
            ip=client_ip(request),
            session_ref=f"token:{token.prefix}",
        )


@dataclass(frozen=True)
class RightsAnswer:
    outcome: str
    reference: str
    checked_at: dt.datetime
    domain: str
    care_date: dt.date
    terms: GuaranteeFacts | None
    valid_until: dt.date | None


def _birth_matches(beneficiary: Beneficiary, card: CardData) -> bool:
    born = card.birth_date
    return (beneficiary.birth_year, beneficiary.birth_month, beneficiary.birth_day) == (
        born.year,
        born.month,
        born.day,
    )


def _find(card: CardData) -> tuple[Insurer | None, Contract | None, Beneficiary | None]:
    insurer = Insurer.objects.filter(amc_number=card.amc_number, status=Insurer.Status.ACTIVE).first()
    if insurer is None:
        return None, None, None
    contract = (
        Contract.objects.select_related("product")
        .filter(insurer=insurer, adherent_number=card.adherent_number)
        .first()
    )
    if contract is None:
        return insurer, None, None
    presented = field_cipher().blind_index("nir", card.nir)
    family = Beneficiary.objects.filter(contract=contract).only(
        "pk", "birth_year", "birth_month", "birth_day", "birth_rank", "nir_index", "od_nir_index",
        "coverage_start", "coverage_end",
    )  # fmt: skip
    matches = []
    for person in family:
        if not _birth_matches(person, card):
            continue
        own = person.nir_index is not None and bytes(person.nir_index) == presented
        via_ouvrant_droit = (
            person.od_nir_index is not None
            and bytes(person.od_nir_index) == presented
            and person.birth_rank == card.birth_rank
        )
        if own or via_ouvrant_droit:
            matches.append(person)
    # Two people answering to the same card data would be a registry error: confirm neither.
    return insurer, contract, matches[0] if len(matches) == 1 else None


def _presented_hash(card: CardData) -> bytes:
    return field_cipher().fingerprint(
        "presented",
        card.amc_number,
        card.adherent_number,
        card.nir,
        str(card.birth_date),
        str(card.birth_rank),
    )


def check_rights(actor: Actor, card: CardData) -> RightsAnswer:
    """Confirm (or not) a patient's tiers payant for one domain and date, recording the answer in the ledger."""
    with transaction.atomic():
        insurer, contract, beneficiary = _find(card)
        if beneficiary is None:
            outcome, terms, valid_until, fields = Disclosure.Outcome.NO_MATCH, None, None, []
        else:
            guarantee = contract.product.guarantee_for(card.domain, card.care_date)
            decision = decide(
                ContractFacts(contract.status, contract.start_date, contract.end_date),
                CoverageFacts(beneficiary.coverage_start, beneficiary.coverage_end),
                GuaranteeFacts(
                    guarantee.tp_code, guarantee.rate_percent, guarantee.amount_cents, guarantee.pec_required
                )
                if guarantee
                else None,
                card.care_date,
            )
            terms, valid_until = decision.terms, decision.valid_until
            outcome = Disclosure.Outcome.COVERED if decision.covered else Disclosure.Outcome.NOT_COVERED
            fields = ["identity_confirmed", f"coverage:{card.domain}"]
            if decision.covered:
                fields += [f"tp_terms:{card.domain}", "valid_until"]
        row = chain.append(
            created_at=timezone.now(),
            channel=actor.channel,
            purpose=PURPOSE_RIGHTS_CHECK,
            organisation_id=actor.organisation_id,
            user_id=actor.user_id,
            token_id=actor.token_id,
            session_ref=actor.session_ref,
            ip_address=actor.ip,
            insurer_id=insurer.pk if insurer else None,
            beneficiary_id=beneficiary.pk if beneficiary else None,
            presented_hash=None if beneficiary else _presented_hash(card),
            domain=card.domain,
            care_date=card.care_date,
            outcome=outcome,
            fields=fields,
        )
    return RightsAnswer(
        outcome=outcome,
        reference=row.reference,
        checked_at=row.created_at,
        domain=card.domain,
        care_date=card.care_date,
        terms=terms,
        valid_until=valid_until,
    )
