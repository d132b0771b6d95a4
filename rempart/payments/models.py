"""Payment runs: what Rempart pays each professional, in one approved SEPA credit transfer file per run.

A run is prepared at a cut-off (every professional payable balance at that date), approved by a second
operator staff member of the treasury (four eyes, fresh second factor), then its pain.001 file is written
once and never changed (its SHA-256 is kept and checked at each download). Each transfer (``Payment``)
lists what it settles (``PaymentItem``: one money-ledger transaction on the professional's payable account
each, paid at most once). Bank returns (pain.002 rejections, camt.054 settlements) are ``BankFileImport``s.
Amounts are integer cents. No IBAN in clear: the transfer keeps the IBAN it used encrypted, plus a mask.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PaymentRun(models.Model):
    class Status(models.TextChoices):
        PREPARED = "prepared", _("Préparé, en attente d'approbation")
        APPROVED = "approved", _("Approuvé, fichier émis")
        CANCELLED = "cancelled", _("Annulé")

    reference = models.CharField(_("référence"), max_length=35, unique=True)  # also the pain.001 MsgId
    cutoff = models.DateField(_("date d'arrêté"))
    execution_date = models.DateField(_("date d'exécution demandée"))
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.PREPARED)
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # null when prepared by the scheduler's command
    prepared_at = models.DateTimeField(_("préparé le"))
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(_("approuvé le"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    transfer_count = models.PositiveIntegerField(_("nombre de virements"), default=0)
    total_cents = models.BigIntegerField(_("montant total (centimes)"), default=0)
    # The bank file, written once at approval: content, name and digest never change afterwards.
    file_name = models.CharField(max_length=100, blank=True)
    file_content = models.BinaryField(null=True, editable=False)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_written_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("campagne de paiement")
        ordering = ["-prepared_at"]
        constraints = [
            # At most one run waiting for approval at a time: two open runs would pay the same balance twice.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="prepared"), name="payments_one_open_run"
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("prepared_by")),
                name="payments_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class Payment(models.Model):
    """One transfer to one professional organisation in one run, and its remittance statement (relevé)."""

    class Status(models.TextChoices):
        PREPARED = "prepared", _("Préparé")
        SENT = "sent", _("Émis")  # in an approved run's bank file
        HELD = (
            "held",
            _("Retenu"),
        )  # no usable IBAN (none yet, or the only one on hold/failed): not in the file
        SETTLED = "settled", _("Réglé")  # the bank confirmed the debit (camt.054)
        RETURNED = "returned", _("Rejeté par la banque")  # pain.002 rejection: the amount is payable again
        CANCELLED = "cancelled", _("Annulé")  # its run was cancelled before approval

    run = models.ForeignKey(PaymentRun, on_delete=models.PROTECT, related_name="payments")
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="payments"
    )
    reference = models.CharField(_("référence de paiement"), max_length=35, unique=True)  # SEPA EndToEndId
    amount_cents = models.BigIntegerField(_("montant (centimes)"))
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.PREPARED)
    creditor_name = models.CharField(max_length=70, blank=True)  # reduced to the SEPA character set
    iban_cipher = models.BinaryField(null=True, editable=False)  # the IBAN this transfer goes to, encrypted
    iban_masked = models.CharField(_("IBAN"), max_length=40, blank=True)  # "FR76 •••• 1234"
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    held_reason = models.CharField(max_length=30, blank=True)  # e.g. "no_iban", "iban_on_hold", "iban_failed"
    transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # the payment posting (payable → operator bank), written at approval
    return_transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # the reversal posted when the bank rejected the transfer
    return_reason = models.CharField(_("motif de rejet (ISO 20022)"), max_length=4, blank=True)
    returned_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("virement")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["run", "organisation"], name="payments_one_per_run_organisation"),
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="payments_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["organisation", "created_at"], name="payments_org_created")]

    def __str__(self) -> str:
        return self.reference


class PaymentItem(models.Model):
    """One line of a remittance statement: a money-ledger transaction this payment settles, or a rejection.

    A ledger transaction on a payable account is settled at most once (unique; null for lines that carry
    no money: a rejected invoice listed with its reasons). A returned transfer does not release its items:
    the return posts its own transaction, which the next run settles like any other.
    """

    class Kind(models.TextChoices):
        CLAIM = "claim", _("Facture")
        CREDIT_NOTE = "credit_note", _("Avoir")
        REVIEW = "review", _("Révision")
        RETURN = "return", _("Virement rejeté, repris")
        REJECTED = "rejected", _("Facture rejetée")

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # No database foreign keys on these two (Django still applies PROTECT): a run inserts a million lines, and
    # checking each against its transaction and claim was two thirds of the time (docs/payments.md,
    # "Performance"). Transactions are append-only (the ledger refuses DELETE) and claims are never deleted;
    # the unique index on ``transaction`` stays: it is what makes a transaction paid at most once.
    transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="settled_by",
        db_constraint=False,
    )  # fmt: skip
    claim = models.ForeignKey(
        "claims.Claim", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        db_constraint=False, db_index=False,  # indexed by Meta's payments_item_claim
    )  # fmt: skip
    amount_cents = (
        models.BigIntegerField()
    )  # what this line adds to the transfer (negative for a credit note)

    class Meta:
        verbose_name = _("ligne de relevé")
        indexes = [models.Index(fields=["claim"], name="payments_item_claim")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_cents:+d}"


class BankFileImport(models.Model):
    """A bank status file imported once (its SHA-256 is unique): pain.002 status report or camt.054."""

    class Kind(models.TextChoices):
        PAIN_002 = "pain.002", _("Compte rendu de virements (pain.002)")
        CAMT_054 = "camt.054", _("Avis de débit (camt.054)")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    sha256 = models.CharField(max_length=64, unique=True)
    message_id = models.CharField(max_length=35)
    run = models.ForeignKey(PaymentRun, on_delete=models.PROTECT, related_name="bank_files")
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)
    summary = models.JSONField(default=dict)  # counts: rejected, settled, amounts

    class Meta:
        verbose_name = _("fichier bancaire importé")
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.message_id}"


class FileDownload(models.Model):
    """Each download of a run's bank file: who, when, and the digest that was served."""

    run = models.ForeignKey(PaymentRun, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    sha256 = models.CharField(max_length=64)
    downloaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.run_id} {self.downloaded_at:%Y-%m-%d %H:%M}"
