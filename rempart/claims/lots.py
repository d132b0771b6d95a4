"""Receiving a lot of invoices: the file-level acknowledgement (ARL), then one result per invoice (RSP).

The file is first copied to a spooled temporary file (bounded memory) and read twice:

1. a whole pass of the reader (rempart.claims.lot_format) that only checks the file as a whole —
   header, sender, count, total, trailer, encoding. A lot wrong as a whole is refused here, before a
   single card is looked up, with nothing changed (its refusal is kept for the organisation's history);
2. then, in **one database transaction**, each invoice is checked, identified through the gate and
   adjudicated exactly as ``POST /api/v1/claims`` would (same schema, same service). Bad invoices are
   reported with line, field and reason (never the value); good ones go in together. A crash or a
   kill -9 in the middle rolls everything back, ledger rows and money postings included.

Re-sending a lot already accepted (same organisation, lot number and file) changes nothing and answers
the first result; the same lot number with another file is refused.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone

from rempart import gate
from rempart.accounting import service as accounting
from rempart.accounts.models import Organisation
from rempart.claims import lot_format, rules
from rempart.claims.batch import LotAdjudicator, Pending, Result, replayed
from rempart.claims.intake import InvoiceError, from_dict
from rempart.claims.models import Claim, ClaimLot, LotInvoiceError
from rempart.claims.reasons import label as reason_label
from rempart.claims.service import ClaimConflict, fingerprint, submit_claim, with_care_date
from rempart.gate import Actor, RefusedDomain
from rempart.lib import csv_safe, metrics
from rempart.surveillance.engine import CheckRefused

SPOOL_BYTES = 8 * 1024 * 1024
COPY_CHUNK = 1024 * 1024


class LotRejected(Exception):
    """The lot is refused as a whole (negative ARL): a stable code and a French message."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


def receive_lot(actor: Actor, organisation: Organisation, stream: BinaryIO, *, progress=None):
    """Spool, check as a whole, then adjudicate every invoice in one transaction. Returns (lot, replayed)."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spooled:
        sha256 = copy_bounded(stream, spooled)
        spooled.seek(0)
        header, previous = check_lot(spooled, organisation, sha256)
        if previous is not None:
            return previous, True
        spooled.seek(0)
        return adjudicate_lot(actor, organisation, spooled, header, sha256, progress=progress), False


def copy_bounded(stream: BinaryIO, out: BinaryIO) -> str:
    """Copy the lot (at most REMPART_API_MAX_LOT_BYTES) and return its SHA-256."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(COPY_CHUNK):
        size += len(chunk)
        if size > settings.REMPART_API_MAX_LOT_BYTES:
            raise LotRejected(
                "too_large", f"lot trop volumineux (au plus {settings.REMPART_API_MAX_LOT_BYTES} octets)"
            )
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


def check_lot(stream: BinaryIO, organisation: Organisation, sha256: str):
    """The lot as a whole (ARL), and the lot already accepted under its number if this is a resend.

    Returns (header, previous). The same lot number with another file is refused (LotRejected)."""
    header = _check_whole(stream, organisation)
    previous = ClaimLot.objects.filter(
        organisation=organisation, lot_number=header.lot_number, status=ClaimLot.Status.ACCEPTED
    ).first()
    if previous is not None and previous.file_sha256 != sha256:
        raise _refuse(
            organisation,
            header.lot_number,
            sha256,
            "lot_number_reused",
            "ce numéro de lot a déjà servi pour un autre fichier",
        )
    return header, previous


def adjudicate_lot(
    actor: Actor, organisation: Organisation, stream: BinaryIO, header, sha256: str, *, progress=None
):
    """Pass 2: every invoice of a lot already checked as a whole, in one transaction."""
    if not transaction.get_connection().in_atomic_block:
        accounting.open_accounts_for(organisation)  # committed now: lots running at once do not deadlock
    return _adjudicate_all(actor, organisation, stream, header, sha256, progress=progress)


def _reader(stream: BinaryIO, organisation: Organisation):
    professional = organisation.professional
    return lot_format.read_lot(
        stream,
        sender_finess=professional.finess if professional else None,
        sender_siret=professional.siret if professional else None,
        max_invoices=settings.REMPART_CLAIMS_LOT_MAX_INVOICES,
    )


