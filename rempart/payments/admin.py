"""Payments in the operator's admin: read-only. Money moves only through the console (four eyes, step-up,
events), never through a form here; the bank file's bytes and the IBANs' ciphertexts are not shown."""

from django.contrib import admin

from rempart.accounts.admin import ReadOnlyAdmin
from rempart.payments.models import BankFileImport, FileDownload, Payment, PaymentItem, PaymentRun


@admin.register(PaymentRun)
class PaymentRunAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "cutoff",
        "execution_date",
        "status",
        "transfer_count",
        "total_cents",
        "prepared_at",
    )
    list_filter = ("status",)
    search_fields = ("reference",)
    exclude = ("file_content",)


class PaymentItemInline(admin.TabularInline):
    model = PaymentItem
    extra = 0
    fields = ("kind", "claim", "transaction", "amount_cents")
    readonly_fields = fields
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "reference",
        "organisation",
        "amount_cents",
        "status",
        "iban_masked",
        "held_reason",
        "created_at",
    )
    list_filter = ("status", "held_reason")
    search_fields = ("reference", "organisation__name")
    exclude = ("iban_cipher",)
    raw_id_fields = ("run", "organisation", "transaction", "return_transaction")
    inlines = [PaymentItemInline]


@admin.register(BankFileImport)
class BankFileImportAdmin(ReadOnlyAdmin):
    list_display = ("kind", "message_id", "run", "imported_at", "imported_by")
    list_filter = ("kind",)
    search_fields = ("message_id", "sha256")


@admin.register(FileDownload)
class FileDownloadAdmin(ReadOnlyAdmin):
    list_display = ("run", "user", "downloaded_at", "sha256")
