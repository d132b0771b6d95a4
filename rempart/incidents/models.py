"""Incidents: the 72-hour clock, frozen scopes of exposure, a timeline, and the notices generated for insurers."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

NOTIFICATION_DELAY = dt.timedelta(hours=72)  # GDPR art. 33(1): to the supervisory authority, from awareness


class IncidentStorage(FileSystemStorage):
    """Private storage under REMPART_INCIDENT_DIR (read when used): never served as static or media files,
    only through the permission-checked views."""

    @property
    def base_location(self):
        return settings.REMPART_INCIDENT_DIR

    @property
    def location(self):
        import os

        return os.path.abspath(self.base_location)

    @property
    def base_url(self):
        return None


def _documents_storage() -> FileSystemStorage:
    return IncidentStorage()


class Incident(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Ouvert")
        CONTAINED = "contained", _("Contenu")
        NOTIFIED = "notified", _("Notifié")
        CLOSED = "closed", _("Clos")

    class Source(models.TextChoices):
        MANUAL = "manual", _("Ouvert à la main")
        ALERT = "alert", _("Ouvert par une alerte")

    title = models.CharField(_("titre"), max_length=200)
    description = models.TextField(_("ce qui s'est passé"), blank=True)
    detected_at = models.DateTimeField(_("détecté le"))
    opened_at = models.DateTimeField(_("ouvert le"), default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.MANUAL)
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.OPEN)
    measures = models.TextField(_("mesures prises"), blank=True)
    contact = models.CharField(_("contact"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("incident")
        ordering = ["-detected_at"]

    def __str__(self) -> str:
        return f"INC-{self.pk:05d} {self.title}"

    @property
    def number(self) -> str:
        return f"INC-{self.pk:05d}"

    @property
    def deadline(self) -> dt.datetime:
        return self.detected_at + NOTIFICATION_DELAY

    def time_left(self, now: dt.datetime | None = None) -> dt.timedelta:
        return self.deadline - (now or timezone.now())


ACTION_LABELS = {
    "opened": _("Ouverture"),
    "scope": _("Périmètre figé"),
    "measure": _("Mesure"),
    "status": _("Statut"),
    "note": _("Note"),
    "notices": _("Notifications générées"),
    "published": _("Notifications publiées à l'assureur"),
}


class TimelineEntry(models.Model):
    """Who did what, when: appended by the workflow, never edited."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=40)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"

    @property
    def action_label(self) -> str:
        return str(ACTION_LABELS.get(self.action, self.action))


class Scope(models.Model):
    """A scope query frozen into an incident: its criteria, the ledger check made before, and its totals."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="scopes")
    label = models.CharField(_("libellé"), max_length=200)
    criteria = models.JSONField(default=dict)
    frozen_at = models.DateTimeField(default=timezone.now)
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ledger_ok = models.BooleanField(default=False)
    ledger_report = models.TextField(blank=True)
    ledger_rows = models.BigIntegerField(default=0)
    # What the check before the freeze started from and re-hashed (rempart.incidents.ledger_words): the
    # oldest chain checkpoint used and the verification that saved it (none: every chain from its first row),
    # and how many of the scope's own rows were re-hashed one by one (None: frozen before this was kept).
    ledger_checkpoint_at = models.DateTimeField(null=True, blank=True)
    ledger_checkpoint_run = models.BigIntegerField(null=True, blank=True)
    ledger_scope_rows = models.BigIntegerField(null=True, blank=True)
    matched_rows = models.BigIntegerField(default=0)
    people = models.BigIntegerField(default=0)
    disclosures = models.BigIntegerField(default=0)
    misses = models.BigIntegerField(default=0)
    per_insurer = models.JSONField(default=dict)  # {insurer_id: {"people": n, "disclosures": n}}
    digest = models.CharField(max_length=64, blank=True)  # SHA-256 of the frozen entries, in order

    class Meta:
        ordering = ["frozen_at", "pk"]

    def __str__(self) -> str:
        return self.label


class ScopeEntry(models.Model):
    """One beneficiary's exposure to one actor with one set of fields (grouped ledger rows)."""

    scope = models.ForeignKey(Scope, on_delete=models.CASCADE, related_name="entries")
    insurer_id = models.BigIntegerField()
    beneficiary_id = models.BigIntegerField()
    organisation_id = models.BigIntegerField(null=True)
    user_id = models.BigIntegerField(null=True)
    token_id = models.BigIntegerField(null=True)
    fields = models.JSONField(default=list)
    disclosures = models.IntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["scope", "insurer_id", "beneficiary_id"], name="scope_entry_order")]

    def __str__(self) -> str:
        return f"scope {self.scope_id} beneficiary {self.beneficiary_id}"


def _document_path(document: Document, filename: str) -> str:
    return f"{document.incident_id}/{filename}"


class Document(models.Model):
    """A generated notice or list, kept with the incident, with its SHA-256, re-downloadable."""

    class Kind(models.TextChoices):
        PROCESSOR_NOTICE = "processor_notice", _("Notification du sous-traitant (art. 33(2))")
        AFFECTED_LIST = "affected_list", _("Liste des personnes concernées (CSV)")
        CNIL_DRAFT = "cnil_draft", _("Projet de notification à la CNIL (art. 33(3))")
        LETTER = "letter", _("Modèle de lettre aux personnes (art. 34)")
        LETTER_MERGE = "letter_merge", _("Données de publipostage (CSV)")
        SCOPE_SUMMARY = "scope_summary", _("Synthèse du périmètre")

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="documents")
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, null=True, related_name="documents")
    insurer = models.ForeignKey("registry.Insurer", on_delete=models.PROTECT, null=True, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    file = models.FileField(storage=_documents_storage, upload_to=_document_path, max_length=300)
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Set by the operator's review step (rempart.incidents.publication): until then the insurer neither sees the
    # document nor is told of it.
    published_at = models.DateTimeField(_("publié le"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["insurer_id", "kind", "pk"]

    def __str__(self) -> str:
        return self.filename
