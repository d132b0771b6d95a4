"""The statement's detail file: one CSV row per paid claim line, for the insurer's own reconciliation.

What the insurer (the data controller) needs to match every euro billed with its own records, and nothing
more: its adherent number and the member's rank (read through the recording gate, purpose ``billing``), the
care, the professional's FINESS, the codes, the amounts and the references of the claim and of the transfer
that paid it. No NIR, no names, no birth dates. Format: docs/formats/billing-detail-v1.md.

The file is streamed to ``REMPART_BILLING_DIR`` — on PostgreSQL straight from the database (``COPY``), elsewhere a
chunk of claims at a time (memory bounded by the chunk, plus a bitmap of the beneficiaries already recorded) —
written once, and its SHA-256, path and row count kept
on the statement; a download checks the digest first (:func:`open_detail`) and refuses an altered file.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.http import FileResponse
from django.utils.translation import gettext as _

from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation
from rempart.billing.batch_db import batch_memory, whole_table_plan
from rempart.billing.models import Statement, StatementItem
from rempart.claims.models import ClaimLine
from rempart.gate.billing import DetailTarget, copy_details, read_for_billing, record_download
from rempart.ledger.actor import Actor
from rempart.ledger.models import Disclosure
from rempart.lib import csv_safe
from rempart.payments.models import Payment, PaymentItem

FORMAT = "rempart-billing-detail/1"
COLUMNS = (
    "statement_number",
    "claim_id",
    "invoice_number",
    "line_number",
    "adherent_number",
    "member_rank",
    "care_date",
    "professional_finess",
    "domain",
    "code_system",
    "code",
    "quantity",
    "base_cents",
    "amo_cents",
    "claimed_cents",
    "accepted_cents",
    "billed_cents",
    "payment_references",
)
CLAIMS_PER_CHUNK = 5000
# Tests set it to compare the database's COPY path with the row-by-row one on PostgreSQL.
ROW_BY_ROW = False
# Detail files written in one pass (one transaction): a month's statements of ~80 insurers together.
FILES_PER_PASS = 100
PAID_LINE_STATUSES = (ClaimLine.Status.ACCEPTED, ClaimLine.Status.REDUCED)
# As the statements count a claim paid: in a transfer sent, later settled or returned (then paid again).
PAYMENT_STATUSES = (Payment.Status.SENT, Payment.Status.SETTLED, Payment.Status.RETURNED)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class DetailError(Exception):
    """The detail file cannot be served (missing or altered): a clear reason, nothing personal in it."""


class DetailTampered(DetailError):
    """The file on disk no longer has the digest recorded when it was written."""


@dataclass(frozen=True)
class DetailFile:
    path: Path
    sha256: str
    rows: int


def detail_path(statement: Statement) -> Path:
    """Where a statement's detail file lives: one file per statement number (which names the insurer)."""
    name = _UNSAFE_NAME.sub("_", statement.number)
    return Path(settings.REMPART_BILLING_DIR) / "detail" / f"{name}.csv"


def insurer_organisation(statement: Statement) -> Organisation | None:
    return Organisation.objects.filter(
        kind=Organisation.Kind.INSURER, insurer_id=statement.insurer_id
    ).first()


