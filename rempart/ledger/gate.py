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

from django.db import connection, transaction
from django.utils import timezone

from rempart.ledger import chain
from rempart.ledger.models import Disclosure
from rempart.lib import hot_sql
from rempart.lib.crypto import field_cipher
from rempart.registry.models import Beneficiary, Contract, Guarantee, Insurer, Product
from rempart.rights.cards import CardData
from rempart.rights.coverage import ContractFacts, CoverageFacts, GuaranteeFacts, decide

PURPOSE_RIGHTS_CHECK = "rights_check"
PURPOSE_INCIDENT_SCOPE = "incident_scope"


@dataclass(frozen=True)
class Actor:
    """Who asks, through which channel, from where: known to the gate for every read."""

    channel: str
    organisation_id: int | None
    user_id: int | None = None
    token_id: int | None = None
    ip: str | None = None
    session_ref: str = ""
    second_factor_at: float | None = None  # portal: when this session last proved a second factor

    @classmethod
    def portal(cls, request) -> Actor:
        from rempart.accounts.stepup import last_second_factor_at
        from rempart.lib.http import client_ip

        session_key = request.session.session_key or ""
        return cls(
            channel=Disclosure.Channel.PORTAL,
            organisation_id=request.user.membership.organisation_id,
            user_id=request.user.pk,
            ip=client_ip(request),
            session_ref=hashlib.sha256(session_key.encode()).hexdigest()[:32] if session_key else "",
            second_factor_at=last_second_factor_at(request),
        )

    @classmethod
    def console(cls, request) -> Actor:
        """Operator staff in the security console (their reads of exposure lists are recorded too)."""
        portal = cls.portal(request)
        return cls(**{**portal.__dict__, "channel": Disclosure.Channel.CONSOLE})

    @classmethod
    def command_line(cls) -> Actor:
        import getpass
        import socket

        return cls(
            channel=Disclosure.Channel.CLI,
            organisation_id=None,
            session_ref=f"cli:{getpass.getuser()}@{socket.gethostname()}"[:64],
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


def _record(actor: Actor, purpose: str, **values) -> Disclosure:
    """Append the ledger row of one answer: who asked, through which channel, from where, and what was disclosed."""
    return chain.append(
        channel=actor.channel,
        purpose=purpose,
        organisation_id=actor.organisation_id,
        user_id=actor.user_id,
        token_id=actor.token_id,
        session_ref=actor.session_ref,
        ip_address=actor.ip,
        **values,
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


_LOOKUP = hot_sql.Statement(
    # One statement for every outcome: the insurer, the card's contract, its family and the guarantee in
    # force for the domain and date. A miss of any kind costs the same single round trip as a hit.
    """
    SELECT i.id, c.id, c.status, c.start_date, c.end_date,
           b.id, b.birth_year, b.birth_month, b.birth_day, b.birth_rank, b.nir_index, b.od_nir_index,
           b.coverage_start, b.coverage_end,
           g.tp_code, g.rate_percent, g.amount_cents, g.pec_required
    FROM registry_insurer i
    LEFT JOIN registry_contract c ON c.insurer_id = i.id AND c.adherent_number = %s
    LEFT JOIN registry_beneficiary b ON b.contract_id = c.id
    LEFT JOIN registry_guarantee g ON g.id = (
        SELECT g2.id FROM registry_guarantee g2
        WHERE g2.product_id = c.product_id AND g2.domain = %s AND g2.effective_from <= %s
        ORDER BY g2.effective_from DESC LIMIT 1
    )
    WHERE i.amc_number = %s AND i.status = %s
    """,
    [
        *(hot_sql.field(Insurer, "id"),),
        *(hot_sql.field(Contract, name) for name in ("id", "status", "start_date", "end_date")),
        *(
            hot_sql.field(Beneficiary, name)
            for name in (
                "id",
                "birth_year",
                "birth_month",
                "birth_day",
                "birth_rank",
                "nir_index",
                "od_nir_index",
                "coverage_start",
                "coverage_end",
            )
        ),  # fmt: skip
        *(
            hot_sql.field(Guarantee, name)
            for name in ("tp_code", "rate_percent", "amount_cents", "pec_required")
        ),
    ],
)


@dataclass(frozen=True)
class Found:
    """What the lookup found for presented card data; ``beneficiary_id`` is None for every kind of miss."""

    insurer_id: int | None = None
    beneficiary_id: int | None = None
    contract: ContractFacts | None = None
    coverage: CoverageFacts | None = None
    guarantee: GuaranteeFacts | None = None


def _find(card: CardData) -> Found:
    rows = _LOOKUP.rows(
        [card.adherent_number, card.domain, card.care_date, card.amc_number, Insurer.Status.ACTIVE]
    )
    if not rows:
        return Found()
    presented = field_cipher().blind_index("nir", card.nir)
    born = (card.birth_date.year, card.birth_date.month, card.birth_date.day)
    matches = []
    for row in rows:
        (_i, contract_id, _s, _cs, _ce, person_id, year, month, day, rank, nir_index, od_nir_index) = row[:12]
        if person_id is None or (year, month, day) != born:
            continue
        own = nir_index is not None and bytes(nir_index) == presented
        via_ouvrant_droit = (
            od_nir_index is not None and bytes(od_nir_index) == presented and rank == card.birth_rank
        )
        if own or via_ouvrant_droit:
            matches.append(row)
    # Two people answering to the same card data would be a registry error: confirm neither.
    if len(matches) != 1:
        return Found(insurer_id=rows[0][0])
    (insurer_id, _c, status, start, end, person_id, *_birth, coverage_start, coverage_end) = matches[0][:14]
    tp_code, rate, amount, pec = matches[0][14:]
    return Found(
        insurer_id=insurer_id,
        beneficiary_id=person_id,
        contract=ContractFacts(status, start, end),
        coverage=CoverageFacts(coverage_start, coverage_end),
        guarantee=None if tp_code is None else GuaranteeFacts(tp_code, rate, amount, pec),
    )


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
    from rempart.surveillance import engine as surveillance

    # Before the transaction: a refusal (switched off, stepped up, throttled) is counted and may suspend,
    # and that must stay recorded although no answer is given.
    state = surveillance.before_check(actor, card)
    with transaction.atomic():
        found = _find(card)
        if found.beneficiary_id is None:
            outcome, terms, valid_until, fields = Disclosure.Outcome.NO_MATCH, None, None, []
        else:
            decision = decide(found.contract, found.coverage, found.guarantee, card.care_date)
            terms, valid_until = decision.terms, decision.valid_until
            outcome = Disclosure.Outcome.COVERED if decision.covered else Disclosure.Outcome.NOT_COVERED
            fields = ["identity_confirmed", f"coverage:{card.domain}"]
            if decision.covered:
                fields += [f"tp_terms:{card.domain}", "valid_until"]
        row = _record(
            actor,
            PURPOSE_RIGHTS_CHECK,
            insurer_id=found.insurer_id,
            beneficiary_id=found.beneficiary_id,
            presented_hash=None if found.beneficiary_id else _presented_hash(card),
            domain=card.domain,
            care_date=card.care_date,
            outcome=outcome,
            fields=fields,
        )
    # After the commit: the counters live in their own short transaction, so that concurrent checks of one
    # organisation never wait on each other's ledger commit.
    surveillance.after_check(
        actor, state, surveillance.Observation(found.beneficiary_id, outcome, card.adherent_number)
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


# --- Prise en charge: the same identification, then what the decision engine needs, recorded with purpose "pec".

PURPOSE_PEC = "pec"


@dataclass(frozen=True)
class PecFacts:
    """What a PEC decision may know of the matched beneficiary: never a name or a NIR."""

    beneficiary_id: int
    insurer_id: int
    birth_year: int
    birth_month: int | None
    birth_day: int | None
    contract: ContractFacts
    coverage: CoverageFacts
    product_responsible: bool
    guarantee: (
        dict | None
    )  # tp_code, rate_percent, amount_cents, pec_required, ceilings (cents), effective_from


_PEC_FACTS = hot_sql.Statement(
    """
    SELECT b.birth_year, b.birth_month, b.birth_day, p.responsible
    FROM registry_beneficiary b
    JOIN registry_contract c ON c.id = b.contract_id
    JOIN registry_product p ON p.id = c.product_id
    WHERE b.id = %s
    """,
    [
        hot_sql.field(Beneficiary, "birth_year"),
        hot_sql.field(Beneficiary, "birth_month"),
        hot_sql.field(Beneficiary, "birth_day"),
        hot_sql.field(Product, "responsible"),
    ],
)


def decide_pec(actor: Actor, card: CardData, decide):
    """Identify the patient as the rights check does (``card.care_date`` = the delivery date), then call
    ``decide(facts)`` inside the same transaction as the ledger row. Returns (decide's result or None on a
    miss, the ledger reference). ``decide`` may raise to store nothing: then no ledger row is written either."""
    from rempart.surveillance import engine as surveillance

    state = surveillance.before_check(actor, card)
    with transaction.atomic():
        found = _find(card)
        result, fields = None, []
        if found.beneficiary_id is not None:
            year, month, day, responsible = _PEC_FACTS.first([found.beneficiary_id])
            guarantee = (
                Guarantee.objects.filter(
                    product__contracts__beneficiaries__id=found.beneficiary_id,
                    domain=card.domain,
                    effective_from__lte=card.care_date,
                )
                .order_by("-effective_from")
                .values(
                    "tp_code", "rate_percent", "amount_cents", "pec_required", "ceilings", "effective_from"
                )
                .first()
            )
            facts = PecFacts(
                beneficiary_id=found.beneficiary_id,
                insurer_id=found.insurer_id,
                birth_year=year,
                birth_month=month,
                birth_day=day,
                contract=found.contract,
                coverage=found.coverage,
                product_responsible=bool(responsible),
                guarantee=guarantee,
            )
            result = decide(facts)
            fields = ["identity_confirmed", f"coverage:{card.domain}", f"pec_amounts:{card.domain}"]
        if found.beneficiary_id is None:
            outcome = Disclosure.Outcome.NO_MATCH
        else:
            outcome = getattr(result, "ledger_outcome", Disclosure.Outcome.COVERED)
        row = _record(
            actor,
            PURPOSE_PEC,
            insurer_id=found.insurer_id,
            beneficiary_id=found.beneficiary_id,
            presented_hash=None if found.beneficiary_id else _presented_hash(card),
            domain=card.domain,
            care_date=card.care_date,
            outcome=outcome,
            fields=fields,
        )
    surveillance.after_check(
        actor, state, surveillance.Observation(found.beneficiary_id, outcome, card.adherent_number)
    )
    return result, row.reference


# --- Incident scopes: who looked at whose exposure is recorded like any other disclosure.


def record_scope_run(actor: Actor, *, label: str, people: int, listed: bool) -> str:
    """Record that an analyst ran a scope (totals only, or the list of people); returns the ledger reference."""
    with transaction.atomic():
        row = _record(
            actor,
            PURPOSE_INCIDENT_SCOPE,
            outcome=Disclosure.Outcome.LISTED,
            fields=[f"scope:{label}"[:200], f"people:{people}", "scope_list" if listed else "scope_totals"],
        )
    return row.reference


_KEYS_OF_FROZEN = """
    SELECT e.insurer_id, e.beneficiary_id, e.organisation_id, e.user_id, e.token_id, e.fields, e.disclosures,
           e.first_at, e.last_at, c.adherent_number, b.member_number
    FROM incidents_scopeentry e
    JOIN registry_beneficiary b ON b.id = e.beneficiary_id
    JOIN registry_contract c ON c.id = b.contract_id
    WHERE e.scope_id = %s {insurer_filter}
    ORDER BY e.insurer_id, e.beneficiary_id
"""
_KEYS_OF_LIVE = """
    SELECT g.insurer_id, g.beneficiary_id, g.organisation_id, g.user_id, g.token_id, g.fields, g.disclosures,
           g.first_at, g.last_at, c.adherent_number, b.member_number
    FROM ({grouped}) g
    JOIN registry_beneficiary b ON b.id = g.beneficiary_id
    JOIN registry_contract c ON c.id = b.contract_id
    ORDER BY g.insurer_id, g.beneficiary_id
"""


def exposure_keys(actor: Actor, scope_id: int, *, insurer_id: int | None = None, label: str = ""):
    """Stream (PersonExposure, adherent number, member number) for a frozen scope, ordered by insurer and person.

    What an insurer needs to reach its people (it, not Rempart, holds their addresses); nothing else of
    the registry is read. The read is recorded in the ledger before the first row is produced.
    """
    sql = _KEYS_OF_FROZEN.format(insurer_filter="AND e.insurer_id = %s" if insurer_id is not None else "")
    params = [scope_id] if insurer_id is None else [scope_id, insurer_id]
    yield from _stream_keys(actor, sql, params, insurer_id=insurer_id, label=label or str(scope_id))


def live_exposure_keys(actor: Actor, criteria, *, label: str = ""):
    """The same stream straight from the ledger for scope criteria (``rempart scope --out``), recorded too."""
    from rempart.incidents.scope import grouped_entries

    grouped, params = grouped_entries(criteria).query.sql_with_params()
    sql = _KEYS_OF_LIVE.format(grouped=grouped)  # the ORM's own SQL; values stay parameters
    yield from _stream_keys(actor, sql, list(params), insurer_id=None, label=label or "live")


def _stream_keys(actor: Actor, sql: str, params: list, *, insurer_id: int | None, label: str):
    from rempart.incidents.scope import merge_people

    with transaction.atomic():
        _record(
            actor,
            PURPOSE_INCIDENT_SCOPE,
            insurer_id=insurer_id,
            outcome=Disclosure.Outcome.LISTED,
            fields=[f"scope:{label}"[:200], "adherent_number", "member_number"],
        )
    keys: dict[tuple[int, int], tuple[str, int]] = {}  # at most the current person and the next one

    def entries():
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(5000):
                for row in batch:
                    keys[(row[0], row[1])] = (row[9], row[10])
                    yield (*row[:5], _json_list(row[5]), row[6], _aware(row[7]), _aware(row[8]))

    for person in merge_people(entries()):
        adherent, member = keys.pop((person.insurer_id, person.beneficiary_id))
        yield person, adherent, member


def _json_list(value) -> list:
    import json

    return json.loads(value) if isinstance(value, str) else list(value or [])


def _aware(value):
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value