def _check_whole(stream: BinaryIO, organisation: Organisation):
    """Pass 1: the whole file, without reading a single card. Refusals are kept as the lot's history."""
    lot_number = ""
    try:
        lot = _reader(stream, organisation)
        lot_number = lot.header.lot_number
        for _line, _item in lot.invoices():
            pass
    except lot_format.LotRefused as exc:
        raise _refuse(organisation, lot_number or "?", "", exc.code, exc.message, exc.line) from None
    return lot.header


def _refuse(organisation, lot_number: str, sha256: str, code: str, message: str, line: int | None = None):
    ClaimLot.objects.create(
        organisation=organisation,
        lot_number=lot_number[:40],
        file_sha256=sha256,
        status=ClaimLot.Status.REFUSED,
        refusal_code=code,
        refusal_line=line,
    )
    return LotRejected(code, message, line)


FLUSH_INVOICES = 2000  # invoices read before they are adjudicated (memory stays bounded whatever the lot)


def _adjudicate_all(actor, organisation, stream, header, sha256: str, *, progress=None) -> ClaimLot:
    today = timezone.localdate()
    with transaction.atomic():
        lot = ClaimLot.objects.create(
            organisation=organisation,
            lot_number=header.lot_number,
            file_sha256=sha256,
            status=ClaimLot.Status.ACCEPTED,
            invoice_count=header.count,
            total_claimed_cents=header.total_amc_cents,
        )
        report = _Report(lot)
        adjudicator = LotAdjudicator(actor, lot, today)

        def one_by_one(pending: Pending) -> Result:
            return _one(actor, lot, pending.line, pending, today)

        waiting: list[Pending] = []
        for line, item in _reader(stream, organisation).invoices():
            ready = _checked(actor, line, item, today)
            if isinstance(ready, Pending):
                waiting.append(ready)
            else:
                report.add(ready)
            if len(waiting) >= FLUSH_INVOICES:
                report.add_all(adjudicator.run(waiting, one_by_one))
                waiting = []
            if progress is not None:
                progress.update(1)
        report.add_all(adjudicator.run(waiting, one_by_one))
        report.close()
    rejected = sum(report.counts.values()) - report.taken_in - report.counts["replayed"]
    metrics.record_import("claims_lot", report.taken_in, rejected)
    return lot


class _Report:
    """The lot's counts and its invoices' errors, written in batches as results come."""

    def __init__(self, lot: ClaimLot) -> None:
        self.lot = lot
        self.counts: Counter[str] = Counter()
        self.errors: list[LotInvoiceError] = []
        self.taken_in = 0  # invoices adjudicated (accepted, reduced, rejected by the rules): no line error

    def add(self, result: Result) -> None:
        self.counts[result.kind] += 1
        self.taken_in += result.problems is None
        if result.problems is not None:
            self.errors.append(
                LotInvoiceError(
                    lot=self.lot,
                    line=result.line,
                    invoice_number=result.number[:40],
                    kind=result.problems[0],
                    errors=result.problems[1],
                    ledger_reference=result.reference,
                )
            )
        if len(self.errors) >= 1000:
            LotInvoiceError.objects.bulk_create(self.errors)
            self.errors.clear()

    def add_all(self, results) -> None:
        for result in results:
            self.add(result)

    def close(self) -> None:
        LotInvoiceError.objects.bulk_create(self.errors)
        self.lot.counts = dict(self.counts)
        self.lot.save(update_fields=["counts"])


def _invalid(line: int, number: str, errors: list[dict], reference: str = "") -> Result:
    return Result(line, number, "invalid", (LotInvoiceError.Kind.INVALID, errors), reference)


def _checked(actor, line: int, item, today) -> Pending | Result:
    """Everything an invoice shows by itself, checked before any card is read (as ``submit_claim`` does)."""
    if isinstance(item, lot_format.LotLineError):
        return _invalid(line, item.invoice_number or "", item.as_dicts())
    number = str(item.get("invoice_number", ""))[:40] if isinstance(item, dict) else ""
    try:
        card, invoice = from_dict(item, today=today)
        gate.refuse_foreign_domain(actor, gate.PURPOSE_CLAIM, invoice.domain)
        rules.check_invoice(invoice, today=today, rules=rules.default_rules())
    except InvoiceError as exc:
        return _invalid(line, number, exc.errors)
    except rules.ClaimInputError as exc:
        return _invalid(line, number, [e.as_dict() for e in exc.errors])
    except RefusedDomain as exc:
        return _invalid(line, number, [_domain_message(exc)], exc.reference)
    return Pending(line, with_care_date(card, invoice.care_date), invoice, fingerprint(card, invoice))


