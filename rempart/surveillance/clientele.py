"""Each organisation's memory of the people it has confirmed: what tells a clientele from a list.

A counter confirms the same people again and again (its patients, their families); a script working
through a leaked or bought list confirms people the organisation has never seen. The memory holds, per
organisation, a keyed hash of every beneficiary it confirmed in the last ``clientele_days`` (with the day of
the last confirmation): one indexed probe per confirmation, a write at most once a day per person.

It is seeded from the disclosure ledger the first time an organisation is observed (the ledger has every
confirmation, with organisation and beneficiary), so deploying it, or losing it, forgets nothing that the
ledger remembers. An organisation whose history is shorter than ``clientele_learning_days`` is *learning*:
everyone is new to it, and the new-identities budget does not apply yet (docs/surveillance.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import connection, transaction

from rempart.surveillance import policy

DAY = 86400
SEED_BATCH = 5000
MAX_DAYS = 36500  # thresholds raised out of reach (the benchmark) stay representable as dates
PURGE_EVERY = 1000
_SEED_PURPOSES = ("rights_check", "pec", "claim")
_writes = [0]
_history: dict[int, int] = {}  # per process: organisation id → epoch seconds of its oldest confirmation


@cache
def _key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rempart-clientele-tag").derive(
        base64.b64decode(settings.REMPART_BLIND_INDEX_KEY)
    )


def tag_of(organisation_id: int, beneficiary_id: int) -> bytes:
    """A keyed hash per (organisation, person): the same person has unrelated tags in two organisations."""
    message = f"{organisation_id}:{beneficiary_id}".encode()
    return hmac.new(_key(), message, hashlib.sha256).digest()[:8]


def _days(name: str) -> int:
    return min(int(policy.threshold(name)), MAX_DAYS)


@dataclass(frozen=True)
class Sight:
    new: bool  # the organisation had not confirmed this person within the memory's span
    learning: bool  # the organisation's history is too short for "new" to mean anything yet


_SELECT = "SELECT seen_day FROM surveillance_clientelemember WHERE organisation_id = %s AND tag = %s"
_UPSERT = (
    "INSERT INTO surveillance_clientelemember (organisation_id, tag, seen_day) VALUES (%s, %s, %s) "
    "ON CONFLICT (organisation_id, tag) DO UPDATE SET seen_day = excluded.seen_day"
)
_PURGE = "DELETE FROM surveillance_clientelemember WHERE organisation_id = %s AND seen_day < %s"


def observe(organisation_id: int, beneficiary_id: int, now: float) -> Sight:
    """Whether this confirmation is of someone new to the organisation; remembers it either way."""
    since = history_since(organisation_id, now)
    today = int(now) // DAY
    tag = tag_of(organisation_id, beneficiary_id)
    with connection.cursor() as cursor:
        cursor.execute(_SELECT, [organisation_id, tag])
        row = cursor.fetchone()
        seen = row[0] if row else None
        new = seen is None or seen < today - _days("clientele_days")
        if seen is None or seen < today:
            cursor.execute(_UPSERT, [organisation_id, tag, today])
            _writes[0] += 1
            if (
                _writes[0] % PURGE_EVERY == 0
            ):  # people not seen within the span: this organisation's, now and then
                cursor.execute(_PURGE, [organisation_id, today - _days("clientele_days")])
    learning = now - since < _days("clientele_learning_days") * DAY
    return Sight(new=new, learning=learning)


def observe_with_row(organisation_id: int, beneficiary_id: int, now: float):
    """:func:`observe` as work committed with the confirmation's ledger row, in the row's own statement on
    PostgreSQL (rempart.ledger.fast_append): one round trip and one durable commit for both. The previous
    day is read from the statement's snapshot, before its upsert; the upsert runs only if the row is written."""
    from rempart.ledger.fast_append import WithRow

    since = history_since(organisation_id, now)  # seeded (if need be) before the statement reads the memory
    today = int(now) // DAY
    tag = tag_of(organisation_id, beneficiary_id)
    learning = now - since < _days("clientele_learning_days") * DAY

    def finish(seen: int | None) -> Sight:
        if seen is None or seen < today:
            _writes[0] += 1
            if _writes[0] % PURGE_EVERY == 0:
                with connection.cursor() as cursor:
                    cursor.execute(_PURGE, [organisation_id, today - _days("clientele_days")])
        return Sight(new=seen is None or seen < today - _days("clientele_days"), learning=learning)

    return WithRow(
        ctes=[
            ("clientele_seen", _SELECT, [organisation_id, tag]),
            (
                "clientele_upsert",
                "INSERT INTO surveillance_clientelemember (organisation_id, tag, seen_day) "
                "SELECT %s, %s, %s FROM new_row ON CONFLICT (organisation_id, tag) DO UPDATE "
                "SET seen_day = excluded.seen_day WHERE surveillance_clientelemember.seen_day < excluded.seen_day",
                [organisation_id, tag, today],
            ),
        ],
        result="(SELECT seen_day FROM clientele_seen)",
        finish=finish,
        alone=lambda: observe(organisation_id, beneficiary_id, now),
    )


