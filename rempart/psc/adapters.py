"""allauth's adapters for Pro Santé Connect: apps from Rempart's settings only, no sign-up, our admission,
and the second-factor stage that knows what a PSC login proved."""

from __future__ import annotations

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base import AuthError

from rempart.accounts.adapters import AccountAdapter as RempartAccountAdapter
from rempart.accounts.events import record_event
from rempart.accounts.password_notice import STAGE as PASSWORD_STAGE
from rempart.psc import admission
from rempart.psc.config import PROVIDER_ID, psc_settings

STAGE = "rempart.psc.stages.SecondFactorStage"


class AccountAdapter(RempartAccountAdapter):
    """Rempart's account adapter, with the second-factor stage that lets a CPS or e-CPS login stand for it."""

    def get_login_stages(self) -> list[str]:
        return [STAGE if path == PASSWORD_STAGE else path for path in super().get_login_stages()]


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None) -> list[SocialApp]:
        """Only PSC, only as configured from the environment: an app added in the admin is never used."""
        config = psc_settings()
        if not config.enabled or provider not in (None, PROVIDER_ID):
            return []
        if client_id is not None and client_id != config.client_id:
            return []
        return [
            SocialApp(
                provider=PROVIDER_ID,
                provider_id=PROVIDER_ID,
                name="Pro Santé Connect",
                client_id=config.client_id,
                secret=config.client_secret,
                settings={
                    "server_url": config.server_url,
                    "oauth_pkce_enabled": True,
                    "fetch_userinfo": True,
                },
            )
        ]

    def is_open_for_signup(self, request, sociallogin) -> bool:
        return False  # a PSC identity logs in to an existing member or nowhere

    def is_auto_signup_allowed(self, request, sociallogin) -> bool:
        return False

    def pre_social_login(self, request, sociallogin) -> None:
        admission.admit(request, sociallogin)

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        """Every failure before an answer could be believed: recorded, and our refusal page, not allauth's."""
        reason = admission.authentication_error_reason(
            AuthError.CANCELLED if error == AuthError.CANCELLED else error, exception, extra_context or {}
        )
        user = request.user if request.user.is_authenticated else None
        detail = getattr(exception, "detail", "") or (
            type(exception).__name__ if exception is not None else ""
        )
        record_event("psc.refused", request=request, user=user, reason=reason, detail=str(detail)[:200])
        raise ImmediateHttpResponse(admission.refusal(request, reason, status=401))