def _domain_message(exc: RefusedDomain) -> dict:
    return {
        "line": None,
        "field": "domain",
        "message": f"domaine {exc.domain} non enregistré pour votre organisation",
    }


def _one(actor, lot, line: int, pending: Pending, today) -> Result:
    """One invoice through ``submit_claim`` (the single path: a chunk that met a concurrent writer)."""
    number = pending.invoice.invoice_number
    try:
        outcome = submit_claim(
            actor,
            pending.card,
            pending.invoice,
            channel=Claim.Channel.LOT,
            lot=lot,
            lot_line=line,
            today=today,
        )
    except rules.ClaimInputError as exc:
        return _invalid(line, number, [e.as_dict() for e in exc.errors])
    except ClaimConflict as exc:
        message = {"line": None, "field": "invoice_number", "message": str(exc)}
        return Result(line, number, "duplicate", (LotInvoiceError.Kind.DUPLICATE, [message]))
    except RefusedDomain as exc:
        return _invalid(line, number, [_domain_message(exc)], exc.reference)
    except CheckRefused as exc:
        message = {"line": None, "field": "", "message": exc.message, "code": exc.code}
        return Result(line, number, "refused", (LotInvoiceError.Kind.INVALID, [message]))
    if outcome.claim is None:
        return Result(line, number, "no_match", (LotInvoiceError.Kind.NO_MATCH, []), outcome.reference)
    if outcome.replayed:  # judged before (another lot, or the API): its result is listed here too
        return replayed(line, number, outcome.reference)
    return Result(line, number, outcome.claim.status, None, outcome.reference, outcome.claim)


RESULT_COLUMNS = [
    "line",
    "invoice_number",
    "status",
    "claimed_cents",
    "accepted_cents",
    "reasons",
    "reference",
]


def result_rows(lot: ClaimLot):
    """The RSP: one row per invoice of the lot — the claims it made, then the invoices that made none."""
    yield RESULT_COLUMNS
    for claim in lot.claims.order_by("lot_line").prefetch_related("lines"):
        reasons = sorted({code for line in claim.lines.all() for code in line.reasons})
        yield [
            claim.lot_line,
            claim.invoice_number,
            claim.status,
            claim.claimed_cents,
            claim.accepted_cents,
            ",".join(reasons),
            claim.ledger_reference,
        ]
    for error in lot.invoice_errors.all():
        reasons = ",".join(f"{e.get('field', '')}:{e.get('code', '')}" for e in error.errors)
        yield [error.line, error.invoice_number, error.kind, "", "", reasons, error.ledger_reference]


def results_document(lot: ClaimLot) -> dict:
    """The same results as one JSON document (docs/formats/claims-lot-v1.md, "JSON")."""
    invoices = []
    for claim in lot.claims.order_by("lot_line").prefetch_related("lines"):
        reasons = [
            {
                "line": line.number,
                "field": f"lines[{line.number - 1}]",
                "code": code,
                "message": reason_label(code),
            }
            for line in claim.lines.all()
            for code in line.reasons
        ]
        invoices.append(
            {
                "line": claim.lot_line,
                "invoice_number": claim.invoice_number,
                "status": claim.status,
                "claimed_cents": claim.claimed_cents,
                "accepted_cents": claim.accepted_cents,
                "reference": claim.ledger_reference,
                "reasons": reasons,
            }
        )
    for error in lot.invoice_errors.all():
        invoices.append(
            {
                "line": error.line,
                "invoice_number": error.invoice_number,
                "status": error.kind,
                "claimed_cents": None,
                "accepted_cents": None,
                "reference": error.ledger_reference,
                "reasons": [
                    {
                        "line": e.get("line"),
                        "field": e.get("field", ""),
                        "code": e.get("code", ""),
                        "message": e.get("message", ""),
                    }
                    for e in error.errors
                ],
            }
        )
    invoices.sort(key=lambda item: item["line"] or 0)
    return {
        "format": "rempart-claims-results",
        "version": 1,
        "lot_number": lot.lot_number,
        "status": lot.status,
        "invoice_count": lot.invoice_count,
        "counts": lot.counts,
        "invoices": invoices,
    }


def results_response(lot: ClaimLot) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rsp-{lot.lot_number}.csv"'
    writer = csv_safe.writer(response)
    writer.writerows(result_rows(lot))
    return response
