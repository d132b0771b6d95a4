"""Operator admin for reference data. No beneficiary admin: beneficiaries are never listed or searched."""

from django.contrib import admin

from rempart.registry.models import BankDetailsChange, Guarantee, ImportRun, Insurer, Product, Professional


@admin.register(Insurer)
class InsurerAdmin(admin.ModelAdmin):
    list_display = ("name", "amc_number", "kind", "status")
    list_filter = ("kind", "status")
    search_fields = ("name", "amc_number")


class GuaranteeInline(admin.TabularInline):
    model = Guarantee
    extra = 0


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "insurer", "responsible")
    list_filter = ("responsible",)
    inlines = [GuaranteeInline]


@admin.register(Professional)
class ProfessionalAdmin(admin.ModelAdmin):
    list_display = ("name", "finess", "siret", "city", "convention")
    search_fields = ("name", "finess", "siret")
    exclude = ("iban_cipher", "iban_index")
    readonly_fields = ("masked_iban",)


@admin.register(BankDetailsChange)
class BankDetailsChangeAdmin(admin.ModelAdmin):
    """Read-only, masks only: a change is asked for by an owner and cancelled from the console, never here."""

    list_display = (
        "professional",
        "iban_masked",
        "previous_iban_masked",
        "status",
        "requested_at",
        "hold_until",
    )
    list_filter = ("status",)
    exclude = ("iban_cipher", "iban_index", "previous_iban_cipher")
    readonly_fields = [
        f.name
        for f in BankDetailsChange._meta.fields
        if f.name not in {"iban_cipher", "iban_index", "previous_iban_cipher"}
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "insurer", "mode", "status", "started_at", "finished_at")
    list_filter = ("kind", "status", "mode")
    readonly_fields = [f.name for f in ImportRun._meta.fields]
