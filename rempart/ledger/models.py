"""The disclosure ledger: one append-only, hash-chained row for every answer that touched a beneficiary's data.

Chaining: rows are spread over a fixed number of chains (CHAIN_COUNT) so that concurrent writers do
not all wait on one head; each chain has a head row (its last sequence number and hash), locked
for the instant of an append. Each row's hash covers its content and the previous row's hash in
the same chain: changing, removing or reordering a row breaks every later link of its chain.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

CHAIN_COUNT = 16


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("the disclosure ledger is append-only")

    def delete(self):
        raise PermissionError("the disclosure ledger is append-only")


class Disclosure(models.Model):
    class Channel(models.TextChoices):
        PORTAL = "portal", _("Portail")
        API = "api", _("API")
        CONSOLE = "console", _("Console opérateur")
        CLI = "cli", _("Ligne de commande")

    class Outcome(models.TextChoices):
        COVERED = "covered", _("Couvert")
        NOT_COVERED = "not_covered", _("Non couvert")
        NO_MATCH = "no_match", _("Aucune correspondance")
        LISTED = "listed", _("Liste d'exposition")
        # The card matched but the request was refused as invalid (a quote with a code the beneficiary's age
        # excludes, …): the identity was confirmed, so the answer is recorded like any other.
        REJECTED = "rejected", _("Identifié, demande rejetée")
        # Refused before any lookup (a care domain outside the organisation's): nothing was read.
        REFUSED = "refused", _("Refusé sans consultation")

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    chain = models.PositiveSmallIntegerField()
    seq = models.BigIntegerField()
    prev_hash = models.BinaryField(max_length=32)
    row_hash = models.BinaryField(max_length=32)
    reference = models.CharField(max_length=24, db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=32)
    organisation_id = models.BigIntegerField(null=True)
    user_id = models.BigIntegerField(null=True)
    token_id = models.BigIntegerField(null=True)
    session_ref = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True)
    insurer_id = models.BigIntegerField(null=True)
    beneficiary_id = models.BigIntegerField(null=True)
    presented_hash = models.BinaryField(max_length=16, null=True)
    domain = models.CharField(max_length=4, blank=True)
    care_date = models.DateField(null=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    fields = models.JSONField(default=list)
    # Which fields the row's hash covers (rempart.ledger.chain.HASH_VERSIONS): 1 = rows written before the id was
    # hashed (the database default, so they keep verifying), 2 = every field, the id and this version included.
    hash_version = models.PositiveSmallIntegerField(db_default=1)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        verbose_name = _("divulgation")
        # No unique constraint: on PostgreSQL the table is partitioned by month (migration 0002,
        # docs/incident-response.md "Ledger storage"), where uniqueness must include the partition key.
        # (chain, seq) is unique by construction (the head lock) and checked by `rempart ledger verify`.
        indexes = [
            models.Index(fields=["chain", "seq"], name="disclosure_chain_seq"),
            models.Index(fields=["created_at"], name="disclosure_time"),
            models.Index(fields=["ip_address", "created_at"], name="disclosure_ip_time"),
            models.Index(fields=["organisation_id", "created_at"], name="disclosure_org_time"),
            models.Index(fields=["user_id", "created_at"], name="disclosure_user_time"),
            models.Index(fields=["token_id", "created_at"], name="disclosure_token_time"),
            models.Index(fields=["beneficiary_id", "created_at"], name="disclosure_beneficiary_time"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.outcome}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("the disclosure ledger is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("the disclosure ledger is append-only")


class ChainHead(models.Model):
    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    last_hash = models.BinaryField(max_length=32, default=bytes(32))

    def __str__(self) -> str:
        return f"chain {self.chain} at {self.seq}"


class ChainCheckpoint(models.Model):
    """The last row of a chain that a verification found intact, every check of its run passed: later
    verifications start there. ``mac`` (HMAC with the ledger key) stops a database writer from moving it."""

    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.BigIntegerField()
    row_hash = models.BinaryField(max_length=32)
    verified_at = models.DateTimeField()
    mac = models.BinaryField(max_length=32, default=b"")

    def __str__(self) -> str:
        return f"chain {self.chain} verified to {self.seq}"


class VerificationRun(models.Model):
    """One verification of the ledger and its verdict, kept so that a failure outlives the run that found it.

    A failed run moves no checkpoint; until a later *complete* run passes (every chain from its first row, and
    the anchors), the ledger counts as altered: an incident freeze says « REGISTRE ALTÉRÉ » (rempart.ledger.standing).
    """

    class Kind(models.TextChoices):
        FULL = "full", _("Complète")
        SINCE = "since", _("Depuis une date")
        INCREMENTAL = "incremental", _("Depuis les points de contrôle")
        FREEZE = "freeze", _("Gel d'un périmètre")
        ANCHOR = "anchor", _("Signature d'une ancre")

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    complete = models.BooleanField(default=False)  # every chain from genesis, and the local anchors
    # Also against anchors given from outside (the insurers' copies, an old heads file).
    published = models.BooleanField(default=False)
    ok = models.BooleanField()
    rows = models.BigIntegerField(default=0)
    problems = models.TextField(blank=True)
    checkpoints_saved = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["ok", "finished_at"], name="verification_ok_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.finished_at:%Y-%m-%d %H:%M} {'OK' if self.ok else 'FAILED'}"


class LedgerAnchor(models.Model):
    """A signed statement of every chain's head (rempart.ledger.anchors), as published to the insurers.

    The copy that proves anything is the one outside the database (the anchor directory, the insurers'
    downloads); this one serves the insurer portal and the API, and is cross-checked with the directory.
    """

    number = models.PositiveIntegerField(unique=True)
    anchored_at = models.DateTimeField()
    trigger = models.CharField(max_length=16)
    key_id = models.CharField(max_length=64)
    document = models.TextField()  # the signed JSON, exactly as written to the directory

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"anchor {self.number} {self.anchored_at:%Y-%m-%d %H:%M}"
