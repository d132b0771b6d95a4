"""Notices for the insurers of a frozen scope: French documents people open, stored with the incident.

For each insurer (controller) of a scope, Rempart (processor) produces:

1. its notification to the insurer (GDPR art. 33(2)), PDF;
2. the list of the people concerned (CSV, keyed by adherent number and line in the contract);
3. a pre-filled draft of the insurer's own notification to the CNIL (art. 33(3)), PDF;
4. a template of the letter to the people concerned (art. 34), PDF with «mail-merge» fields;
5. the mail-merge data for that letter (CSV).

The people's keys come only from ``rempart.incidents.exposure.exposure_keys``, which records the read.
The CSVs are streamed to files (bounded memory at any size); the PDFs carry numbers, never one page
per person. Every document is stored with its SHA-256; running again adds new documents.
This module streams the lists and stores the documents; the PDFs' texts are in ``notice_texts.py``,
the facts and words they state in ``notice_facts.py``.

Do not call this inside a database transaction: reading the keys appends to the ledger, whose chain
head stays locked until the enclosing transaction ends.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

from rempart.incidents import exposure, workflow
from rempart.incidents.documents import store_document
from rempart.incidents.models import Document, Incident, Scope
from rempart.incidents.notice_facts import Facts, Listed, field_labels, local_time, period_words
from rempart.incidents.notice_texts import MERGE_COLUMNS, cnil_draft_pdf, letter_pdf, processor_notice_pdf
from rempart.ledger.actor import Actor
from rempart.lib import csv_safe
from rempart.lib.progress import progress_bar
from rempart.registry.models import Insurer

AFFECTED_COLUMNS = (
    "numero_adherent",
    "rang",
    "donnees_exposees",
    "nombre_divulgations",
    "premiere_divulgation",
    "derniere_divulgation",
)
PROGRESS_STEP = 1000


class NoticeError(ValueError):
    """Notices cannot be generated for this scope (message safe to show)."""


# --- Streaming the people of one insurer into the two CSVs.


def _csv_time(local: dt.datetime) -> str:
    """'2026-11-25 14:03:12': local time (settings.TIME_ZONE, as the notice says), which spreadsheets read."""
    return local.isoformat(" ", "seconds")[:19]


def _csv_writer(handle):
    return csv_safe.writer(handle, lineterminator="\r\n")  # cells neutralised (no spreadsheet formulas)


def write_lists(actor: Actor, scope: Scope, insurer: Insurer, affected: Path, merge: Path, bar) -> Listed:
    """Write the affected list and the letter merge data of one insurer (UTF-8 with BOM, « ; »)."""
    listed = Listed()
    label = f"{scope.incident.number}/{scope.pk}/notices"
    zone = timezone.get_current_timezone()  # once: timezone.localtime() looks it up at every call
    pending = 0
    with (
        open(affected, "w", encoding="utf-8-sig", newline="") as affected_file,
        open(merge, "w", encoding="utf-8-sig", newline="") as merge_file,
    ):
        affected_rows, merge_rows = _csv_writer(affected_file), _csv_writer(merge_file)
        affected_rows.writerow(AFFECTED_COLUMNS)
        merge_rows.writerow(MERGE_COLUMNS)
        people = exposure.exposure_keys(actor, scope.pk, insurer_id=insurer.pk, label=label)
        for person, adherent, member in people:
            fields = frozenset(person.fields)
            short, plain = field_labels(fields)
            first, last = person.first_at.astimezone(zone), person.last_at.astimezone(zone)
            affected_rows.writerow(
                [adherent, member, short, person.disclosures, _csv_time(first), _csv_time(last)]
            )
            merge_rows.writerow([adherent, member, plain, period_words(first.date(), last.date())])
            listed.people += 1
            listed.disclosures += person.disclosures
            listed.field_sets[fields] += 1
            listed.actors.update(person.actors)
            if listed.first_at is None or person.first_at < listed.first_at:
                listed.first_at = person.first_at
            if listed.last_at is None or person.last_at > listed.last_at:
                listed.last_at = person.last_at
            pending += 1
            if pending == PROGRESS_STEP:
                bar.update(pending)
                pending = 0
    bar.update(pending)
    return listed


# --- Putting it together.


def _work_dir() -> Path:
    """Temporary files hold adherent numbers: keep them in the private incident directory."""
    path = Path(settings.REMPART_INCIDENT_DIR) / ".work"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _name(incident: Incident, scope: Scope, insurer: Insurer, what: str, stamp: str, ext: str) -> str:
    return f"{incident.number}-P{scope.pk}_{what}_{insurer.amc_number}_{stamp}.{ext}"


class _TeeBar:
    """The terminal's progress bar, also told to ``on_progress(done, total)`` (a job's progress)."""

    def __init__(self, bar, on_progress) -> None:
        self.bar, self.on_progress = bar, on_progress

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, n: int) -> None:
        self.bar.update(n)
        if self.on_progress is not None:
            self.on_progress(self.bar.n, self.bar.total)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.bar.set_postfix_str(text, refresh=refresh)


def generate_notices(
    incident: Incident,
    scope: Scope,
    *,
    by=None,
    actor: Actor,
    show_progress: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> list[Document]:
    """Write and store the five documents of every insurer of the scope; return them (all or none stored).

    The documents are French legal texts whatever the language of the analyst's console."""
    with translation.override("fr"):
        return _generate_notices(
            incident, scope, by=by, actor=actor, show_progress=show_progress, on_progress=on_progress
        )