def billing_actor(statement: Statement, producer: Actor | None = None) -> Actor:
    """The ledger's reader of a detail file: the insurer's organisation, through the producer's channel."""
    organisation = insurer_organisation(statement)
    base = producer or Actor(channel=Disclosure.Channel.CLI, organisation_id=None)
    return replace(
        base,
        organisation_id=organisation.pk if organisation else None,
        session_ref=base.session_ref or f"billing:{statement.number}"[:64],
    )


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` cents over lines in proportion to ``weights`` (largest remainder; exact sum, integers).

    A claim billed exactly its accepted amount gets each line's accepted amount back; a claim partly reversed
    (credit note, review) in the same statement spreads the net over its lines. Equal weights if all are 0.
    """
    if not weights:
        return []
    if total == sum(weights):
        return list(weights)  # the usual case: each line billed what was accepted for it
    if not any(weights):
        weights = [1] * len(weights)
    whole = sum(weights)
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    shares = [magnitude * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(magnitude * weights[i] % whole), i))
    for i in remainders[: magnitude - sum(shares)]:
        shares[i] += 1
    return [sign * s for s in shares]


class _Seen:
    """Which beneficiaries were already read for this file: a bitmap (1.25 MB per ten million ids)."""

    def __init__(self) -> None:
        self._bits = bytearray()

    def add_new(self, ids: set[int]) -> list[int]:
        new = []
        for pk in sorted(ids):
            byte, bit = divmod(pk, 8)
            if byte >= len(self._bits):
                self._bits.extend(bytes(byte - len(self._bits) + 1 + 4096))
            if not self._bits[byte] >> bit & 1:
                self._bits[byte] |= 1 << bit
                new.append(pk)
        return new


def _claim_chunks(statement: Statement) -> Iterator[dict[int, int]]:
    """The statement's claims in id order, a chunk at a time: {claim id: net amount billed for it}."""
    last = 0
    while True:
        rows = list(
            StatementItem.objects.filter(statement=statement, claim_id__isnull=False, claim_id__gt=last)
            .values("claim_id")
            .annotate(net=Sum("amount_cents"))
            .order_by("claim_id")
            .values_list("claim_id", "net")[:CLAIMS_PER_CHUNK]
        )
        if not rows:
            return
        yield dict(rows)
        last = rows[-1][0]


def _chunk_claims(statement: Statement, claim_ids: list[int]):
    """The chunk's claims as a subquery (a range of the statement's items), not a list of thousands of ids."""
    return StatementItem.objects.filter(
        statement=statement, claim_id__gte=claim_ids[0], claim_id__lte=claim_ids[-1]
    ).values("claim_id")


def _payment_references(statement: Statement, claim_ids: list[int]) -> dict[int, str]:
    refs: dict[int, set[str]] = defaultdict(set)
    for claim_id, reference in PaymentItem.objects.filter(
        claim_id__in=_chunk_claims(statement, claim_ids), payment__status__in=PAYMENT_STATUSES
    ).values_list("claim_id", "payment__reference"):
        refs[claim_id].add(reference)
    return {claim_id: "|".join(sorted(values)) for claim_id, values in refs.items()}


def _chunk_rows(statement: Statement, nets: dict[int, int], actor: Actor, seen: _Seen) -> list[list]:
    claim_ids = sorted(nets)
    lines = list(
        ClaimLine.objects.filter(claim_id__in=_chunk_claims(statement, claim_ids))
        .order_by("claim_id", "number")
        .values_list(
            "claim_id",
            "claim__invoice_number",
            "number",
            "beneficiary_id",
            "care_date",
            "claim__organisation__professional__finess",
            "claim__domain",
            "code_system",
            "code",
            "quantity",
            "base_cents",
            "amo_paid_cents",
            "amc_claimed_cents",
            "accepted_cents",
            "status",
        )
    )
    by_claim: dict[int, list[tuple]] = defaultdict(list)
    for line in lines:
        if line[14] in PAID_LINE_STATUSES and line[13] > 0:
            by_claim[line[0]].append(line)
    for line in lines:
        # A claim with no paid line left (reviewed down to 0) but money billed for it in this statement: its
        # lines carry the amount, so that the file still adds up to the statement.
        if nets[line[0]] and not any(paid[13] > 0 for paid in by_claim[line[0]]):
            by_claim[line[0]].append(line)
    lines = [line for claim_id in claim_ids for line in by_claim.get(claim_id, [])]
    people = {line[3] for line in lines}
    new = set(seen.add_new(people))
    # Everyone of the chunk is read; only those not met in an earlier chunk get their ledger row.
    known = read_for_billing(
        actor, statement.insurer_id, people, statement_number=statement.number, already_recorded=people - new
    )
    payments = _payment_references(statement, claim_ids)
    rows = []
    for claim_id in claim_ids:
        claim_lines = by_claim.get(claim_id, [])
        billed = allocate(nets[claim_id], [line[13] for line in claim_lines])
        for line, billed_cents in zip(claim_lines, billed, strict=True):
            adherent, rank = known.get(line[3], ("", ""))
            rows.append(
                [
                    statement.number,
                    claim_id,
                    line[1],
                    line[2],
                    adherent,
                    rank,
                    line[4].isoformat(),
                    line[5] or "",
                    line[6],
                    line[7],
                    line[8],
                    line[9],
                    line[10],
                    line[11],
                    line[12],
                    line[13],
                    billed_cents,
                    payments.get(claim_id, ""),
                ]
            )
    return rows


def _flat(cell):
    """A text cell on one line (CR and LF as spaces): a row is a line, whatever a professional typed."""
    return cell.replace("\r", " ").replace("\n", " ") if isinstance(cell, str) else cell


class _OpenFile:
    """A detail file being written: its partial path, its handle and its running SHA-256."""

    def __init__(self, statement: Statement, actor: Actor) -> None:
        self.statement, self.actor = statement, actor
        self.path = detail_path(statement)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_suffix(".csv.partial")
        self.partial.unlink(missing_ok=True)  # left by an attempt that failed
        self.handle = open(self.partial, "wb")  # noqa: SIM115 - closed by finish() or discard()
        self.digest = hashlib.sha256()
        self.rows = 0
        header = io.StringIO()
        csv_safe.writer(header).writerow(COLUMNS)
        self.write(header.getvalue().encode("utf-8"))

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.handle.write(data)

    def finish(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.chmod(self.partial, 0o440)
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.handle.close()
        self.partial.unlink(missing_ok=True)


def _write_rows(statement: Statement, actor: Actor, write) -> int:
    """The row-by-row path: a chunk of claims at a time through the gate's ``read_for_billing``."""
    count = 0
    seen = _Seen()
    buffer = io.StringIO()
    writer = csv_safe.writer(buffer)
    for nets in _claim_chunks(statement):
        rows = _chunk_rows(statement, nets, actor, seen)
        writer.writerows([_flat(cell) for cell in row] for row in rows)
        count += len(rows)
        write(buffer.getvalue().encode("utf-8"))
        buffer.seek(0)
        buffer.truncate()
    return count


def write_detail(statement: Statement, *, producer: Actor | None = None) -> DetailFile:
    """Write the statement's detail file once and keep its digest; a second call returns the first file."""
    return write_details([statement], producer=producer)[statement.pk]


def write_details(statements: list[Statement], *, producer: Actor | None = None) -> dict[int, DetailFile]:
    """Write the detail files of these statements (those not written yet) and keep their digests.

    Files are written :data:`FILES_PER_PASS` statements at a time, each group in one transaction: the gate's
    ledger rows (one per distinct beneficiary of each file) and the statements' digests commit together. On
    PostgreSQL the database writes every file of the group in one pass (``COPY``, rempart.gate.billing
    .copy_details); elsewhere (SQLite, the embedded default) row by row, a chunk of claims at a time. Both write
    the same bytes (a test compares them). Each file is written beside its final name, made read-only and moved
    there before the commit; if anything fails, the group's partial files are removed, its statements name no
    file, and the next call writes them again. Returns {statement id: DetailFile}.
    """
    done: dict[int, DetailFile] = {}
    ids = sorted({s.pk for s in statements})
    for start in range(0, len(ids), FILES_PER_PASS):
        done.update(_write_group(ids[start : start + FILES_PER_PASS], producer))
    return done


def _write_group(ids: list[int], producer: Actor | None) -> dict[int, DetailFile]:
    done: dict[int, DetailFile] = {}
    with transaction.atomic():
        batch_memory()
        locked = list(Statement.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        for statement in locked:
            if statement.detail_sha256:
                done[statement.pk] = DetailFile(
                    Path(statement.detail_path), statement.detail_sha256, statement.detail_rows
                )
        files: list[_OpenFile] = []
        try:
            for statement in locked:
                if statement.pk not in done:
                    files.append(_OpenFile(statement, billing_actor(statement, producer)))
            if connection.vendor == "postgresql" and not ROW_BY_ROW:
                counts = copy_details(
                    [DetailTarget(f.statement.pk, f.statement.insurer_id, f.statement.number, f.actor, f.write)
                     for f in files],
                    plan=whole_table_plan,
                )  # fmt: skip
                for f in files:
                    f.rows = counts[f.statement.pk]
            else:
                for f in files:
                    f.rows = _write_rows(f.statement, f.actor, f.write)
            for f in files:
                f.finish()
        except BaseException:
            for f in files:
                f.discard()
            raise
        for f in files:
            sha256 = f.digest.hexdigest()
            Statement.objects.filter(pk=f.statement.pk, detail_sha256="").update(
                detail_path=str(f.path), detail_sha256=sha256, detail_rows=f.rows
            )
            record_event(
                "billing.detail_written", organisation=insurer_organisation(f.statement),
                statement=f.statement.number, rows=f.rows, sha256=sha256,
            )  # fmt: skip
            done[f.statement.pk] = DetailFile(f.path, sha256, f.rows)
    return done


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_detail(statement: Statement):
    """The detail file opened for reading, once its digest is checked; raises DetailError / DetailTampered."""
    if not statement.detail_sha256 or not statement.detail_path:
        raise DetailError(_("Le fichier détaillé de ce relevé n'a pas encore été produit."))
    path = Path(statement.detail_path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - handed to the streaming response, which closes it
    except OSError:
        raise DetailError(_("Le fichier détaillé de ce relevé est introuvable.")) from None
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    if digest.hexdigest() != statement.detail_sha256:
        handle.close()
        raise DetailTampered(
            _("Le fichier détaillé ne correspond plus à son empreinte enregistrée : téléchargement refusé.")
        )
    handle.seek(0)
    return handle


def file_name(statement: Statement) -> str:
    return f"detail-{_UNSAFE_NAME.sub('_', statement.number)}.csv"


def download(statement: Statement, actor: Actor, *, request=None, user=None) -> FileResponse:
    """Serve a statement's detail file: written first if it was not yet, digest checked, then recorded.

    Each download is a ledger row (purpose ``billing``, fields naming the file and its digest) and a security
    event; an altered file is refused (``DetailTampered``, recorded) and nothing of it leaves.
    """
    if not statement.detail_sha256:
        write_detail(statement, producer=actor)
        statement.refresh_from_db()
    try:
        handle = open_detail(statement)
    except DetailTampered:
        record_event(
            "billing.detail_tampered",
            request=request,
            user=user,
            organisation=insurer_organisation(statement),
            statement=statement.number,
        )
        raise
    try:
        with transaction.atomic():
            row = record_download(
                billing_actor(statement, actor),
                statement.insurer_id,
                statement.number,
                statement.detail_sha256,
                statement.detail_rows,
            )
            record_event(
                "billing.detail_downloaded", request=request, user=user,
                organisation=insurer_organisation(statement), statement=statement.number,
                sha256=statement.detail_sha256, rows=statement.detail_rows, reference=row.reference,
            )  # fmt: skip
    except BaseException:
        handle.close()
        raise
    response = FileResponse(
        handle, as_attachment=True, filename=file_name(statement), content_type="text/csv; charset=utf-8"
    )
    response["X-Content-SHA256"] = statement.detail_sha256
    return response
