from django.contrib import admin

from rempart.accounts.models import ApiToken, Invitation, Membership, Organisation, SecurityEvent, User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "full_name", "is_active", "is_staff", "suspended_at")
    search_fields = ("email", "full_name")
    exclude = ("password",)
    readonly_fields = ("last_login", "date_joined")


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "status", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("name",)
    raw_id_fields = ("professional", "insurer")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organisation", "role")
    list_filter = ("role",)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "organisation", "role", "created_at", "expires_at", "accepted_at", "revoked_at")
    exclude = ("token_hash",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
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
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "tag", "user", "organisation", "ip_address")
    list_filter = ("tag",)
    readonly_fields = [f.name for f in SecurityEvent._meta.fields]
