from django.contrib import admin

from rempart.accounts.admin import ReadOnlyAdmin
from rempart.ledger.models import Disclosure


@admin.register(Disclosure)
class DisclosureAdmin(ReadOnlyAdmin):
    """The ledger, read-only for operator staff: who was answered what, when, from where (no identity)."""

    list_display = ("created_at", "reference", "channel", "purpose", "organisation_id", "outcome", "domain")
    list_filter = ("channel", "purpose", "outcome", "domain")
    search_fields = ("reference",)
    exclude = ("prev_hash", "row_hash", "presented_hash")
