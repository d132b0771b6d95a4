"""Scope queries: exactly whose data a set of actors obtained, from the disclosure ledger.

Criteria combine as an analyst reads them: the actors (accounts, tokens, organisations) are alternatives
(any of them); source networks, channels, purposes and the time window narrow what those actors did
(all of them). With no actor, the networks select on their own. The result is computed in the database
(grouped by beneficiary, actor and fields) and streamed, so memory stays bounded at any size.

Months moved to the ledger archive (docs/ledger-archive.md) are read with DuckDB and merged with the database's
answer, so that a scope answers the same before and after archiving; a scope refuses (ScopeError) when an archived
month it reaches fails its check. Merged answers are assembled in memory (grouped entries, not rows).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet

from rempart.ledger import archive_read
from rempart.ledger.archive_manifest import ArchiveError
from rempart.ledger.models import Disclosure


class ScopeError(ValueError):
    """The criteria cannot select anything sensible (message safe to show)."""


@dataclass(frozen=True)
class ScopeCriteria:
    user_ids: tuple[int, ...] = ()
    token_ids: tuple[int, ...] = ()
    organisation_ids: tuple[int, ...] = ()
    networks: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __post_init__(self) -> None:
        normalised = []
        for text in self.networks:
            try:
                normalised.append(str(ipaddress.ip_network(text.strip(), strict=False)))
            except ValueError:
                raise ScopeError(f"adresse ou réseau invalide : « {text.strip()[:50]} »") from None
        object.__setattr__(self, "networks", tuple(normalised))
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ScopeError(f"{name}: une date avec fuseau horaire est attendue")
        if self.since and self.until and self.since >= self.until:
            raise ScopeError("la fin de la période doit suivre son début")
        if not (self.user_ids or self.token_ids or self.organisation_ids or self.networks or self.since):
            raise ScopeError(
                "indiquez au moins un compte, un jeton, une organisation, une adresse ou une période"
            )

    # --- (de)serialisation, for the frozen scope and the command line
    def to_json(self) -> dict:
        data = asdict(self)
        for name in ("since", "until"):
            data[name] = data[name].isoformat() if data[name] else None
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_json(cls, data: dict) -> ScopeCriteria:
        values = dict(data)
        for name in ("since", "until"):
            values[name] = dt.datetime.fromisoformat(values[name]) if values.get(name) else None
        for name in ("user_ids", "token_ids", "organisation_ids", "networks", "channels", "purposes"):
            values[name] = tuple(values.get(name) or ())
        return cls(**values)

    def filter(self) -> Q:
        actors = Q()
        if self.user_ids:
            actors |= Q(user_id__in=self.user_ids)
        if self.token_ids:
            actors |= Q(token_id__in=self.token_ids)
        if self.organisation_ids:
            actors |= Q(organisation_id__in=self.organisation_ids)
        condition = actors
        if self.networks:
            networks = Q()
            for network in self.networks:
                networks |= Q(ip_address__within=network)
            condition &= networks
        if self.channels:
            condition &= Q(channel__in=self.channels)
        if self.purposes:
            condition &= Q(purpose__in=self.purposes)
        if self.since:
            condition &= Q(created_at__gte=self.since)
        if self.until:
            condition &= Q(created_at__lt=self.until)
        return condition


@dataclass
class InsurerTotals:
    people: int = 0
    disclosures: int = 0


@dataclass
class ScopeSummary:
    people: int = 0
    disclosures: int = 0
    misses: int = 0
    per_insurer: dict[int, InsurerTotals] = field(default_factory=dict)

    @property
    def matched_rows(self) -> int:
        return self.disclosures + self.misses


def ledger_rows(criteria: ScopeCriteria) -> QuerySet:
    """The scope's rows still in the database (archived months: :func:`archived`)."""
    return Disclosure.objects.filter(criteria.filter())


def archived(criteria: ScopeCriteria) -> archive_read.Archive | None:
    """The archived months the scope's window reaches, their manifests checked (None: none)."""
    try:
        return archive_read.for_scope(criteria.since, criteria.until)
    except ArchiveError as exc:
        raise ScopeError(f"archive du registre refusée : {exc}") from None


