"""Identify and record: the core every purpose of the gate goes through.

Whatever the purpose, a read goes: refuse what the actor may not ask (before anything is read) →
surveillance may refuse → look up the card → decide → append the ledger row → answer, the lookup,
the decision and the row in one database transaction. By construction, nothing that depends on
whether the card matched can leave without its ledger row:

- the decision runs only once the lookup is done, inside a savepoint of the same transaction;
- if it raises (bad input that only the beneficiary's facts reveal, a conflict, a bug), its writes are
  rolled back, the ledger row is still written (outcome ``rejected``: the identity *was* confirmed),
  surveillance counts it as a confirmation, and only then does the exception reach the caller;
- if the ledger row cannot be written, the whole transaction fails and no answer leaves.

Callers that can validate a request without the beneficiary (a quote's codes, an invoice's totals)
must do so *before* calling the gate, so that bad input gets the same answer whether the card
matched or not; rempart/gate/tests/test_no_oracle.py checks every entry point for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from rempart.accounts import tokens
from rempart.accounts.models import Organisation
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.ledger.recording import record, record_at_once
from rempart.lib import hot_sql
from rempart.lib.crypto import field_cipher
from rempart.registry.models import Beneficiary, Contract, Guarantee, Insurer, Professional
from rempart.rights.cards import CardData
from rempart.rights.coverage import ContractFacts, CoverageFacts, GuaranteeFacts
from rempart.surveillance import engine as surveillance

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


def _lookup_params(card: CardData) -> list:
    return [card.adherent_number, card.domain, card.care_date, card.amc_number, Insurer.Status.ACTIVE]


def find(card: CardData) -> Found:
    """The gate's lookup. Call it only from this package (the bare-lookup benchmark excepted)."""
    return found_from(_LOOKUP.rows(_lookup_params(card)), card)[0]


_with_standing: list[hot_sql.Statement] = []


def _lookup_with_standing() -> hot_sql.Statement:
    """The lookup and a pending token's standing in one statement (tokens.authenticate_token).

    The lookup runs only if the standing holds (``ok``, evaluated once before it: on PostgreSQL a one-time
    filter), so a refused token has nothing compared, and its refusal's timing says nothing of the card. Every
    row carries the standing; a lookup that found nothing, or did not run, leaves one row of NULLs after it.
    """
    if not _with_standing:
        standing, standing_columns = tokens.standing_sql()
        lookup = _LOOKUP.sql.rstrip() + " AND (SELECT ok FROM standing)"  # noqa: S608 - constant SQL
        _with_standing.append(
            hot_sql.Statement(
                f"WITH standing AS ({standing}), lookup AS ({lookup})\n"  # noqa: S608 - SQL from the models
                "SELECT * FROM standing LEFT JOIN lookup ON 1 = 1",
                [*standing_columns, *_LOOKUP.columns],
                read_only=True,
            )
        )
    return _with_standing[0]


def found_from(rows, card: CardData) -> tuple[Found, tuple | None]:
    """Judge the looked-up rows (``_LOOKUP``'s columns first) against the presented card: (Found, matched row).

    Shared by :func:`find` and the chunked lookup of rempart.gate.batch, so that both match alike.
    """
    if not rows:
        return Found(), None
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
        return Found(insurer_id=rows[0][0]), None
    (insurer_id, _c, status, start, end, person_id, *_birth, coverage_start, coverage_end) = matches[0][:14]
    tp_code, rate, amount, pec = matches[0][14:18]
    found = Found(
        insurer_id=insurer_id,
        beneficiary_id=person_id,
        contract=ContractFacts(status, start, end),
        coverage=CoverageFacts(coverage_start, coverage_end),
        guarantee=None if tp_code is None else GuaranteeFacts(tp_code, rate, amount, pec),
    )
    return found, matches[0]


def presented_hash(card: CardData) -> bytes:
    """A keyed fingerprint of the card data of a miss: which attempts were the same guess, never the values."""
    return field_cipher().fingerprint(
        "presented",
        card.amc_number,
        card.adherent_number,
        card.nir,
        str(card.birth_date),
        str(card.birth_rank),
    )


