from django.contrib import admin

from rempart.accounts.models import ApiToken, Invitation, Membership, Organisation, SecurityEvent, User


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit records: visible to operator staff, never edited or deleted from the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Suspension, restoration and admin flags change only through the operator pages (step-up, events)."""

    list_display = ("email", "full_name", "is_active", "is_staff", "suspended_at")
    search_fields = ("email", "full_name")
    exclude = ("password", "groups", "user_permissions")
    readonly_fields = ("last_login", "date_joined", "suspended_at", "is_staff", "is_superuser", "is_active")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("name",)
    raw_id_fields = ("professional", "insurer")
    readonly_fields = ("status",)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "organisation", "role")
    list_filter = ("role",)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("email", "organisation", "role", "created_at", "expires_at", "accepted_at", "revoked_at")
    exclude = ("token_hash",)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = (
        "prefix",
        "name",
        "organisation",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "suspended_at",
    )
    exclude = ("token_hash",)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "tag", "user", "organisation", "ip_address")
    list_filter = ("tag",)