def count_rows(criteria: ScopeCriteria, *, misses: bool = False) -> int:
    """Rows the scope matches (``misses``: only attempts without a match), database and archive together."""
    rows = ledger_rows(criteria)
    if misses:
        rows = rows.filter(outcome=Disclosure.Outcome.NO_MATCH)
    total = rows.count()
    if archive := archived(criteria):
        if misses:
            total += sum(m for _d, m in archive_read.scope_totals(archive, criteria).values())
        else:
            total += archive_read.scope_count(archive, criteria)
    return total


def _entry_key(entry: tuple) -> tuple:
    return (*entry[:5], json.dumps(entry[5]))


def merged_entries(criteria: ScopeCriteria, archive: archive_read.Archive) -> list[tuple]:
    """The grouped entries of the database and of the archive merged (same key: counts added, first and last
    time widened), ordered by insurer and beneficiary as the streamed entries are."""
    merged: dict[tuple, list] = {}
    live = grouped_entries(criteria).values_list(
        "insurer_id", "beneficiary_id", "organisation_id", "user_id", "token_id", "fields",
        "disclosures", "first_at", "last_at",
    )  # fmt: skip
    for entry in (*live.iterator(chunk_size=5000), *archive_read.scope_entries(archive, criteria)):
        key = _entry_key(entry)
        if key in merged:
            known = merged[key]
            known[6] += entry[6]
            known[7], known[8] = min(known[7], entry[7]), max(known[8], entry[8])
        else:
            merged[key] = list(entry)
    return sorted(
        (tuple(entry) for entry in merged.values()),
        key=lambda e: (e[0], e[1], e[2] or 0, e[3] or 0, e[4] or 0, e[7], json.dumps(e[5])),
    )


def people_of(criteria: ScopeCriteria, archive: archive_read.Archive | None) -> set[tuple[int, int]]:
    """Every (insurer, beneficiary) the scope disclosed, database and archive together."""
    people = set(
        ledger_rows(criteria)
        .filter(beneficiary_id__isnull=False)
        .values_list("insurer_id", "beneficiary_id")
        .distinct()
        .iterator(chunk_size=5000)
    )
    if archive is not None:
        insurers, beneficiaries = archive_read.scope_people(archive, criteria)
        people.update(zip(insurers, beneficiaries, strict=True))
    return people


def grouped_entries(criteria: ScopeCriteria) -> QuerySet:
    """One row per (insurer, beneficiary, actor, fields) with count, first and last time."""
    return (
        ledger_rows(criteria)
        .filter(beneficiary_id__isnull=False)
        .values("insurer_id", "beneficiary_id", "organisation_id", "user_id", "token_id", "fields")
        .annotate(disclosures=Count("id"), first_at=Min("created_at"), last_at=Max("created_at"))
        .order_by()
    )


def summarise(criteria: ScopeCriteria) -> ScopeSummary:
    """Totals: people and disclosures per insurer, misses apart (attempts that disclosed nothing).

    One pass, with every column it reads in the covering actor/address indexes on PostgreSQL."""
    summary = ScopeSummary()
    confirmed = Q(beneficiary_id__isnull=False)
    per_insurer = (
        ledger_rows(criteria)
        .values("insurer_id")
        .annotate(
            people=Count("beneficiary_id", distinct=True),
            disclosures=Count("created_at", filter=confirmed),
            misses=Count("created_at", filter=Q(outcome=Disclosure.Outcome.NO_MATCH)),
        )
        .order_by("insurer_id")
    )
    for row in per_insurer:
        summary.misses += row["misses"]
        if not row["disclosures"]:
            continue
        totals = InsurerTotals(people=row["people"], disclosures=row["disclosures"])
        summary.per_insurer[row["insurer_id"]] = totals
        summary.people += totals.people
        summary.disclosures += totals.disclosures
    if archive := archived(criteria):
        _add_archived(summary, criteria, archive)
    return summary