# --- What an organisation may ask: its own care domains only.


class RefusedDomain(PermissionError):
    """The care domain is not one of the organisation's: refused before anything is read, and recorded."""

    def __init__(self, domain: str, reference: str) -> None:
        super().__init__(domain)
        self.domain = domain
        self.reference = reference


_PROFESSIONAL_DOMAINS = hot_sql.Statement(
    """
    SELECT o.kind, p.domains
    FROM accounts_organisation o
    LEFT JOIN registry_professional p ON p.id = o.professional_id
    WHERE o.id = %s
    """,
    [hot_sql.field(Organisation, "kind"), hot_sql.field(Professional, "domains")],
)
_DOMAINS_TTL_SECONDS = 5.0
_domains_cache: dict[int, tuple[float, frozenset[str] | None]] = {}


def organisation_domains(organisation_id: int | None) -> frozenset[str] | None:
    """The care domains a professional organisation may ask about; None: not limited (operator, CLI, insurer).

    Cached a few seconds per process: a domain withdrawn from a shop takes effect within that time.
    """
    if organisation_id is None:
        return None
    now = time.monotonic()
    cached = _domains_cache.get(organisation_id)
    if cached is not None and now - cached[0] < _DOMAINS_TTL_SECONDS:
        return cached[1]
    row = _PROFESSIONAL_DOMAINS.first([organisation_id])
    domains = None
    if row is not None and row[0] == Organisation.Kind.PROFESSIONAL:
        domains = frozenset(row[1] or ())
    _domains_cache[organisation_id] = (now, domains)
    return domains


def forget() -> None:
    """Drop the per-process caches (tests, and after an organisation's domains change)."""
    _domains_cache.clear()


def refuse_foreign_domain(actor: Actor, purpose: str, domain: str) -> None:
    """Raise :class:`RefusedDomain` (after writing its ledger row) if the organisation does not practise ``domain``.

    Nothing of the card is read or compared: the answer is the same for every card.
    """
    allowed = organisation_domains(actor.organisation_id)
    if allowed is None or domain in allowed:
        return
    with transaction.atomic():
        row = record(
            actor,
            purpose,
            domain=domain,
            outcome=Disclosure.Outcome.REFUSED,
            fields=[f"domain_refused:{domain}"],
        )
    raise RefusedDomain(domain, row.reference)


# --- The shared identify-and-record path.


@dataclass(frozen=True)
class Verdict:
    """What a purpose decided for a matched card: the ledger outcome, the fields disclosed, and its result."""

    outcome: str
    fields: list[str] = field(default_factory=list)
    result: Any = None


@dataclass(frozen=True)
class Recorded:
    """The gate's answer to a purpose: ``verdict`` is None on a miss; ``row`` is the ledger row written."""

    found: Found
    verdict: Verdict | None
    row: Disclosure

    @property
    def outcome(self) -> str:
        return self.row.outcome


def identify_and_record(
    actor: Actor,
    card: CardData,
    purpose: str,
    decide: Callable[[Found], Verdict],
    *,
    rejected_fields: list[str] | None = None,
    decision_writes: bool = True,
) -> Recorded:
    """Identify ``card``, let ``decide`` judge a match, record the answer; see the module's docstring.

    ``rejected_fields``: what a rejected request disclosed (default: the identity and the domain's coverage).
    ``decision_writes=False``: ``decide`` only computes (the rights check), so no transaction has to hold the
    lookup, the decision and the row together: the row is written by one durable statement
    (rempart.ledger.fast_append) once the decision is made, and the answer still leaves only after it.
    """
    if not decision_writes:
        pending = tokens.take_pending(actor.token_id)
        if pending is not None:
            return _identify_with_standing(actor, card, purpose, decide, pending, rejected_fields)
    refuse_foreign_domain(actor, purpose, card.domain)
    # Before the transaction: a refusal (switched off, stepped up, throttled) is counted and may suspend,
    # and that must stay recorded although no answer is given.
    state = surveillance.before_check(actor, card)
    if not decision_writes:
        return _identify_and_record_at_once(actor, card, purpose, decide, state, rejected_fields)
    failure: BaseException | None = None
    with transaction.atomic():
        found = find(card)
        verdict: Verdict | None = None
        if found.beneficiary_id is not None:
            try:
                with (
                    transaction.atomic()
                ):  # a savepoint: a failing decision leaves nothing but its ledger row
                    verdict = decide(found)
            except Exception as exc:
                failure = exc
                verdict = _rejected(card, rejected_fields)
        row = record(actor, purpose, **_row_values(found, card, verdict))
    # After the commit: the counters live in their own short transaction, so that concurrent checks of one
    # organisation never wait on each other's ledger commit.
    surveillance.after_check(
        actor,
        state,
        surveillance.Observation(found.beneficiary_id, row.outcome, card.adherent_number, purpose),
    )
    if failure is not None:
        raise failure
    return Recorded(found, verdict, row)


