"""Insurer billing: what each insurer owes for what was paid on its behalf, plus the operator's fees.

Per insurer, a ``BillingContract`` (period, due days, collection by SEPA direct debit or by transfer) and
``FeeSchedule`` rows (versioned by effective date). A ``Statement`` bills, for one insurer and period, the
money-ledger transactions on the insurer's receivable that were paid to professionals in the period
(``StatementItem``: each transaction billed at most once), plus the fees, which it posts. Statements are
numbered and immutable once issued (the PDF and the detail file are kept with their SHA-256); a correction
is a new statement. ``Receipt`` records money received (camt.054, by hand, or a direct debit), settling the
receivable. ``CollectionFile`` is a pain.008 direct-debit file. Amounts are integer cents.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class BillingContract(models.Model):
    """The insurer's billing terms with the operator."""

    class Period(models.TextChoices):
        DAILY = "daily", _("Quotidienne")
        WEEKLY = "weekly", _("Hebdomadaire")
        MONTHLY = "monthly", _("Mensuelle")

    class Collection(models.TextChoices):
        DIRECT_DEBIT = "direct_debit", _("Prélèvement SEPA")
        TRANSFER = "transfer", _("Virement de l'assureur")

    class Scheme(models.TextChoices):
        """The SEPA direct-debit scheme of the mandate (pain.008 ``LclInstrm/Cd``): insurers are businesses and
        may sign a B2B mandate (no refund right, shorter return window); CORE is the default every bank takes."""

        CORE = "CORE", _("SEPA Core")
        B2B = "B2B", _("SEPA interentreprises (B2B)")

    insurer = models.OneToOneField(
        "registry.Insurer", on_delete=models.PROTECT, related_name="billing_contract"
    )
    period = models.CharField(_("périodicité"), max_length=10, choices=Period.choices, default=Period.MONTHLY)
    due_days = models.PositiveSmallIntegerField(_("échéance (jours)"), default=10)
    collection = models.CharField(
        _("recouvrement"), max_length=12, choices=Collection.choices, default=Collection.TRANSFER
    )
    # SEPA direct debit (pain.008): the insurer's mandate and account (IBAN encrypted like professionals').
    mandate_reference = models.CharField(_("référence unique de mandat"), max_length=35, blank=True)
    mandate_signed_on = models.DateField(_("date de signature du mandat"), null=True, blank=True)
    iban_cipher = models.BinaryField(null=True, editable=False)
    iban_masked = models.CharField(_("IBAN"), max_length=40, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    sepa_scheme = models.CharField(
        _("schéma du prélèvement"), max_length=4, choices=Scheme.choices, default=Scheme.CORE
    )
    overdue_alert_days = models.PositiveSmallIntegerField(_("alerte de retard (jours)"), default=30)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("contrat de facturation")

    def __str__(self) -> str:
        return f"{self.insurer_id} ({self.period})"


class FeeSchedule(models.Model):
    """The operator's fees for one insurer (or the default, insurer null) from ``effective_from`` on.

    The schedule in force on a day is the latest whose ``effective_from`` is on or before it; fees of a
    period that straddles a change are computed per day with the schedule of that day.
    """

    insurer = models.ForeignKey(
        "registry.Insurer", on_delete=models.PROTECT, null=True, blank=True, related_name="fee_schedules"
    )
    effective_from = models.DateField(_("en vigueur à partir du"))
    per_rights_check_cents = models.PositiveIntegerField(
        _("par vérification de droits (centimes)"), default=0
    )
    per_pec_cents = models.PositiveIntegerField(_("par prise en charge (centimes)"), default=0)
    per_invoice_cents = models.PositiveIntegerField(_("par facture payée (centimes)"), default=0)
    # A share of the amounts paid, in basis points (150 = 1.50 %), rounded half up to the cent per statement.
    paid_share_basis_points = models.PositiveIntegerField(
        _("part des montants payés (points de base)"), default=0
    )
    source = models.CharField(_("source"), max_length=200, blank=True)  # the contract clause it comes from
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("barème de frais")
        ordering = ["insurer_id", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["insurer", "effective_from"], name="billing_one_schedule_per_day"
            ),
            models.UniqueConstraint(
                fields=["effective_from"],
                condition=Q(insurer__isnull=True),
                name="billing_one_default_per_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.insurer_id or 'default'} from {self.effective_from}"


class Statement(models.Model):
    """What one insurer owes for one period: immutable once issued; a correction is a new statement."""

    class Kind(models.TextChoices):
        REGULAR = "regular", _("Relevé")
        CORRECTION = "correction", _("Relevé rectificatif")

    class Status(models.TextChoices):
        ISSUED = "issued", pgettext_lazy("billing statement", "Émis")  # not the payments' « émis » (sent)
        PAID = "paid", _("Réglé")
        PARTLY_PAID = "partly_paid", _("Réglé en partie")
        # A direct debit that settled it came back (camt.054 return): due again, nothing received on it.
        RETURNED = "returned", _("Prélèvement rejeté, dû à nouveau")

    number = models.CharField(_("numéro"), max_length=40, unique=True)
    insurer = models.ForeignKey("registry.Insurer", on_delete=models.PROTECT, related_name="statements")
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.REGULAR)
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections"
    )
    period_start = models.DateField(_("début de période"))
    period_end = models.DateField(_("fin de période"))
    status = models.CharField(_("statut"), max_length=12, choices=Status.choices, default=Status.ISSUED)
    paid_cents = models.BigIntegerField(_("payé pour son compte (centimes)"), default=0)  # claims, net
    reversals_cents = models.BigIntegerField(_("avoirs et annulations (centimes)"), default=0)  # ≤ 0
    fees_cents = models.BigIntegerField(_("frais de gestion (centimes)"), default=0)
    total_cents = models.BigIntegerField(_("total dû (centimes)"), default=0)
    due_date = models.DateField(_("échéance"))
    summary = models.JSONField(default=dict)  # by domain, by professional category, fee counts
    fee_transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    issued_at = models.DateTimeField(_("émis le"))
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    pdf_content = models.BinaryField(null=True, editable=False)
    pdf_sha256 = models.CharField(max_length=64, blank=True)  # the French PDF's
    # The same statement in English (same figures), rendered at issue too; blank for statements issued before.
    pdf_en_content = models.BinaryField(null=True, editable=False)
    pdf_en_sha256 = models.CharField(max_length=64, blank=True)
    detail_path = models.CharField(max_length=300, blank=True)  # the detail CSV, written once (can be large)
    detail_sha256 = models.CharField(max_length=64, blank=True)
    detail_rows = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("relevé assureur")
        ordering = ["-period_end", "insurer_id"]
        constraints = [
            # One regular statement per insurer and period: replaying a period bills nothing twice.
            models.UniqueConstraint(
                fields=["insurer", "period_start", "period_end"],
                condition=Q(kind="regular"),
                name="billing_one_regular_statement_per_period",
            ),
        ]
        indexes = [models.Index(fields=["insurer", "due_date"], name="billing_statement_due")]

    def __str__(self) -> str:
        return self.number


