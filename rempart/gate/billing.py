"""Insurer billing through the gate (purpose "billing"): the detail file's adherent numbers and ranks.

An insurer's detail file names, for each paid claim line, the beneficiary as the insurer knows them: the
adherent number of the contract and the member's rank in it. Those are personal data read from the registry,
so they are read here, and every read is recorded: one ledger row per distinct beneficiary of the file when
the file is produced (:func:`read_for_billing`, batched with ``record_many``), and one row per download of
the file (:func:`record_download`: nothing new is read, but the file leaves the platform again).

The rows name the insurer's organisation as the reader (the file is written *for* it, whoever runs the
command), the channel of whoever produced or downloaded it, and the file in ``fields``. No surveillance
here: the reader is the data controller itself, receiving its own beneficiaries' numbers for money that was
paid on its behalf; what it may see is bounded by the statement, not by what it asks.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.ledger.recording import record, record_many
from rempart.registry.models import Beneficiary

PURPOSE_BILLING = "billing"


def detail_fields(statement_number: str) -> list[str]:
    """What a detail file discloses of each beneficiary, and which file it is."""
    return ["adherent_number", "member_rank", f"billing_detail:{statement_number}"]


def read_for_billing(
    actor: Actor,
    insurer_id: int,
    beneficiary_ids: Iterable[int],
    *,
    statement_number: str,
    already_recorded: Iterable[int] = (),
) -> dict[int, tuple[str, int]]:
    """The adherent number and member rank of each of the insurer's beneficiaries in ``beneficiary_ids``.

    Returns {beneficiary id: (adherent number, member rank)}; an id that is not one of this insurer's people
    is absent (and nothing of it is recorded). Writes one ledger row per beneficiary returned, except those in
    ``already_recorded`` (met in an earlier chunk of the same file: one row per beneficiary *of the file*), in
    the caller's transaction: call it inside the transaction that writes the file.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("billing reads are recorded inside the detail file's transaction")
    ids = sorted(set(beneficiary_ids))
    if not ids:
        return {}
    found = {
        pk: (adherent, rank)
        for pk, adherent, rank in Beneficiary.objects.filter(pk__in=ids, contract__insurer_id=insurer_id)
        .values_list("pk", "contract__adherent_number", "member_number")
        .iterator(chunk_size=5000)
    }
    fields = detail_fields(statement_number)
    skip = set(already_recorded)
    record_many(
        actor,
        PURPOSE_BILLING,
        [
            {
                "insurer_id": insurer_id,
                "beneficiary_id": pk,
                "outcome": Disclosure.Outcome.LISTED,
                "fields": fields,
            }
            for pk in sorted(found)
            if pk not in skip
        ],
    )
    return found


def record_download(
    actor: Actor, insurer_id: int, statement_number: str, sha256: str, rows: int
) -> Disclosure:
    """The ledger row of one download of a detail file (its content's rows were recorded at production)."""
    return record(
        actor,
        PURPOSE_BILLING,
        insurer_id=insurer_id,
        outcome=Disclosure.Outcome.LISTED,
        fields=[
            f"billing_detail:{statement_number}",
            "download",
            f"sha256:{sha256}",
            f"rows:{rows}",
        ],
    )