def _rejected(card: CardData, rejected_fields: list[str] | None) -> Verdict:
    """The verdict of a decision that raised: recorded, the identity having been confirmed."""
    return Verdict(
        Disclosure.Outcome.REJECTED, rejected_fields or ["identity_confirmed", f"coverage:{card.domain}"]
    )


def _row_values(found: Found, card: CardData, verdict: Verdict | None) -> dict:
    """What the ledger row of one identification says: a match's verdict, or a miss's keyed fingerprint."""
    return {
        "insurer_id": found.insurer_id,
        "beneficiary_id": found.beneficiary_id,
        "presented_hash": None if found.beneficiary_id else presented_hash(card),
        "domain": card.domain,
        "care_date": card.care_date,
        "outcome": verdict.outcome if verdict else Disclosure.Outcome.NO_MATCH,
        "fields": verdict.fields if verdict else [],
    }


def _identify_with_standing(actor, card, purpose, decide, pending, rejected_fields) -> Recorded:
    """A token accepted without its standing read (tokens.authenticate_token): the standing comes with the
    lookup, and is judged first — refused exactly as the token check, the admission and the ladder would have
    refused it before the lookup. A refusal due before any lookup (a domain the organisation does not
    practise, a kill switch) waits for the standing, read on its own, so that it never answers for a token
    that is no longer good."""
    allowed = organisation_domains(actor.organisation_id)
    if (allowed is not None and card.domain not in allowed) or surveillance.is_switched_off(actor, card):
        tokens.confirm_pending(pending)
        refuse_foreign_domain(actor, purpose, card.domain)
        state = surveillance.before_check(actor, card)
        return _identify_and_record_at_once(actor, card, purpose, decide, state, rejected_fields)
    rows = _lookup_with_standing().rows([pending.token.pk, *_lookup_params(card)])
    width = tokens.standing_width()
    tokens.accept_standing(pending, rows[0][:width] if rows else None)
    state = surveillance.before_check(actor, card)  # uses the standing just read; may refuse
    if rows[0][0]:
        found = found_from([row[width:] for row in rows if row[width] is not None], card)[0]
    else:  # the guard held the lookup back, yet nothing refused (surveillance off, clocks apart): look now
        found = find(card)
    return _identify_and_record_at_once(actor, card, purpose, decide, state, rejected_fields, found)


def _identify_and_record_at_once(
    actor, card, purpose, decide, state, rejected_fields, found: Found | None = None
) -> Recorded:
    """The path of a decision that writes nothing: lookup, decision, then the row and surveillance's share
    of it in one durable statement. A decision that raises is recorded ``rejected`` first, as above."""
    if found is None:
        found = find(card)
    verdict: Verdict | None = None
    failure: BaseException | None = None
    if found.beneficiary_id is not None:
        try:
            verdict = decide(found)
        except Exception as exc:
            failure = exc
            verdict = _rejected(card, rejected_fields)
    extras = surveillance.with_row(actor, found.beneficiary_id, purpose)
    row, results = record_at_once(actor, purpose, extras, **_row_values(found, card, verdict))
    surveillance.after_check(
        actor,
        state,
        surveillance.Observation(
            found.beneficiary_id,
            row.outcome,
            card.adherent_number,
            purpose,
            sight=results[0] if results else None,
        ),
    )
    if failure is not None:
        raise failure
    return Recorded(found, verdict, row)