def _add_archived(summary: ScopeSummary, criteria: ScopeCriteria, archive: archive_read.Archive) -> None:
    """Add the archived rows' totals; people counted once across both (a person seen before and after)."""
    live_people = summary.people
    archived_totals = archive_read.scope_totals(archive, criteria)
    for insurer_id, (disclosures, misses) in archived_totals.items():
        summary.misses += misses
        if disclosures:
            totals = summary.per_insurer.setdefault(insurer_id, InsurerTotals())
            totals.disclosures += disclosures
            summary.disclosures += disclosures
    if not any(d for d, _m in archived_totals.values()):
        return
    if live_people:  # a person may be in both: the pairs are counted once, in Python
        people: dict[int, int] = {}
        for insurer_id, _beneficiary in people_of(criteria, archive):
            people[insurer_id] = people.get(insurer_id, 0) + 1
    else:  # the archive alone: counted in DuckDB
        people = archive_read.scope_people_counts(archive, criteria)
    for insurer_id, totals in summary.per_insurer.items():
        totals.people = people.get(insurer_id, 0)
    summary.people = sum(people.values())


_INSERT_ENTRIES = (
    "INSERT INTO incidents_scopeentry (scope_id, insurer_id, beneficiary_id, organisation_id, user_id, token_id, "
    "fields, disclosures, first_at, last_at) SELECT %s, insurer_id, beneficiary_id, organisation_id, user_id, "
    "token_id, fields, disclosures, first_at, last_at FROM ({select}) grouped"
)


def insert_entries(criteria: ScopeCriteria, scope_id: int) -> int:
    """Freeze the grouped entries into incidents_scopeentry with one INSERT … SELECT (no rows through Python);
    with archived months, the merged entries are inserted in batches."""
    if archive := archived(criteria):
        from rempart.incidents.models import ScopeEntry

        names = ("insurer_id", "beneficiary_id", "organisation_id", "user_id", "token_id", "fields",
                 "disclosures", "first_at", "last_at")  # fmt: skip
        entries = [
            ScopeEntry(scope_id=scope_id, **dict(zip(names, e, strict=True)))
            for e in merged_entries(criteria, archive)
        ]
        ScopeEntry.objects.bulk_create(entries, batch_size=2000)
        return len(entries)
    select_sql, params = grouped_entries(criteria).query.sql_with_params()
    with connection.cursor() as cursor:
        sql = _INSERT_ENTRIES.format(select=select_sql)  # the ORM's own SQL; values stay parameters
        cursor.execute(sql, [scope_id, *params])
        return cursor.rowcount


@dataclass
class PersonExposure:
    """One beneficiary's exposure within a scope: all their entries merged."""

    insurer_id: int
    beneficiary_id: int
    fields: set[str] = field(default_factory=set)
    disclosures: int = 0
    first_at: dt.datetime | None = None
    last_at: dt.datetime | None = None
    actors: set[tuple[int | None, int | None, int | None]] = field(default_factory=set)  # (org, user, token)


def merge_people(entries: Iterator[tuple]) -> Iterator[PersonExposure]:
    """Merge entries ordered by (insurer, beneficiary) into one exposure per person, streaming.

    Each entry: (insurer_id, beneficiary_id, organisation_id, user_id, token_id, fields, disclosures, first, last).
    """
    current: PersonExposure | None = None
    for insurer_id, beneficiary_id, org, user, token, fields, count, first, last in entries:
        if current is None or (current.insurer_id, current.beneficiary_id) != (insurer_id, beneficiary_id):
            if current is not None:
                yield current
            current = PersonExposure(insurer_id, beneficiary_id)
        current.fields.update(fields or [])
        current.disclosures += count
        current.first_at = first if current.first_at is None else min(current.first_at, first)
        current.last_at = last if current.last_at is None else max(current.last_at, last)
        current.actors.add((org, user, token))
    if current is not None:
        yield current


def digest_entries(entries: Iterator[tuple]) -> str:
    """A SHA-256 over the frozen entries in a fixed order: a notified scope can be shown unchanged."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(repr(tuple(str(value) for value in entry)).encode())
    return digest.hexdigest()
