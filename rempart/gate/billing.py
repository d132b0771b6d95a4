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

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from rempart.ledger.actor import Actor
from rempart.ledger.bulk import append_same
from rempart.ledger.models import Disclosure
from rempart.ledger.recording import record, record_many
from rempart.lib import csv_safe
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


# ------------------------------------------------------------------------------------------------ PostgreSQL
# The detail file of a month is millions of rows: on PostgreSQL it is produced by the database itself
# (``COPY (SELECT …) TO STDOUT``) and streamed to the file, after the ledger rows of every beneficiary it names
# are written. The rows are the same bytes as rempart.billing.detail's row-by-row path writes (a test compares
# both on one statement): the same lines kept, the same split of a claim's net over its lines (largest
# remainder), cells neutralised for spreadsheets by the same rule (rempart.lib.csv_safe), CR and LF in a text
# cell as spaces, empty cells unquoted.

_LEDGER_BATCH = 50_000
_ROWS_PER_WRITE = 20_000

# The statement's claims and their net billed, their lines, which lines the file keeps, and each kept line's
# share of its claim's net (billing.detail.allocate: exact when the net is what was accepted, else largest
# remainder, ties by line number; equal weights if every weight is 0).
_KEPT_LINES = """
WITH nets AS (
    SELECT statement_id, claim_id, CAST(SUM(amount_cents) AS bigint) AS net
      FROM billing_statementitem
     WHERE statement_id = ANY(%(statements)s) AND claim_id IS NOT NULL
     GROUP BY statement_id, claim_id
), flagged AS (
    SELECT n.statement_id, n.claim_id, n.net, l.number, l.beneficiary_id, l.care_date, l.code_system, l.code, l.quantity,
           l.base_cents, l.amo_paid_cents, l.amc_claimed_cents, l.accepted_cents,
           (l.status IN ('accepted', 'reduced') AND l.accepted_cents > 0) AS paid,
           bool_or(l.status IN ('accepted', 'reduced') AND l.accepted_cents > 0)
               OVER (PARTITION BY n.statement_id, n.claim_id) AS any_paid
      FROM nets n JOIN claims_claimline l ON l.claim_id = n.claim_id
), kept AS (
    SELECT * FROM flagged WHERE paid OR (NOT any_paid AND net <> 0)
)
"""
_ALLOCATED = """
, weighed AS (
    SELECT k.*, CAST(SUM(accepted_cents) OVER (PARTITION BY statement_id, claim_id) AS bigint) AS total_w,
           COUNT(*) OVER (PARTITION BY statement_id, claim_id) AS n_lines
      FROM kept k
), split AS (
    SELECT w.*,
           (ABS(net) * (CASE WHEN total_w = 0 THEN 1 ELSE accepted_cents END))
               / (CASE WHEN total_w = 0 THEN n_lines ELSE total_w END) AS share,
           (ABS(net) * (CASE WHEN total_w = 0 THEN 1 ELSE accepted_cents END))
               % (CASE WHEN total_w = 0 THEN n_lines ELSE total_w END) AS rest
      FROM weighed w
), ranked AS (
    SELECT s.*, CAST(SUM(share) OVER (PARTITION BY statement_id, claim_id) AS bigint) AS shared,
           ROW_NUMBER() OVER (PARTITION BY statement_id, claim_id ORDER BY rest DESC, number) AS place
      FROM split s
), billed AS (
    SELECT r.*,
           CASE WHEN net = total_w THEN accepted_cents
                ELSE (CASE WHEN net < 0 THEN -1 ELSE 1 END)
                     * (share + CASE WHEN place <= ABS(net) - shared THEN 1 ELSE 0 END)
           END AS billed_cents
      FROM ranked r
), refs AS (
    SELECT claim_id, string_agg(reference, '|' ORDER BY reference) AS refs
      FROM (SELECT DISTINCT i.claim_id, pay.reference COLLATE "C" AS reference
              FROM payments_paymentitem i
              JOIN payments_payment pay ON pay.id = i.payment_id
             WHERE i.claim_id IN (SELECT claim_id FROM kept)
               AND pay.status IN ('sent', 'settled', 'returned')) paid_by
     GROUP BY claim_id
)
"""


def _cell(expression: str) -> str:
    """SQL for a text cell as rempart.lib.csv_safe writes it: CR/LF as spaces, a formula-looking text behind a
    ``'`` (a signed decimal number stays as it is), empty as nothing (COPY would quote an empty string)."""
    text = f"translate({expression}, E'\\r\\n', '  ')"
    return (
        f"NULLIF(CASE WHEN left({text}, 1) IN ('=', '+', '-', '@', E'\\t', '＝', '＋', '－', '＠') "
        f"AND {text} !~ '^[+-]?([0-9]+([.,][0-9]+)?|[.,][0-9]+)$' THEN '''' || {text} ELSE {text} END, '')"
    )


