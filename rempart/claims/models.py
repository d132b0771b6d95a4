"""Professionals' invoices (claims) to the complementary insurer, as received and as adjudicated.

A claim keeps what its adjudication needs to be reproduced (the lines as invoiced, the rule and data
versions, the decision) and nothing of the person's identity: the beneficiary is an internal id,
reached through the recording gate only. Money is integer cents.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Claim(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Acceptée")
        PARTIAL = "partially_accepted", _("Acceptée en partie")
        REJECTED = "rejected", _("Rejetée")
        PENDING_REVIEW = "pending_review", _("En examen")

    class Channel(models.TextChoices):
        API = "api", _("API")
        LOT = "lot", _("Lot")
        PORTAL = "portal", _("Portail")

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="claims")
    invoice_number = models.CharField(_("numéro de facture"), max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    lot = models.ForeignKey(
        "claims.ClaimLot", on_delete=models.PROTECT, null=True, blank=True, related_name="claims"
    )
    lot_line = models.PositiveIntegerField(null=True, blank=True)  # its line in the lot's file
    insurer = models.ForeignKey("registry.Insurer", on_delete=models.PROTECT, related_name="+")
    beneficiary_id = models.BigIntegerField()  # internal id: identity stays in the registry
    domain = models.CharField(max_length=4)
    invoice_date = models.DateField()
    care_date = models.DateField()
    prescriber_rpps = models.CharField(max_length=11, blank=True)
    pec = models.ForeignKey(
        "authorizations.Pec", on_delete=models.PROTECT, null=True, blank=True, related_name="claims"
    )
    pec_number = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    total_price_cents = models.BigIntegerField()
    total_amo_cents = models.BigIntegerField()
    claimed_cents = models.BigIntegerField()
    accepted_cents = models.BigIntegerField(default=0)
    decision = models.JSONField()  # per line: status, accepted amount, reason codes; review reasons
    rule_version = models.CharField(max_length=40)
    data_version = models.CharField(max_length=80)
    request_fingerprint = models.CharField(max_length=64)  # keyed: the same body replays, another is a 409
    ledger_reference = models.CharField(max_length=24)
    created_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.CharField(max_length=40, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("facture")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "invoice_number"], name="claim_invoice_per_organisation"
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "status", "created_at"], name="claim_org_status"),
            models.Index(fields=["status", "created_at"], name="claim_review_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.invoice_number} ({self.get_status_display()})"


class ClaimLine(models.Model):
    """One invoiced line, with its adjudication: duplicates are found here, insurers' detail files read it."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Acceptée")
        REDUCED = "reduced", _("Réduite")
        REJECTED = "rejected", _("Rejetée")
        PENDING = "pending", _("En examen")

    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="lines")
    number = models.PositiveSmallIntegerField()
    # Denormalised from the claim for the duplicate check (same organisation, beneficiary, code, care date, amount).
    organisation_id_copy = models.BigIntegerField()
    beneficiary_id = models.BigIntegerField()
    care_date = models.DateField()
    code_system = models.CharField(max_length=6)
    code = models.CharField(max_length=20)
    lpp_class = models.CharField(max_length=3, blank=True)
    side = models.CharField(max_length=5, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price_cents = models.BigIntegerField()
    base_cents = models.BigIntegerField()
    amo_paid_cents = models.BigIntegerField()
    amc_claimed_cents = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices)
    accepted_cents = models.BigIntegerField(default=0)
    reasons = models.JSONField(default=list)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["claim", "number"], name="claim_line_number")]
        indexes = [
            models.Index(
                fields=["organisation_id_copy", "beneficiary_id", "code", "care_date"],
                name="claim_line_duplicates",
            ),
            # What the insurer accepted for a beneficiary in a year (yearly ceilings), and insurers' detail files.
            models.Index(fields=["beneficiary_id", "care_date"], name="claim_line_beneficiary_year"),
        ]

    def __str__(self) -> str:
        return f"{self.claim_id}/{self.number}"


class ClaimLot(models.Model):
    """A lot of invoices from practice software: its acknowledgement (ARL) and the per-invoice results (RSP)."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Lot accepté")
        REFUSED = "refused", _("Lot refusé")

    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="claim_lots"
    )
    lot_number = models.CharField(_("numéro de lot"), max_length=40)
    file_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices)
    received_at = models.DateTimeField(default=timezone.now)
    invoice_count = models.PositiveIntegerField(default=0)
    total_claimed_cents = models.BigIntegerField(default=0)
    # accepted, partially_accepted, rejected, pending_review, invalid, no_match, duplicate, refused
    counts = models.JSONField(default=dict)
    refusal_code = models.CharField(max_length=40, blank=True)  # a lot refused as a whole (negative ARL)
    refusal_line = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("lot de factures")
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "lot_number"],
                condition=models.Q(status="accepted"),
                name="claim_lot_number_per_organisation",
            )
        ]

    def __str__(self) -> str:
        return self.lot_number


class LotInvoiceError(models.Model):
    """An invoice of a lot that became no claim: invalid (line, field, reason — never the value) or no match."""

    class Kind(models.TextChoices):
        INVALID = "invalid", _("Facture invalide")
        NO_MATCH = "no_match", _("Bénéficiaire non trouvé")
        DUPLICATE = "duplicate", _("Facture déjà reçue, différente")
        REPLAYED = "replayed", _("Facture déjà reçue, identique")

    lot = models.ForeignKey(ClaimLot, on_delete=models.CASCADE, related_name="invoice_errors")
    line = models.PositiveIntegerField()
    invoice_number = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    errors = models.JSONField(
        default=list
    )  # [{"line": invoice line or null, "field": …, "code": …, "message": …}]
    ledger_reference = models.CharField(max_length=24, blank=True)

    class Meta:
        ordering = ["lot", "line"]

    def __str__(self) -> str:
        return f"{self.lot_id}:{self.line}"


class CreditNote(models.Model):
    """An *avoir*: the professional gives back all or part of what an accepted claim earned (returned goods,
    an invoicing error). The claim's worth is its accepted amount less its credit notes; the difference is
    posted to the money ledger as its own transaction."""

    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(_("numéro d'avoir"), max_length=40)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("avoir")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="credit_note_per_organisation"),
            models.CheckConstraint(condition=models.Q(amount_cents__gt=0), name="credit_note_positive"),
        ]

    def __str__(self) -> str:
        return self.number