class StatementItem(models.Model):
    """A money-ledger transaction on the insurer's receivable billed by a statement (each at most once)."""

    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="items")
    transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )  # no FK check per row (millions a month); the unique index stays; transactions are append-only
    claim_id = models.BigIntegerField(null=True)
    amount_cents = models.BigIntegerField()  # debit-positive on the receivable: a reversal is negative

    class Meta:
        verbose_name = _("ligne de relevé assureur")
        indexes = [models.Index(fields=["statement", "claim_id"], name="billing_item_claim")]

    def __str__(self) -> str:
        return f"{self.statement_id}:{self.transaction_id}"


class Receipt(models.Model):
    """Money received from an insurer: it settles its receivable (debit bank, credit receivable)."""

    class Source(models.TextChoices):
        CAMT_054 = "camt.054", _("Avis de crédit (camt.054)")
        MANUAL = "manual", _("Saisie manuelle")
        DIRECT_DEBIT = "direct_debit", _("Prélèvement SEPA")

    insurer = models.ForeignKey("registry.Insurer", on_delete=models.PROTECT, related_name="receipts")
    statement = models.ForeignKey(
        Statement, on_delete=models.PROTECT, null=True, blank=True, related_name="receipts"
    )
    amount_cents = models.BigIntegerField(_("montant (centimes)"))
    received_on = models.DateField(_("reçu le"))
    source = models.CharField(max_length=12, choices=Source.choices)
    reference = models.CharField(
        _("référence"), max_length=140, blank=True
    )  # bank's end-to-end id or remittance
    bank_file_sha256 = models.CharField(max_length=64, blank=True)
    transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )  # the second person, for a manual receipt above the threshold
    # A direct debit's receipt: the collection file it came from (a return or a lump-sum credit finds it).
    collection_file = models.ForeignKey(
        "CollectionFile", on_delete=models.PROTECT, null=True, blank=True, related_name="receipts"
    )
    # A direct debit returned by the insurer's bank (camt.054 debit): the reversing posting, when and why.
    return_transaction = models.OneToOneField(
        "accounting.Transaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    returned_on = models.DateField(_("rejeté le"), null=True, blank=True)
    return_reason = models.CharField(_("motif du rejet"), max_length=4, blank=True)  # ISO 20022 code
    return_reference = models.CharField(max_length=140, blank=True)  # the bank's reference of the return
    return_file_sha256 = models.CharField(max_length=64, blank=True)  # the camt.054 that reported it
    # A manual receipt waiting for its second person, discarded instead (never posted).
    discarded_at = models.DateTimeField(_("écarté le"), null=True, blank=True)
    discarded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    discard_reason = models.CharField(_("motif de l'abandon"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("encaissement")
        ordering = ["-received_on", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="billing_receipt_positive"),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("recorded_by")),
                name="billing_receipt_four_eyes",
            ),
            # A discarded receipt never posts; a returned one was posted first.
            models.CheckConstraint(
                condition=Q(discarded_at__isnull=True) | Q(transaction__isnull=True),
                name="billing_receipt_discarded_unposted",
            ),
            models.CheckConstraint(
                condition=Q(return_transaction__isnull=True) | Q(transaction__isnull=False),
                name="billing_receipt_returned_posted",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.insurer_id} {self.amount_cents}"


class CollectionFile(models.Model):
    """A SEPA direct-debit file (pain.008) collecting issued statements; written once, digest kept."""

    reference = models.CharField(max_length=35, unique=True)  # the pain.008 MsgId
    collection_date = models.DateField(_("date d'échéance du prélèvement"))
    statements = models.ManyToManyField(Statement, related_name="collection_files")
    total_cents = models.BigIntegerField(default=0)
    file_content = models.BinaryField(editable=False)
    file_sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("fichier de prélèvements")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.reference