def known(organisation_id: int, beneficiary_ids, now: float) -> tuple[set[int], bool]:
    """Which of these people the organisation confirmed within the memory's span (read only), and whether
    it is still learning: what a chunk of invoices is judged against before it is decided."""
    since = history_since(organisation_id, now)
    learning = now - since < _days("clientele_learning_days") * DAY
    ids = list(dict.fromkeys(beneficiary_ids))
    if not ids:
        return set(), learning
    horizon = int(now) // DAY - _days("clientele_days")
    by_tag = {tag_of(organisation_id, person): person for person in ids}
    seen = set()
    tags = list(by_tag)
    with connection.cursor() as cursor:
        for start in range(0, len(tags), 500):
            part = tags[start : start + 500]
            marks = ", ".join(["%s"] * len(part))
            cursor.execute(
                "SELECT tag, seen_day FROM surveillance_clientelemember "  # noqa: S608 - placeholders only
                f"WHERE organisation_id = %s AND tag IN ({marks})",
                [organisation_id, *part],
            )
            seen.update(by_tag[bytes(tag)] for tag, day in cursor.fetchall() if day >= horizon)
    return seen, learning


def remember(organisation_id: int, beneficiary_ids, now: float) -> None:
    """Remember these people as confirmed today (one batch of upserts): the chunked form of :func:`observe`."""
    today = int(now) // DAY
    rows = [
        [organisation_id, tag_of(organisation_id, person), today] for person in dict.fromkeys(beneficiary_ids)
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.executemany(_UPSERT, rows)
    _writes[0] += len(rows)


def history_since(organisation_id: int, now: float) -> int:
    """Epoch seconds of the organisation's oldest remembered confirmation (seeding the memory if need be)."""
    since = _history.get(organisation_id)
    if since is None:
        from rempart.surveillance.models import Clientele

        since = (
            Clientele.objects.filter(organisation_id=organisation_id)
            .values_list("history_since", flat=True)
            .first()
        )
        if since is None:
            since = seed(organisation_id, now)
        _history[organisation_id] = since
    return since


def seed(organisation_id: int, now: float | None = None) -> int:
    """Fill the organisation's memory from the ledger (confirmations of the last ``clientele_days``).

    Idempotent and safe to run concurrently (inserts that exist already are skipped). Returns the epoch
    seconds of the oldest confirmation found, or ``now`` for an organisation without history.
    """
    from django.db.models import Max, Min

    from rempart.ledger.models import Disclosure
    from rempart.surveillance.models import Clientele, ClienteleMember

    now = time.time() if now is None else now
    horizon = dt.datetime.fromtimestamp(now - _days("clientele_days") * DAY, tz=dt.UTC)
    rows = Disclosure.objects.filter(
        organisation_id=organisation_id,
        created_at__gte=horizon,
        beneficiary_id__isnull=False,
        purpose__in=_SEED_PURPOSES,
    )
    oldest = rows.aggregate(oldest=Min("created_at"))["oldest"]
    since = int(oldest.timestamp()) if oldest else int(now)
    people = (
        rows.values("beneficiary_id").annotate(last=Max("created_at")).values_list("beneficiary_id", "last")
    )
    batch: list[ClienteleMember] = []
    with transaction.atomic():
        for beneficiary_id, last in people.iterator(chunk_size=SEED_BATCH):
            batch.append(
                ClienteleMember(
                    organisation_id=organisation_id,
                    tag=tag_of(organisation_id, beneficiary_id),
                    seen_day=int(last.timestamp()) // DAY,
                )
            )
            if len(batch) >= SEED_BATCH:
                ClienteleMember.objects.bulk_create(batch, ignore_conflicts=True)
                batch = []
        ClienteleMember.objects.bulk_create(batch, ignore_conflicts=True)
        Clientele.objects.bulk_create(
            [Clientele(organisation_id=organisation_id, history_since=since)], ignore_conflicts=True
        )
    return since


def purge(now: float | None = None) -> int:
    """Forget people not confirmed within the memory's span; returns how many rows went."""
    from rempart.surveillance.models import ClienteleMember

    today = int(time.time() if now is None else now) // DAY
    deleted, _ = ClienteleMember.objects.filter(seen_day__lt=today - _days("clientele_days")).delete()
    return deleted


def forget() -> None:
    """Drop this process's cache (tests; after an organisation's memory was reseeded)."""
    _history.clear()
