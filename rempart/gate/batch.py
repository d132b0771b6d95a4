"""Identify and record a chunk of one actor's cards at once: the gate's path for lots of invoices.

The rules are those of :func:`rempart.gate.core.identify_and_record`, applied set-wise so that a lot of
a million invoices costs a few statements per chunk instead of twenty per invoice:

- surveillance admits the actor once per chunk; each card is checked against the kill switches;
- one statement looks up every card of the chunk (the same joins and the same matching as ``find``);
- the purpose loads what its decisions need for the whole chunk (``prepare``), then decides each matched
  card in order, **without writing** (``decide``: pure, so a failing decision leaves nothing to undo); a
  decision that raises is recorded as ``rejected`` and its error handed back;
- surveillance screens the chunk as it is decided and stops it right after a request that reaches a
  ceiling or names a canary (rempart.surveillance.chunks): the rest is handed back, undecided;
- the ledger rows of every decided request are appended in one batch, then the purpose writes what it
  decided (``write``) — rows and writes in the caller's transaction: no answer without its row;
- surveillance counts the chunk and climbs the ladder (the next chunk is refused if the actor is now
  suspended or throttled, as the next single request would be).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from django.db import connection

from rempart.gate.core import _LOOKUP, Found, Verdict, found_from, presented_hash
from rempart.gate.pec import PecFacts
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.ledger.recording import record_many
from rempart.lib import hot_sql
from rempart.registry.models import Guarantee, Insurer, Product
from rempart.rights.cards import CardData
from rempart.surveillance import chunks as surveillance_chunks
from rempart.surveillance import engine as surveillance
from rempart.surveillance.engine import CheckRefused

# The single lookup's statement over a list of presented cards: same columns first (so that
# core.found_from judges both alike), then what a PEC or invoice decision needs, then the card's position.
_MANY_SQL = """
WITH p(idx, amc, adherent, domain, care_date) AS (VALUES {values})
SELECT i.id, c.id, c.status, c.start_date, c.end_date,
       b.id, b.birth_year, b.birth_month, b.birth_day, b.birth_rank, b.nir_index, b.od_nir_index,
       b.coverage_start, b.coverage_end,
       g.tp_code, g.rate_percent, g.amount_cents, g.pec_required,
       pr.responsible, g.ceilings, g.effective_from, p.idx
FROM p
JOIN registry_insurer i ON i.amc_number = p.amc AND i.status = %s
LEFT JOIN registry_contract c ON c.insurer_id = i.id AND c.adherent_number = p.adherent
LEFT JOIN registry_product pr ON pr.id = c.product_id
LEFT JOIN registry_beneficiary b ON b.contract_id = c.id
LEFT JOIN registry_guarantee g ON g.id = (
    SELECT g2.id FROM registry_guarantee g2
    WHERE g2.product_id = c.product_id AND g2.domain = p.domain AND g2.effective_from <= p.care_date
    ORDER BY g2.effective_from DESC LIMIT 1
)
"""
_EXTRA_COLUMNS = [
    hot_sql.field(Product, "responsible"),
    hot_sql.field(Guarantee, "ceilings"),
    hot_sql.field(Guarantee, "effective_from"),
]


@cache
def _statement(count: int) -> hot_sql.Statement:
    values = ", ".join(["(%s, %s, %s, %s, %s)"] * count)
    columns = [*_LOOKUP.columns, *_EXTRA_COLUMNS, hot_sql.field(Insurer, "id")]
    return hot_sql.Statement(_MANY_SQL.format(values=values), columns)  # placeholders only


def find_many(cards: Sequence[CardData]) -> list[tuple[Found, PecFacts | None]]:
    """Look up every card in one statement: for each, what ``find`` would find, and the decision's facts."""
    if not cards:
        return []
    params: list = []
    sqlite = connection.vendor == "sqlite"
    for index, card in enumerate(cards):
        care = card.care_date.isoformat() if sqlite else card.care_date
        params += [index, card.amc_number, card.adherent_number, card.domain, care]
    rows_by_card: dict[int, list[tuple]] = defaultdict(list)
    for row in _statement(len(cards)).rows([*params, Insurer.Status.ACTIVE]):
        rows_by_card[row[-1]].append(row)
    results = []
    for index, card in enumerate(cards):
        found, row = found_from(rows_by_card.get(index, []), card)
        results.append((found, None if row is None else _facts(found, row)))
    return results


