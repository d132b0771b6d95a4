"""Billing in the operator's admin. Contracts and fee schedules are data the operator keeps here (a fee
schedule is versioned: add a new one from its effective date rather than editing one already used). Statements,
receipts and collection files are read-only: they are issued, posted and recorded by rempart.billing only; the
IBAN ciphertexts and the stored documents' bytes are not shown."""

from django.contrib import admin

from rempart.accounts.admin import ReadOnlyAdmin
from rempart.billing.models import BillingContract, CollectionFile, FeeSchedule, Receipt, Statement


@admin.register(BillingContract)
class BillingContractAdmin(admin.ModelAdmin):
    list_display = ("insurer", "period", "due_days", "collection", "overdue_alert_days")
    list_filter = ("period", "collection")
    search_fields = ("insurer__amc_number", "insurer__name")
    exclude = ("iban_cipher",)
    readonly_fields = ("iban_masked",)


@admin.register(FeeSchedule)
class FeeScheduleAdmin(admin.ModelAdmin):
    list_display = (
        "insurer", "effective_from", "per_rights_check_cents", "per_pec_cents", "per_invoice_cents",
        "paid_share_basis_points",
    )  # fmt: skip
    list_filter = ("insurer",)
    ordering = ("insurer", "-effective_from")


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "kind",
        "insurer",
        "period_start",
        "period_end",
        "total_cents",
        "due_date",
        "status",
    )
    list_filter = ("kind", "status")
    search_fields = ("number", "insurer__amc_number")
    exclude = ("pdf_content",)


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ("insurer", "amount_cents", "received_on", "source", "statement")
    list_filter = ("source",)


@admin.register(CollectionFile)
class CollectionFileAdmin(ReadOnlyAdmin):
    list_display = ("reference", "collection_date", "total_cents", "created_at")
    exclude = ("file_content",)
