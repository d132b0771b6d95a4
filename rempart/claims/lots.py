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

from rempart.accounts.models import Organisation
from rempart.claims import lot_format, rules
from rempart.claims.intake import InvoiceError, from_dict
from rempart.claims.models import Claim, ClaimLot, LotInvoiceError
from rempart.claims.reasons import label as reason_label
from rempart.claims.service import ClaimConflict, submit_claim
from rempart.gate import Actor, RefusedDomain
from rempart.lib import csv_safe
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
        digest = hashlib.sha256()
        size = 0
        while chunk := stream.read(COPY_CHUNK):
            size += len(chunk)
            if size > settings.REMPART_API_MAX_LOT_BYTES:
                raise LotRejected(
                    "too_large", f"lot trop volumineux (au plus {settings.REMPART_API_MAX_LOT_BYTES} octets)"
                )
            digest.update(chunk)
            spooled.write(chunk)
        sha256 = digest.hexdigest()
        spooled.seek(0)
        header = _check_whole(spooled, organisation)
        previous = ClaimLot.objects.filter(
            organisation=organisation, lot_number=header.lot_number, status=ClaimLot.Status.ACCEPTED
        ).first()
        if previous is not None:
            if previous.file_sha256 != sha256:
                raise _refuse(
                    organisation,
                    header.lot_number,
                    sha256,
                    "lot_number_reused",
                    "ce numéro de lot a déjà servi pour un autre fichier",
                )
            return previous, True
        spooled.seek(0)
        return _adjudicate_all(actor, organisation, spooled, header, sha256, progress=progress), False


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


def _adjudicate_all(actor, organisation, stream, header, sha256: str, *, progress=None) -> ClaimLot:
    today = timezone.localdate()
    counts: Counter[str] = Counter()
    with transaction.atomic():
        lot = ClaimLot.objects.create(
            organisation=organisation,
            lot_number=header.lot_number,
            file_sha256=sha256,
            status=ClaimLot.Status.ACCEPTED,
            invoice_count=header.count,
            total_claimed_cents=header.total_amc_cents,
        )
        errors: list[LotInvoiceError] = []
        for line, item in _reader(stream, organisation).invoices():
            kind, problems, number, reference = _one(actor, lot, line, item, today)
            counts[kind] += 1
            if problems is not None:
                errors.append(
                    LotInvoiceError(
                        lot=lot,
                        line=line,
                        invoice_number=number[:40],
                        kind=problems[0],
                        errors=problems[1],
                        ledger_reference=reference,
                    )
                )
            if len(errors) >= 1000:
                LotInvoiceError.objects.bulk_create(errors)
                errors.clear()
            if progress is not None:
                progress.update(1)
        LotInvoiceError.objects.bulk_create(errors)
        lot.counts = dict(counts)
        lot.save(update_fields=["counts"])
    return lot


def _one(actor, lot, line: int, item, today):
    """One invoice of the lot: (result kind, (error kind, errors) or None, invoice number, ledger reference)."""
    if isinstance(item, lot_format.LotLineError):
        return "invalid", (LotInvoiceError.Kind.INVALID, item.as_dicts()), item.invoice_number or "", ""
    number = str(item.get("invoice_number", ""))[:40] if isinstance(item, dict) else ""
    try:
        card, invoice = from_dict(item, today=today)
        outcome = submit_claim(
            actor, card, invoice, channel=Claim.Channel.LOT, lot=lot, lot_line=line, today=today
        )
    except InvoiceError as exc:
        return "invalid", (LotInvoiceError.Kind.INVALID, exc.errors), number, ""
    except rules.ClaimInputError as exc:
        return "invalid", (LotInvoiceError.Kind.INVALID, [e.as_dict() for e in exc.errors]), number, ""
    except ClaimConflict as exc:
        message = {"line": None, "field": "invoice_number", "message": str(exc)}
        return "duplicate", (LotInvoiceError.Kind.DUPLICATE, [message]), number, ""
    except RefusedDomain as exc:
        message = {
            "line": None,
            "field": "domain",
            "message": f"domaine {exc.domain} non enregistré pour votre organisation",
        }
        return "invalid", (LotInvoiceError.Kind.INVALID, [message]), number, exc.reference
    except CheckRefused as exc:
        message = {"line": None, "field": "", "message": exc.message, "code": exc.code}
        return "refused", (LotInvoiceError.Kind.INVALID, [message]), number, ""
    if outcome.claim is None:
        return "no_match", (LotInvoiceError.Kind.NO_MATCH, []), number, outcome.reference
    if outcome.replayed:  # judged before (another lot, or the API): its result is listed here too
        message = {
            "line": None,
            "field": "invoice_number",
            "code": "already_received",
            "message": "facture déjà reçue, identique : son jugement est inchangé",
        }
        return "replayed", (LotInvoiceError.Kind.REPLAYED, [message]), number, outcome.reference
    return outcome.claim.status, None, number, outcome.reference


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
