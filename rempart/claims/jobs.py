"""A large lot of invoices is adjudicated by a worker, not inside the API request that sent it.

The request keeps what must be immediate: the body is copied (bounded), checked as a whole (the ARL: a lot
wrong as a whole is still refused at once with its code), and a resend is still answered with the first
result. Only pass 2 — looking up every card and adjudicating every invoice, in one transaction — moves to
the job. The job reads the ledger as the token that sent the lot (the same actor the request had), so the
ledger and surveillance see a deferred lot exactly as an inline one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from rempart.accounts.models import Organisation
from rempart.claims import lots
from rempart.claims.models import ClaimLot
from rempart.gate import Actor
from rempart.jobs.kinds import JobFailure, get_kind, job_kind
from rempart.jobs.queue import enqueue
from rempart.ledger.models import Disclosure

KIND = "claims.import_lot"


def uploads_dir() -> Path:
    directory = Path(settings.REMPART_JOBS_DIR) / "uploads"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory


@dataclass
class Received:
    """What the API answers: a lot judged now (or resent), or a lot queued for a worker."""

    lot: ClaimLot | None
    replayed: bool
    lot_number: str
    invoices: int
    job_id: str | None = None


def receive_lot_via_api(actor: Actor, organisation: Organisation, stream) -> Received:
    """Inline up to REMPART_CLAIMS_INLINE_LOT_MAX invoices (the counter's small lots stay snappy), else queued."""
    name = f"lot-{secrets.token_hex(16)}.jsonl"
    path = uploads_dir() / name
    keep = False
    try:
        with path.open("w+b") as spooled:
            path.chmod(0o600)
            sha256 = lots.copy_bounded(stream, spooled)
            spooled.seek(0)
            header, previous = lots.check_lot(spooled, organisation, sha256)
            if previous is not None:
                return Received(previous, True, previous.lot_number, previous.invoice_count)
            if header.count <= settings.REMPART_CLAIMS_INLINE_LOT_MAX:
                spooled.seek(0)
                lot = lots.adjudicate_lot(actor, organisation, spooled, header, sha256)
                return Received(lot, False, lot.lot_number, lot.invoice_count)
        job = enqueue(
            KIND,
            {
                "upload": name,
                "organisation_id": organisation.pk,
                "token_id": actor.token_id,
                "ip": actor.ip,
                "session_ref": actor.session_ref,
                "sha256": sha256,
            },
            key=f"claims-lot:{organisation.pk}:{header.lot_number}:{sha256}",
            organisation_id=organisation.pk,
        )
        keep = True
        return Received(None, False, header.lot_number, header.count, job_id=str(job.pk))
    finally:
        if not keep:
            path.unlink(missing_ok=True)


class _Counter:
    """The adjudication's progress hook (``update(1)`` per invoice, as tqdm) fed to the job's progress."""

    def __init__(self, ctx, total: int) -> None:
        self.ctx, self.total, self.done = ctx, total, 0

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done % 100 == 0 or self.done == self.total:
            self.ctx.progress(self.done, self.total, "factures")


@job_kind(KIND, label=_("Jugement d'un lot de factures"), max_attempts=3, atomic=False)
def import_lot(
    ctx,
    upload: str,
    organisation_id: int,
    token_id: int | None,
    ip: str | None,
    session_ref: str,
    sha256: str,
) -> dict:
    if "/" in upload or "\\" in upload or not upload.startswith("lot-"):
        raise JobFailure("bad_upload", _("Fichier de lot introuvable."))
    path = uploads_dir() / upload
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None or not path.exists():
        raise JobFailure("bad_upload", _("Fichier de lot introuvable."))
    actor = Actor(
        channel=Disclosure.Channel.API,
        organisation_id=organisation_id,
        token_id=token_id,
        ip=ip,
        session_ref=session_ref,
    )
    final = True
    try:
        with path.open("rb") as stream:
            header, previous = lots.check_lot(stream, organisation, sha256)
            if previous is None:
                stream.seek(0)
                ctx.progress(0, header.count, "factures")
                lot = lots.adjudicate_lot(
                    actor, organisation, stream, header, sha256, progress=_Counter(ctx, header.count)
                )
            else:
                lot = previous  # a retry after the lot was committed: the first result stands
        return {"lot_number": lot.lot_number, "invoices": lot.invoice_count, "counts": lot.counts}
    except lots.LotRejected as exc:
        raise JobFailure(exc.code, exc.message) from None
    except Exception:
        kind = get_kind(KIND)
        final = ctx.attempt >= (kind.max_attempts if kind else 1)
        raise
    finally:
        if final:
            path.unlink(missing_ok=True)
