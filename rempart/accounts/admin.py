from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
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


# allauth registers editable admin pages for second factors and email addresses: an operator could copy a
# factor's secret or change a login address there, with no step-up and no event. Read-only, secrets hidden.
for model in (Authenticator, EmailAddress, UserSession):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(Authenticator)
class AuthenticatorAdmin(ReadOnlyAdmin):
    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    exclude = ("data",)


@admin.register(EmailAddress)
class EmailAddressAdmin(ReadOnlyAdmin):
    list_display = ("email", "user", "verified", "primary")


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "ip", "created_at", "last_seen_at")
    exclude = ("session_key", "data")
