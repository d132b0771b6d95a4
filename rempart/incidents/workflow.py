"""The incident workflow: open, attach frozen scopes (after checking the ledger), contain, notify, close.

Every step appends a timeline entry (who, what, when). No HTTP here: the console views and the
commands call these functions.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from rempart.incidents import exposure
from rempart.incidents.models import Incident, Scope, ScopeEntry, TimelineEntry
from rempart.incidents.scope import (
    ScopeCriteria,
    archived,
    count_rows,
    digest_entries,
    insert_entries,
    ledger_rows,
    people_of,
    summarise,
)
from rempart.ledger import anchors, chain, verification
from rempart.ledger.actor import Actor
from rempart.ledger.models import VerificationRun

logger = logging.getLogger(__name__)

# Allowed moves; closing is possible from any state (e.g. a false alarm), reopening only from closed.
TRANSITIONS = {
    Incident.Status.OPEN: {Incident.Status.CONTAINED, Incident.Status.NOTIFIED, Incident.Status.CLOSED},
    Incident.Status.CONTAINED: {Incident.Status.NOTIFIED, Incident.Status.CLOSED, Incident.Status.OPEN},
    Incident.Status.NOTIFIED: {Incident.Status.CLOSED, Incident.Status.CONTAINED},
    Incident.Status.CLOSED: {Incident.Status.OPEN},
}


class WorkflowError(ValueError):
    """A step cannot be taken (message safe to show)."""


def log(incident: Incident, action: str, detail: str = "", actor=None) -> TimelineEntry:
    return TimelineEntry.objects.create(incident=incident, action=action, detail=detail, actor=actor)


def open_incident(
    *,
    title: str,
    detected_at: dt.datetime,
    description: str = "",
    by=None,
    source: str = Incident.Source.MANUAL,
    contact: str = "",
) -> Incident:
    title = title.strip()
    if not title:
        raise WorkflowError("donnez un titre à l'incident")
    if detected_at > timezone.now() + dt.timedelta(minutes=5):
        raise WorkflowError("la date de détection ne peut pas être dans le futur")
    with transaction.atomic():
        incident = Incident.objects.create(
            title=title[:200],
            description=description,
            detected_at=detected_at,
            opened_by=by,
            source=source,
            contact=contact,
        )
        log(incident, "opened", f"détecté le {timezone.localtime(detected_at):%d/%m/%Y %H:%M}", by)
    return incident


def set_status(incident: Incident, status: str, *, by=None, note: str = "") -> None:
    if status == incident.status:
        raise WorkflowError(f"l'incident est déjà « {incident.get_status_display()} »")
    if status not in TRANSITIONS.get(incident.status, set()):
        target = Incident.Status(status).label if status in Incident.Status.values else status
        raise WorkflowError(f"passage de « {incident.get_status_display()} » à « {target} » impossible")
    with transaction.atomic():
        previous = incident.get_status_display()
        incident.status = status
        incident.save(update_fields=["status"])
        log(incident, "status", f"{previous} → {incident.get_status_display()}. {note}".strip(), by)


def add_measure(incident: Incident, text: str, *, by=None) -> None:
    text = text.strip()
    if not text:
        raise WorkflowError("décrivez la mesure prise")
    with transaction.atomic():
        stamp = timezone.localtime().strftime("%d/%m/%Y %H:%M")
        incident.measures = f"{incident.measures}\n{stamp} — {text}".strip()
        incident.save(update_fields=["measures"])
        log(incident, "measure", text, by)


def add_note(incident: Incident, text: str, *, by=None) -> None:
    if not text.strip():
        raise WorkflowError("la note est vide")
    log(incident, "note", text.strip(), by)


@dataclass
class LedgerCheck:
    ok: bool
    rows: int
    seconds: float
    report: str
    checkpoint_at: dt.datetime | None = None  # the oldest chain checkpoint the check started from
    checkpoint_run: int | None = None  # the verification that saved it (its number)
    scope_rows: int = 0  # the scope's own rows, re-hashed one by one


def check_ledger(criteria: ScopeCriteria) -> LedgerCheck:
    """Before a scope is frozen: the chains from their last verified checkpoint (all of them, first time), the
    newest anchor, every row the scope reads re-hashed on its own, and any earlier failure not yet cleared by a
    complete verification (rempart.ledger.verification: a failed run moves no checkpoint)."""
    started = time.monotonic()
    checkpoint_run = _checkpoint_run()
    outcome = verification.run(
        VerificationRun.Kind.FREEZE,
        from_checkpoints=True,
        extra=lambda: chain.check_rows(ledger_rows(criteria)) + _check_archived(criteria),
    )
    result = outcome.report
    scope_rows = count_rows(criteria)
    if not outcome.ok:
        report = "\n".join(outcome.all_problems)
    elif result.checkpoint_at:
        report = (
            f"{result.rows} ligne(s) nouvelles vérifiées depuis la vérification complète du "
            f"{timezone.localtime(result.checkpoint_at):%d/%m/%Y %H:%M} ; lignes du périmètre recalculées : intègre"
        )
    else:
        report = f"{result.rows} ligne(s) vérifiée(s) dans {result.chains} chaînes : intègre"
    return LedgerCheck(
        outcome.ok, result.rows, time.monotonic() - started, report,
        checkpoint_at=result.checkpoint_at,
        checkpoint_run=checkpoint_run.pk if checkpoint_run and result.checkpoint_at else None,
        scope_rows=scope_rows,
    )  # fmt: skip


def _check_archived(criteria: ScopeCriteria) -> list[str]:
    """The archived months the scope reads, re-read in full (SHA-256 and contents against their signed manifest)."""
    from rempart.ledger import archive_manifest

    archive = archived(criteria)
    if archive is None:
        return []
    problems = []
    for manifest in archive.manifests:
        problems += archive_manifest.check_files(manifest, full=True) or archive.content_problems(manifest)
    return problems


def _checkpoint_run() -> VerificationRun | None:
    """The verification that saved the oldest checkpoint a check from checkpoints starts at (read before the
    check, which may save newer ones): the checkpoint's reference in the words of the freeze."""
    from rempart.ledger.models import ChainCheckpoint

    oldest = ChainCheckpoint.objects.order_by("verified_at").values_list("verified_at", flat=True).first()
    if oldest is None:
        return None
    return (
        VerificationRun.objects.filter(checkpoints_saved=True, finished_at__gte=oldest)
        .order_by("finished_at", "pk")
        .first()
    )


