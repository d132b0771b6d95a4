"""The ledger's routine work as jobs: anchoring the heads, verifying the chains, creating partitions.

All three were commands run from cron; as jobs the scheduler runs them once a period however many workers
there are (rempart.jobs.schedule), the operator console shows when they ran and how they ended, and a
failure is a failed job with its reason (and, for a verification, the failed ``VerificationRun`` that the
consoles already turn into a red banner).

Each is ``atomic=False``: what they record on failure (a refused anchor, a failed verification) must stay
recorded, so it cannot live in a transaction the failure rolls back. Each is idempotent by nature: signing
the same heads twice writes an equal anchor, a verification only reads and records its verdict, partitions
that exist are skipped.
"""

from __future__ import annotations

import json

from django.db import DatabaseError, connection, transaction
from django.utils.translation import gettext_lazy as _

from rempart.jobs.kinds import JobFailure, job_kind
from rempart.ledger import anchors, verification
from rempart.ledger.models import VerificationRun

VERIFY_MODES = ("incremental", "full")


@job_kind("ledger.anchor", label=_("Ancrage signé du registre"), max_attempts=3, atomic=False)
def anchor(ctx, trigger: str = "schedule") -> dict:
    """Sign every chain's head (rempart ledger anchor); a contradiction is refused and recorded, not retried."""
    try:
        signed, path = anchors.sign_heads(trigger[:30])
    except anchors.AnchorRefused as exc:
        raise JobFailure(
            "anchor_refused",
            _(
                "Ancrage refusé : les têtes de chaîne contredisent l'ancrage ou la vérification précédents "
                "(%(n)s problème(s)). Voir docs/incident-response.md, « Anchors »."
            )
            % {"n": len(exc.problems)},
        ) from None
    except OSError as exc:
        raise JobFailure(
            "anchor_unwritable",
            _("Impossible d'écrire l'ancrage dans son répertoire (%(error)s).")
            % {"error": exc.__class__.__name__},
        ) from None
    rows = sum(head["seq"] for head in json.loads(signed.document)["chains"])
    return {"anchor": signed.number, "rows": rows, "file": path.name}


@job_kind("ledger.verify", label=_("Vérification du registre"), max_attempts=2, atomic=False)
def verify(ctx, mode: str = "incremental") -> dict:
    """Recompute the hash chains (from the last checkpoints, or all of them); a break fails the job."""
    if mode not in VERIFY_MODES:
        raise JobFailure("bad_mode", _("Mode de vérification inconnu."))
    incremental = mode == "incremental"
    ctx.progress(0, None, str(_("chaînes en cours de vérification")))
    outcome = verification.run(
        VerificationRun.Kind.INCREMENTAL if incremental else VerificationRun.Kind.FULL,
        from_checkpoints=incremental,
    )
    report = outcome.report
    ctx.progress(report.rows, report.rows, "")
    if not outcome.ok:
        raise JobFailure(
            "ledger_broken",
            _(
                "Le registre ne se vérifie pas : %(n)s problème(s) (vérification n° %(run)s). Rien n'a été "
                "enregistré comme point de contrôle ; voir docs/incident-response.md."
            )
            % {"n": len(outcome.all_problems), "run": outcome.run.pk},
        )
    return {
        "verification": outcome.run.pk,
        "rows": report.rows,
        "chains": report.chains,
        "mode": mode,
        "anchors_checked": outcome.anchors_checked,
        "cleared_failure": outcome.cleared.pk if outcome.cleared else None,
    }


@job_kind("ledger.partitions", label=_("Partitions mensuelles du registre"), max_attempts=3, atomic=False)
def partitions(ctx, months_ahead: int = 12) -> dict:
    """Create the coming months' partitions (PostgreSQL) or, under the split roles, check the owner did.

    In the production layout (deploy/postgres/roles.sql) the application's role cannot create tables: the
    owner's ``rempart-partitions.timer`` creates them. The scheduled job then checks that the next two months
    exist, so that a timer that stopped running shows as a failed job long before rows fall into the default
    partition.
    """
    if connection.vendor != "postgresql":
        return {"created": 0, "skipped": 0, "note": "sqlite"}
    from rempart.ledger.partitions import ensure_partitions, missing_months

    months_ahead = max(1, min(int(months_ahead), 36))
    try:
        with transaction.atomic():  # all the months or none; a refusal leaves the connection usable
            created, skipped = ensure_partitions(months_ahead=months_ahead)
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "42501":  # insufficient_privilege
            raise
        missing = missing_months(2)
        if missing:
            raise JobFailure(
                "partitions_missing",
                _(
                    "Partitions à venir absentes (%(months)s) et ce rôle ne peut pas les créer : lancez "
                    "« rempart ledger partitions » avec le rôle propriétaire (docs/deployment.md)."
                )
                % {"months": ", ".join(missing)},
            ) from None
        return {"created": 0, "skipped": 0, "note": "owner_creates"}
    return {"created": len(created), "skipped": len(skipped), "skipped_names": list(skipped)[:20]}
