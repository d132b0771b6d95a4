"""The Django admin, for operator staff only, and only in a session that proved a second factor."""

from __future__ import annotations

from allauth.account.internal.flows.login import get_authentication_records
from django.contrib import admin
from django.shortcuts import redirect
from django.utils.http import urlencode

from rempart.accounts import roles


class RempartAdminSite(admin.AdminSite):
    site_header = "Rempart — administration opérateur"
    site_title = "Rempart"

    def has_permission(self, request) -> bool:
        user = request.user
        if not user.is_authenticated or not roles.can_reach_admin(user):
            return False
        return any(
            record.get("method") == "mfa" for record in get_authentication_records(request, request.user)
        )

    def login(self, request, extra_context=None):
        # One login for everything: allauth's, with its mandatory second factor.
        return redirect(f"/accounts/login/?{urlencode({'next': request.get_full_path()})}")