def _generate_notices(
    incident: Incident, scope: Scope, *, by=None, actor: Actor, show_progress: bool, on_progress
) -> list[Document]:
    if scope.incident_id != incident.pk:
        raise NoticeError("ce périmètre appartient à un autre incident")
    scope.incident = incident
    totals = {int(key): value for key, value in (scope.per_insurer or {}).items()}
    insurers = Insurer.objects.in_bulk(list(totals))
    missing = sorted(set(totals) - set(insurers))
    if missing:
        raise NoticeError(f"organisme(s) introuvable(s) dans le registre : {', '.join(map(str, missing))}")
    generated_at = timezone.now()
    stamp = f"{local_time(generated_at):%Y%m%d-%H%M%S}"
    order = sorted(totals, key=lambda pk: (insurers[pk].name, pk))
    documents: list[Document] = []
    with tempfile.TemporaryDirectory(dir=_work_dir(), prefix="notices-") as work:
        # 1. Stream every insurer's people to files (reads recorded by the gate), before any write here.
        lists = {}
        bar = _TeeBar(
            progress_bar(
                sum(int(totals[pk]["people"]) for pk in order),
                "notices",
                unit="personne",
                enabled=show_progress,
            ),
            on_progress,
        )
        with bar:
            for pk in order:
                insurer = insurers[pk]
                affected = Path(work) / _name(incident, scope, insurer, "liste-personnes", stamp, "csv")
                merge = Path(work) / _name(incident, scope, insurer, "publipostage", stamp, "csv")
                bar.set_postfix_str(insurer.name[:30], refresh=False)
                lists[pk] = (affected, merge, write_lists(actor, scope, insurer, affected, merge, bar))
        # 2. Store everything in one go: all the documents, or none.
        try:
            with transaction.atomic():
                for pk in order:
                    documents += _store_insurer(
                        incident, scope, insurers[pk], totals[pk], lists[pk], generated_at, stamp, by
                    )
                _log(incident, scope, insurers, totals, order, documents, by)
        except BaseException:
            for document in documents:
                document.file.storage.delete(document.file.name)
            raise
    return documents


def _store_insurer(incident, scope, insurer, totals, lists, generated_at, stamp, by) -> list[Document]:
    affected, merge, listed = lists
    facts = Facts(
        incident=incident,
        scope=scope,
        insurer=insurer,
        people=int(totals["people"]),
        disclosures=int(totals["disclosures"]),
        listed=listed,
        generated_at=generated_at,
    )
    common = {"insurer": insurer, "scope": scope, "by": by}
    stored = []

    def keep(kind, what, ext, content_type, content, label):
        document = store_document(
            incident,
            kind=kind,
            filename=_name(incident, scope, insurer, what, stamp, ext),
            content_type=content_type,
            path_or_bytes=content,
            **common,
        )
        stored.append(document)
        facts.attachments.append((label, document.filename, document.sha256))
        return document

    csv_type = "text/csv; charset=utf-8"
    keep(
        Document.Kind.AFFECTED_LIST,
        "liste-personnes",
        "csv",
        csv_type,
        affected,
        "Liste des personnes concernées",
    )
    merge_doc = keep(
        Document.Kind.LETTER_MERGE, "publipostage", "csv", csv_type, merge, "Données de publipostage"
    )
    letter = keep(
        Document.Kind.LETTER,
        "modele-lettre-art34",
        "pdf",
        "application/pdf",
        letter_pdf(facts, merge_doc.filename),
        "Modèle de lettre aux personnes (art. 34)",
    )
    keep(
        Document.Kind.CNIL_DRAFT,
        "projet-notification-cnil",
        "pdf",
        "application/pdf",
        cnil_draft_pdf(facts, letter.filename),
        "Projet de notification à la CNIL (art. 33(3))",
    )
    notice = store_document(
        incident,
        kind=Document.Kind.PROCESSOR_NOTICE,
        filename=_name(incident, scope, insurer, "notification-art33-2", stamp, "pdf"),
        content_type="application/pdf",
        path_or_bytes=processor_notice_pdf(facts),
        **common,
    )
    return [notice, *stored]


def _log(incident, scope, insurers, totals, order, documents, by) -> None:
    if not order:
        workflow.log(
            incident, "notices", f"« {scope.label} » : aucune personne concernée, aucun document", by
        )
        return
    per_insurer = "; ".join(
        f"{insurers[pk].name} : {totals[pk]['people']} personne(s), {totals[pk]['disclosures']} divulgation(s)"
        for pk in order
    )
    verdict = "" if scope.ledger_ok else " ; REGISTRE ALTÉRÉ signalé dans les notifications"
    workflow.log(
        incident,
        "notices",
        f"« {scope.label} » : {len(documents)} document(s) pour {len(order)} organisme(s) — {per_insurer}{verdict}",
        by,
    )
