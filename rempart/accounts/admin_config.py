from django.contrib.admin.apps import AdminConfig


class RempartAdminConfig(AdminConfig):
    """Django's admin, served by RempartAdminSite (operator staff with a second factor only)."""

    default_site = "rempart.accounts.admin_site.RempartAdminSite"
