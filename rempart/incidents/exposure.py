"""Who looked at whose exposure: incident scopes read the ledger and the people's keys, and record it.

The keys an insurer needs to reach its people (adherent number and member rank) are read here and only
here, and each read is a ledger row (purpose ``incident_scope``) written before the first key is produced.
Incidents use the ledger's recording function directly: the gate (rempart.gate) stands above
surveillance, which opens incidents, so incidents must not import it.
"""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection, transaction
from django.utils import timezone

from rempart.incidents.scope import archived, grouped_entries, merge_people, merged_entries
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.ledger.recording import record

PURPOSE_INCIDENT_SCOPE = "incident_scope"


def record_scope_run(actor: Actor, *, label: str, people: int, listed: bool) -> str:
    """Record that an analyst ran a scope (totals only, or the list of people); returns the ledger reference."""
    with transaction.atomic():
        row = record(
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


_KEYS_OF_PEOPLE = """
    SELECT b.id, c.adherent_number, b.member_number FROM registry_beneficiary b
    JOIN registry_contract c ON c.id = b.contract_id WHERE b.id IN ({ids})
"""


def live_exposure_keys(actor: Actor, criteria, *, label: str = ""):
    """The same stream straight from the ledger for scope criteria (``rempart scope --out``), recorded too."""
    if archive := archived(criteria):  # archived months: the merged entries, their people's keys by batch
        yield from _merged_keys(actor, merged_entries(criteria, archive), label=label or "live")
        return
    grouped, params = grouped_entries(criteria).query.sql_with_params()
    sql = _KEYS_OF_LIVE.format(grouped=grouped)  # the ORM's own SQL; values stay parameters
    yield from _stream_keys(actor, sql, list(params), insurer_id=None, label=label or "live")


def _stream_keys(actor: Actor, sql: str, params: list, *, insurer_id: int | None, label: str):
    with transaction.atomic():
        record(
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


def _merged_keys(actor: Actor, entries: list[tuple], *, label: str):
    with transaction.atomic():
        record(
            actor,
            PURPOSE_INCIDENT_SCOPE,
            outcome=Disclosure.Outcome.LISTED,
            fields=[f"scope:{label}"[:200], "adherent_number", "member_number"],
        )
    for start in range(0, len(entries), 5000):
        part = entries[start : start + 5000]
        ids = sorted({entry[1] for entry in part})
        with connection.cursor() as cursor:
            cursor.execute(_KEYS_OF_PEOPLE.format(ids=", ".join(["%s"] * len(ids))), ids)
            keys = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
        part = [
            entry for entry in part if entry[1] in keys
        ]  # as the join drops a beneficiary no longer there
        for person in merge_people(iter(part)):
            adherent, member = keys[person.beneficiary_id]
            yield person, adherent, member


def _json_list(value) -> list:
    return json.loads(value) if isinstance(value, str) else list(value or [])


def _aware(value):
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value