def _anchor(check: LedgerCheck) -> str:
    """Sign the chains' heads once the ledger is found intact, before the scope is frozen from it, so that insurers
    can later prove no row behind the scope was cut off; never over an altered ledger. Returns the timeline's words."""
    if not check.ok:
        return ""
    try:
        anchor, _path = anchors.sign_heads("scope_freeze")
    except anchors.AnchorRefused as exc:
        return " ; ancre non signée : " + "; ".join(exc.problems[:3])
    except OSError as exc:
        logger.error("ledger anchor not written at a freeze: %s", exc)
        return " ; ancre non signée : répertoire des ancres inaccessible"
    return f" ; ancre n° {anchor.number} signée"


def _frozen_rows(scope: Scope):
    return (
        ScopeEntry.objects.filter(scope=scope)
        .order_by("insurer_id", "beneficiary_id", "organisation_id", "user_id", "token_id", "first_at")
        .values_list(
            "insurer_id",
            "beneficiary_id",
            "organisation_id",
            "user_id",
            "token_id",
            "fields",
            "disclosures",
            "first_at",
            "last_at",
        )  # fmt: skip
        .iterator(chunk_size=5000)
    )


def attach_scope(
    incident: Incident, criteria: ScopeCriteria, *, label: str, by=None, actor: Actor | None = None
) -> Scope:
    """Verify the ledger over the window, then freeze the scope's entries and totals into the incident."""
    check = check_ledger(criteria)
    anchored = _anchor(check)
    with transaction.atomic():
        scope = Scope.objects.create(
            incident=incident,
            label=label.strip()[:200] or "périmètre",
            criteria=criteria.to_json(),
            frozen_by=by,
            ledger_ok=check.ok,
            ledger_report=check.report,
            ledger_rows=check.rows,
            ledger_checkpoint_at=check.checkpoint_at,
            ledger_checkpoint_run=check.checkpoint_run,
            ledger_scope_rows=check.scope_rows,
        )
        insert_entries(criteria, scope.pk)
        totals = (
            ScopeEntry.objects.filter(scope=scope)
            .values("insurer_id")
            .annotate(people=Count("beneficiary_id", distinct=True), disclosures=Sum("disclosures"))
        )
        per_insurer = {
            str(row["insurer_id"]): {"people": row["people"], "disclosures": row["disclosures"]}
            for row in totals
        }
        scope.per_insurer = per_insurer
        scope.people = sum(v["people"] for v in per_insurer.values())
        scope.disclosures = sum(v["disclosures"] for v in per_insurer.values())
        scope.misses = count_rows(criteria, misses=True)
        scope.matched_rows = scope.disclosures + scope.misses
        scope.digest = digest_entries(_frozen_rows(scope))
        scope.save()
        verdict = "registre intègre" + anchored if check.ok else "REGISTRE ALTÉRÉ : " + check.report
        log(
            incident,
            "scope",
            f"« {scope.label} » : {scope.people} personne(s), {scope.disclosures} divulgation(s), "
            f"{scope.misses} tentative(s) sans correspondance ; {verdict}",
            by,
        )
    if actor is not None:
        exposure.record_scope_run(
            actor, label=f"{incident.number}/{scope.pk}", people=scope.people, listed=False
        )
    return scope


@dataclass
class ScopeDifference:
    people_now: int
    people_frozen: int
    new_people: int
    disclosures_now: int
    disclosures_frozen: int

    @property
    def changed(self) -> bool:
        return self.new_people > 0 or self.disclosures_now != self.disclosures_frozen


def rerun(scope: Scope) -> ScopeDifference:
    """Run the frozen criteria again on today's ledger and say what differs (the frozen scope stays as it was)."""
    criteria = ScopeCriteria.from_json(scope.criteria)
    live = summarise(criteria)
    frozen_people = ScopeEntry.objects.filter(scope=scope).values("beneficiary_id")
    if archive := archived(criteria):  # archived months: the people of both, minus those frozen
        frozen = set(frozen_people.values_list("beneficiary_id", flat=True))
        new_people = len({b for _i, b in people_of(criteria, archive)} - frozen)
    else:
        new_people = (
            ledger_rows(criteria)
            .filter(beneficiary_id__isnull=False)
            .exclude(beneficiary_id__in=frozen_people)
            .values("beneficiary_id")
            .distinct()
            .count()
        )
    return ScopeDifference(live.people, scope.people, new_people, live.disclosures, scope.disclosures)