def _facts(found: Found, row: tuple) -> PecFacts:
    birth_year, birth_month, birth_day = row[6], row[7], row[8]
    tp_code, rate, amount, pec_required, responsible, ceilings, effective_from = row[14:21]
    guarantee = None
    if tp_code is not None:
        guarantee = {
            "tp_code": tp_code,
            "rate_percent": rate,
            "amount_cents": amount,
            "pec_required": pec_required,
            "ceilings": ceilings,
            "effective_from": effective_from,
        }
    return PecFacts(
        beneficiary_id=found.beneficiary_id,
        insurer_id=found.insurer_id,
        birth_year=birth_year,
        birth_month=birth_month,
        birth_day=birth_day,
        contract=found.contract,
        coverage=found.coverage,
        product_responsible=bool(responsible),
        guarantee=guarantee,
    )


@dataclass
class Decided:
    """One request of the chunk, decided and recorded (``verdict`` None: a miss)."""

    position: int  # in the list given to decide_chunk
    found: Found
    facts: PecFacts | None
    verdict: Verdict | None
    row: Disclosure
    failure: BaseException | None = None  # the decision raised: recorded as rejected, the error kept


@dataclass
class ChunkAnswer:
    decided: list[Decided]
    refused: dict[int, CheckRefused]  # position → refusal (switched off, or the actor refused)
    undecided: list[int]  # positions left for the next chunk (surveillance stopped this one)


def decide_chunk(
    actor: Actor,
    cards: Sequence[CardData],
    purpose: str,
    *,
    prepare: Callable[[list[PecFacts]], None],
    decide: Callable[[int, PecFacts], Verdict],
    write: Callable[[list[Decided]], None],
    rejected_fields: Callable[[CardData], list[str]],
) -> ChunkAnswer:
    """Identify, decide and record a chunk of one actor's cards; see the module's docstring.

    Run it inside the caller's transaction (a savepoint per chunk lets the caller retry one by one). The
    actor refused as a whole (suspended, throttled, stepped up) raises CheckRefused, as a single check does.
    """
    state = surveillance.before_chunk(actor)
    refused: dict[int, CheckRefused] = {}
    wanted = []
    for position, card in enumerate(cards):
        try:
            surveillance.refuse_switched_off(actor, card)
        except CheckRefused as exc:
            refused[position] = exc
        else:
            wanted.append(position)
    looked_up = find_many([cards[p] for p in wanted])
    prepare([facts for _found, facts in looked_up if facts is not None])
    screen = surveillance_chunks.screen(
        actor, purpose, [found.beneficiary_id for found, _f in looked_up if found.beneficiary_id]
    )
    decided_parts: list[tuple[int, Found, PecFacts | None, Verdict | None, BaseException | None]] = []
    undecided: list[int] = []
    for offset, (position, (found, facts)) in enumerate(zip(wanted, looked_up, strict=True)):
        verdict, failure = None, None
        if facts is not None:
            try:
                verdict = decide(position, facts)
            except Exception as exc:  # recorded as rejected; the caller reports it
                failure = exc
                verdict = Verdict(Disclosure.Outcome.REJECTED, rejected_fields(cards[position]))
        decided_parts.append((position, found, facts, verdict, failure))
        outcome = verdict.outcome if verdict else Disclosure.Outcome.NO_MATCH
        if screen.take(found.beneficiary_id, outcome):
            undecided = wanted[offset + 1 :]
            break
    rows = record_many(
        actor,
        purpose,
        [
            {
                "insurer_id": found.insurer_id,
                "beneficiary_id": found.beneficiary_id,
                "presented_hash": None if found.beneficiary_id else presented_hash(cards[position]),
                "domain": cards[position].domain,
                "care_date": cards[position].care_date,
                "outcome": verdict.outcome if verdict else Disclosure.Outcome.NO_MATCH,
                "fields": verdict.fields if verdict else [],
            }
            for position, found, _facts, verdict, _failure in decided_parts
        ],
    )
    decided = [
        Decided(position, found, facts, verdict, row, failure)
        for (position, found, facts, verdict, failure), row in zip(decided_parts, rows, strict=True)
    ]
    write(decided)
    surveillance_chunks.observe(
        actor,
        state,
        [
            surveillance.Observation(
                item.found.beneficiary_id, item.row.outcome, cards[item.position].adherent_number, purpose
            )
            for item in decided
        ],
        screen,
    )
    return ChunkAnswer(decided, refused, undecided)
