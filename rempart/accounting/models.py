"""The money ledger: accounts, transactions and their postings, in integer cents.

Sign convention: a posting's ``amount_cents`` is **positive for a debit, negative for a credit**, so each
transaction's legs sum to zero and an account's balance is the plain sum of its postings (debit-positive).
Nothing stores a balance. Postings and transactions are append-only; the database refuses anything else
(triggers of migration 0001, docs/accounting.md).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class AccountKind(models.TextChoices):
    ASSET = "asset", _("Compte d'actif")
    LIABILITY = "liability", _("Compte de passif")
    REVENUE = "revenue", _("Compte de produits")
    EXPENSE = "expense", _("Compte de charges")
    EQUITY = "equity", _("Capitaux propres")


# +1: the account's balance normally sits on the debit side (assets, expenses); -1: on the credit side.
NORMAL_SIGN = {
    AccountKind.ASSET: 1,
    AccountKind.EXPENSE: 1,
    AccountKind.LIABILITY: -1,
    AccountKind.REVENUE: -1,
    AccountKind.EQUITY: -1,
}


class Purpose(models.TextChoices):
    """What an account is for; each purpose has one kind and one kind of owner (checked by the database)."""

    INSURER_RECEIVABLE = "insurer_receivable", _("Créance sur l'assureur")
    PROFESSIONAL_PAYABLE = "professional_payable", _("Dette envers le professionnel")
    OPERATOR_BANK = "operator_bank", _("Banque de l'opérateur")
    OPERATOR_REVENUE = "operator_revenue", _("Produits de l'opérateur")
    PAYMENTS_IN_TRANSIT = "payments_in_transit", _("Virements en cours")


# purpose → (kind, owner: "insurer" | "organisation" | "operator", code prefix in the French chart of accounts)
PURPOSES = {
    Purpose.INSURER_RECEIVABLE: (AccountKind.ASSET, "insurer", "411"),
    Purpose.PROFESSIONAL_PAYABLE: (AccountKind.LIABILITY, "organisation", "401"),
    Purpose.OPERATOR_BANK: (AccountKind.ASSET, "operator", "512"),
    Purpose.OPERATOR_REVENUE: (AccountKind.REVENUE, "operator", "706"),
    Purpose.PAYMENTS_IN_TRANSIT: (AccountKind.ASSET, "operator", "580"),
}


def _purpose_rules() -> Q:
    owner_q = {
        "insurer": Q(insurer__isnull=False, organisation__isnull=True),
        "organisation": Q(insurer__isnull=True, organisation__isnull=False),
        "operator": Q(insurer__isnull=True, organisation__isnull=True),
    }
    rules = Q()
    for purpose, (kind, owner, _prefix) in PURPOSES.items():
        rules |= Q(purpose=purpose, kind=kind) & owner_q[owner]
    return rules


class Account(models.Model):
    """One account of the ledger, owned by an insurer, a professional organisation or the operator.

    Its identity (code, purpose, kind, owner) cannot change once created (database trigger): moving an
    account to another owner would move its money without a transaction. The name may be corrected.
    """

    code = models.CharField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("libellé"), max_length=200)
    purpose = models.CharField(_("usage"), max_length=30, choices=Purpose.choices)
    kind = models.CharField(_("nature"), max_length=10, choices=AccountKind.choices)
    insurer = models.ForeignKey(
        "registry.Insurer", on_delete=models.PROTECT, null=True, blank=True, related_name="money_accounts"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="money_accounts",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("compte")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=_purpose_rules(), name="accounting_account_purpose_rules"),
            models.UniqueConstraint(
                fields=["purpose", "insurer"],
                condition=Q(insurer__isnull=False),
                name="accounting_one_per_insurer",
            ),
            models.UniqueConstraint(
                fields=["purpose", "organisation"],
                condition=Q(organisation__isnull=False),
                name="accounting_one_per_organisation",
            ),
            models.UniqueConstraint(
                fields=["purpose"],
                condition=Q(insurer__isnull=True, organisation__isnull=True),
                name="accounting_one_per_operator_purpose",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def normal_sign(self) -> int:
        """+1 if the balance normally is a debit (assets, expenses), -1 if a credit (liabilities, revenue)."""
        return NORMAL_SIGN[AccountKind(self.kind)]


class TransactionKind(models.TextChoices):
    """Why money moved. Extend it as the business apps need; the database does not restrict the values."""

    CLAIM_ACCEPTED = "claim_accepted", _("Facture acceptée")
    CLAIM_REVERSED = "claim_reversed", _("Facture annulée (avoir)")
    REVIEW_ADJUSTED = "review_adjusted", _("Révision d'une facture")
    PAYMENT = "payment", _("Paiement au professionnel")
    PAYMENT_RETURNED = "payment_returned", _("Virement rejeté")
    FEE = "fee", _("Frais de gestion")
    RECEIPT = "receipt", _("Encaissement")
    REVERSAL = "reversal", _("Contre-passation")


class Transaction(models.Model):
    """A balanced set of postings. Its row is written *after* its postings and is their seal.

    Inserting the row checks (trigger) that its postings exist, are at least two, sum to zero and carry
    its effective date; no posting can be added afterwards and nothing can be changed or deleted. A
    posting whose transaction row never comes is refused at commit (deferred foreign key).
    """

    kind = models.CharField(_("type"), max_length=30, choices=TransactionKind.choices)
    idempotency_key = models.CharField(_("clé d'idempotence"), max_length=200, unique=True)
    memo = models.CharField(_("libellé"), max_length=200, blank=True)
    source_type = models.CharField(_("type de la source"), max_length=30)
    source_id = models.CharField(_("identifiant de la source"), max_length=64)
    created_at = models.DateTimeField(_("créée le"))
    effective_date = models.DateField(_("date de valeur"))
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversed_by"
    )  # a transaction is reversed at most once (unique)

    class Meta:
        verbose_name = _("écriture")
        indexes = [models.Index(fields=["source_type", "source_id"], name="accounting_tx_source")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.idempotency_key})"


class Posting(models.Model):
    """One leg: ``amount_cents`` > 0 debits the account, < 0 credits it (never 0, always an integer).

    ``effective_date`` repeats the transaction's (checked when it is sealed) so that a balance at a date
    reads the (account, effective date) index alone, without joining the transactions.
    """

    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings", db_index=False)
    amount_cents = models.BigIntegerField(_("montant (centimes, débit positif)"))
    effective_date = models.DateField(_("date de valeur"))

    class Meta:
        verbose_name = _("imputation")
        constraints = [
            models.CheckConstraint(condition=~Q(amount_cents=0), name="accounting_posting_not_zero")
        ]
        indexes = [
            # PostgreSQL makes it covering (INCLUDE amount_cents, migration 0002): balances by index-only scans.
            models.Index(fields=["account", "effective_date"], name="accounting_posting_balance")
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.amount_cents:+d}"
