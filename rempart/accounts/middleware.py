"""Cross-cutting rules for every request: session lifetime and binding, mandatory second factor, headers."""

from __future__ import annotations

import time

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.db import DatabaseError
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from rempart.accounts import sessions
from rempart.accounts.events import record_event
from rempart.accounts.signals import DEVICE_COOKIE
from rempart.accounts.stepup import STEP_UP_URL_NAMES, step_up_redirect
from rempart.api_errors import error_response

# Pages a person without a second factor may still reach: enrolling one, and leaving.
ENROLMENT_URL_NAMES = {
    "enrol",
    "mfa_activate_totp",
    "mfa_add_webauthn",
    "mfa_view_recovery_codes",
    "mfa_generate_recovery_codes",
    "mfa_download_recovery_codes",
    "account_logout",
    "set_language",
    "accept_invitation",
}


class SessionLifetimeMiddleware:
    """Idle timeout (by organisation kind) and absolute lifetime, whatever the cookie says."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            started = request.session.get("rempart_started_at", now)
            last_seen = request.session.get("rempart_last_seen", now)
            membership = user.membership
            idle = (
                membership.organisation.idle_timeout.total_seconds()
                if membership
                else settings.REMPART_IDLE_TIMEOUT_MINUTES["operator"] * 60
            )
            if user.is_suspended or not user.is_active:
                logout(request)
                messages.error(
                    request, _("Votre compte est suspendu. Contactez le titulaire de votre organisation.")
                )
                return redirect("account_login")
            if membership is not None and membership.organisation.is_suspended:
                logout(request)
                messages.error(
                    request, _("Votre organisation est suspendue par l'opérateur. Contactez le support.")
                )
                return redirect("account_login")
            if now - last_seen > idle or now - started > settings.REMPART_SESSION_MAX_SECONDS:
                record_event("session.expired", request=request, user=user)
                logout(request)
                messages.info(request, _("Votre session a expiré. Reconnectez-vous."))
                return redirect(f"{settings.LOGIN_URL}?next={request.path}")
            request.session["rempart_started_at"] = started
            request.session["rempart_last_seen"] = now
        response = self.get_response(request)
        new_device = getattr(request, "_rempart_new_device_cookie", None)
        if new_device:
            response.set_cookie(
                DEVICE_COOKIE,
                new_device,
                max_age=400 * 24 * 3600,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


class SessionBindingMiddleware:
    """A session goes on only from the address and device it logged in from, or from where it proved the
    second factor again: a cookie replayed from elsewhere reaches nothing but the second-factor prompt."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not _exempt_path(request.path):
            sessions.bind_after_response(request)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or _exempt_path(request.path):
            return None
        if sessions.check_binding(request):
            return None
        match = request.resolver_match
        if match is not None and match.url_name in STEP_UP_URL_NAMES:
            return None
        sessions.report_foreign_context(request)
        if sessions.log_out_if_suspended(request):  # pushing on from elsewhere got the account suspended
            return redirect("account_login")
        if (
            not Authenticator.objects.filter(user=user)
            .exclude(type=Authenticator.Type.RECOVERY_CODES)
            .exists()
        ):
            logout(
                request
            )  # nothing to prove the factor with (an invitation's enrolment session): start again
            messages.error(request, _("Cette session a changé d'adresse ou d'appareil. Reconnectez-vous."))
            return redirect("account_login")
        messages.warning(
            request,
            _(
                "Cette session est utilisée depuis une autre adresse ou un autre appareil que celui de la "
                "connexion : confirmez votre second facteur pour continuer."
            ),
        )
        return step_up_redirect(request)


def _exempt_path(path: str) -> bool:
    """Static files, and the APIs, JSON and FHIR (bearer tokens only, never the session)."""
    return path.startswith((settings.STATIC_URL, "/api/", "/fhir/"))


class RequireSecondFactorMiddleware:
    """A person without a second factor can do nothing but enrol one — and only right after their invitation."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or _exempt_path(request.path):
            return None  # the APIs answer their Bearer token, never the session beside it
        if Authenticator.objects.filter(user=user).exclude(type=Authenticator.Type.RECOVERY_CODES).exists():
            return None
        if request.session.get("rempart_enrolment_until", 0) < time.time():
            logout(request)
            messages.error(
                request,
                _(
                    "Ce compte n'a pas encore de second facteur et le délai pour en activer un est dépassé. "
                    "Demandez une nouvelle invitation au titulaire de votre organisation."
                ),
            )
            return redirect("account_login")
        match = request.resolver_match
        if match is not None and match.url_name in ENROLMENT_URL_NAMES:
            return None
        return redirect("accounts:enrol")


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy (no inline script, no third party) and a few companions."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.REMPART_CSP)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        try:
            authenticated = request.user.is_authenticated if hasattr(request, "user") else False
        except DatabaseError:  # the database is down: the 503 (rempart/outage.py) says no-store itself
            authenticated = False
        if authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response


class ApiBodyLimitMiddleware:
    """The API takes small JSON bodies: bigger is refused before it is read (413), another type is 415."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            is_lot = (
                request.path == "/api/v1/claims/lots"
            )  # a file of invoices (JSON Lines), read as a stream
            if is_lot:
                limit = settings.REMPART_API_MAX_LOT_BYTES
            elif request.path == "/api/v1/claims":  # up to 99 invoice lines
                limit = settings.REMPART_API_MAX_CLAIM_BYTES
            else:
                limit = settings.REMPART_API_MAX_BODY_BYTES
            if length > limit:
                return error_response(
                    request,
                    413,
                    lambda: (
                        _("corps de requête trop volumineux (au plus %(limit)s octets)") % {"limit": limit}
                    ),
                    "too_large",
                )
            content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            expected = ("application/x-ndjson", "application/jsonl") if is_lot else ("application/json",)
            if request.method in ("POST", "PUT", "PATCH") and content_type not in expected:
                return error_response(
                    request,
                    415,
                    lambda: _("Content-Type: %(expected)s attendu") % {"expected": expected[0]},
                    "unsupported_media_type",
                )
        return self.get_response(request)
