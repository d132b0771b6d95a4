"""The one function that writes a ledger row for a reader: the gate and the incident console both use it."""

from __future__ import annotations

from rempart.ledger import chain, fast_append
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.lib import metrics


def _reader(actor: Actor, purpose: str) -> dict:
    """The columns that name the reader, the same on every row an actor's answer writes."""
    return {
        "channel": actor.channel,
        "purpose": purpose,
        "organisation_id": actor.organisation_id,
        "user_id": actor.user_id,
        "token_id": actor.token_id,
        "session_ref": actor.session_ref,
        "ip_address": actor.ip,
    }


def record(actor: Actor, purpose: str, **values) -> Disclosure:
    """Append the ledger row of one answer: who asked, through which channel, from where, and what was disclosed.

    Call it inside the transaction that produces the answer: if the row cannot be written, no answer leaves.
    """
    row = chain.append(**_reader(actor, purpose), **values)
    metrics.record_answer(actor.channel, purpose, row.outcome)
    return row


def record_at_once(actor: Actor, purpose: str, extras: list, **values) -> tuple[Disclosure, list]:
    """:func:`record` for an answer whose decision wrote nothing: the row (and ``extras``, work to commit
    with it) in one durable statement where it can be (rempart.ledger.fast_append); call it outside a
    transaction, before the answer leaves."""
    row, results = fast_append.append(extras, **_reader(actor, purpose), **values)
    metrics.record_answer(actor.channel, purpose, row.outcome)
    return row, results


def record_many(actor: Actor, purpose: str, rows_values: list[dict]) -> list[Disclosure]:
    """The rows of several answers of one actor, chained in order (the gate's chunked path, invoice lots)."""
    common = _reader(actor, purpose)
    rows = chain.append_many([{**common, **values} for values in rows_values])
    metrics.record_answers(actor.channel, purpose, (row.outcome for row in rows))
    return rows