_CELLS = {
    name: _cell(expression)
    for name, expression in (
        ("number", "st.number"), ("invoice", "c.invoice_number"), ("adherent", "ct.adherent_number"), ("finess", "p.finess"),
        ("domain", "c.domain"), ("code_system", "b.code_system"), ("code", "b.code"), ("refs", "refs.refs"),
    )
}  # fmt: skip
# Composed by psycopg (sql.SQL placeholders) for COPY, which takes no parameters; the text itself is constant.
_DETAIL_SELECT = """
SELECT {number}, b.claim_id, {invoice}, b.number, {adherent},
       CASE WHEN ct.id IS NOT NULL THEN bf.member_number END, b.care_date, {finess},
       {domain}, {code_system}, {code}, b.quantity, b.base_cents,
       b.amo_paid_cents, b.amc_claimed_cents, b.accepted_cents, b.billed_cents, {refs}
  FROM billed b
  JOIN billing_statement st ON st.id = b.statement_id
  JOIN claims_claim c ON c.id = b.claim_id
  LEFT JOIN accounts_organisation o ON o.id = c.organisation_id
  LEFT JOIN registry_professional p ON p.id = o.professional_id
  LEFT JOIN registry_beneficiary bf ON bf.id = b.beneficiary_id
  LEFT JOIN registry_contract ct ON ct.id = bf.contract_id AND ct.insurer_id = st.insurer_id
  LEFT JOIN refs ON refs.claim_id = b.claim_id
 ORDER BY b.statement_id, b.claim_id, b.number
"""
# The kept lines are computed once per pass into a temporary table (the join of the statements' items with
# their claim lines, and its window): the readers and the rows both read it.
_MAKE_KEPT = "CREATE TEMPORARY TABLE billing_detail_kept ON COMMIT DROP AS " + _KEPT_LINES + "TABLE kept"  # noqa: S608
_DETAIL_ROWS = "WITH kept AS (TABLE billing_detail_kept)" + _ALLOCATED + _DETAIL_SELECT  # noqa: S608 - constants
_DETAIL_PEOPLE = """
SELECT DISTINCT k.statement_id, k.beneficiary_id
  FROM billing_detail_kept k
  JOIN billing_statement st ON st.id = k.statement_id
  JOIN registry_beneficiary bf ON bf.id = k.beneficiary_id
  JOIN registry_contract ct ON ct.id = bf.contract_id AND ct.insurer_id = st.insurer_id
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class DetailTarget:
    """One detail file to write: its statement, the ledger's reader of it, and where its rows go."""

    statement_id: int
    insurer_id: int
    number: str
    actor: Actor
    write: Callable[[bytes], None]


def copy_details(targets: list[DetailTarget], *, plan: Callable[[int], None] | None = None) -> dict[int, int]:
    """PostgreSQL: record each file's readers, then stream every file's CSV rows (no header) to its ``write``.

    First one ledger row per distinct beneficiary of each file (the statement's insurer's people named in it,
    purpose ``billing``), in batches; only then the rows, which carry their adherent numbers. All files in one
    pass of the database (a month's statements together: one scan of each table, not one per statement); call
    inside the files' transaction. ``plan`` is told how many items the files cover before anything is read (the
    caller may choose the database's plan for that size). Returns {statement id: rows written}.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("billing reads are recorded inside the detail file's transaction")
    by_id = {target.statement_id: target for target in targets}
    if not by_id:
        return {}
    if plan is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM billing_statementitem WHERE statement_id = ANY(%s)", [list(by_id)]
            )
            plan(cursor.fetchone()[0])
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS billing_detail_kept")
        cursor.execute(_MAKE_KEPT, {"statements": list(by_id)})
        cursor.execute("ANALYZE billing_detail_kept")
        cursor.execute(_DETAIL_PEOPLE)
        current, people = None, array("q")
        while batch := cursor.fetchmany(_LEDGER_BATCH):
            for statement_id, beneficiary_id in batch:
                if statement_id != current:
                    _record_readers(by_id.get(current), people)
                    current, people = statement_id, array("q")
                people.append(beneficiary_id)
        _record_readers(by_id.get(current), people)
    query = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, DELIMITER ';')").format(
        sql.SQL(_DETAIL_ROWS).format(**{name: sql.SQL(text) for name, text in _CELLS.items()})
    )
    prefixes = {(csv_safe.neutralise(t.number) + ";").encode(): t for t in targets}
    counts = dict.fromkeys(by_id, 0)
    with connection.wrap_database_errors, connection.cursor() as cursor:
        with cursor.cursor.copy(query) as copy:
            _route(copy, prefixes, counts)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE billing_detail_kept")
    return counts


def _record_readers(target: DetailTarget | None, people: array) -> None:
    if target is None or not people:
        return
    actor = target.actor
    common = {
        "channel": actor.channel, "purpose": PURPOSE_BILLING, "organisation_id": actor.organisation_id,
        "user_id": actor.user_id, "token_id": actor.token_id, "session_ref": actor.session_ref,
        "ip_address": actor.ip, "insurer_id": target.insurer_id, "outcome": Disclosure.Outcome.LISTED,
        "fields": detail_fields(target.number),
    }  # fmt: skip
    for start in range(0, len(people), _LEDGER_BATCH):
        append_same(common, [{"beneficiary_id": pk} for pk in people[start : start + _LEDGER_BATCH]])


def _route(copy, prefixes: dict[bytes, DetailTarget], counts: dict[int, int]) -> None:
    """Each row (one COPY message, led by its statement's number) to its file, in blocks, CRLF-terminated."""
    target: DetailTarget | None = None
    prefix = b"\0"
    pending: list[bytes] = []

    def flush() -> None:
        if pending and target is not None:
            target.write(b"".join(pending).replace(b"\n", b"\r\n"))
            counts[target.statement_id] += len(pending)
        pending.clear()

    for message in copy:
        row = bytes(message)
        if not row.startswith(prefix):
            flush()
            prefix = row[: row.index(b";") + 1]
            target = prefixes[prefix]
        pending.append(row)
        if len(pending) >= _ROWS_PER_WRITE:
            flush()
    flush()
