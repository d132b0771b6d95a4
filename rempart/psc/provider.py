"""Pro Santé Connect as an allauth provider: allauth's OpenID Connect provider, made strict.

allauth brings the authorization code flow, PKCE (S256), the single-use ``state`` kept in the session and
the login pipeline Rempart already uses (stages, second factor, sessions). It does not send a ``nonce``,
and it does not verify the ID token's signature when the token came from the token endpoint. This
subclass adds both, asks PSC for its authentication level (``acr_values``) and for a fresh authentication
(``max_age``; ``prompt=login`` for a step-up), and ignores what a request could add to the authorization
parameters or the scope. The rules themselves are in ``tokens.py``.
"""

from __future__ import annotations

import secrets
import time

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.http import urlencode

from rempart.psc import tokens
from rempart.psc.config import NATIONAL_ID_CLAIM, PROVIDER_ID, psc_settings

STATE_NONCE = "psc_nonce"
STATE_STARTED_AT = "psc_started_at"
STATE_MAX_AGE = "psc_max_age"


class PscOAuth2Adapter(OpenIDConnectOAuth2Adapter):
    """The client side of one login: the callback URL, the token checks, the userinfo call."""

    state: dict | None = None  # this login's state, handed over by PscCallbackView

    def __init__(self, request) -> None:
        super().__init__(request, PROVIDER_ID)

    def get_callback_url(self, request, app) -> str:
        # The address registered with PSC, not whatever Host the request came with.
        return settings.REMPART_BASE_URL.rstrip("/") + reverse("psc_callback")

    def complete_login(self, request, app, token, **kwargs):
        try:
            return self._complete_login(request, app, token, kwargs["response"])
        except (KeyError, TypeError, ValueError, AttributeError) as error:  # a malformed answer from PSC
            raise tokens.PscRefusal("provider", type(error).__name__) from error

    def _complete_login(self, request, app, token, response: dict):
        config = psc_settings()
        raw = response.get("id_token")
        if not raw:
            raise tokens.PscRefusal("token", "no id_token in the token response")
        discovery = self.openid_config
        if discovery.get("issuer", "").rstrip("/") != config.issuer:  # a mixed-up or impersonated provider
            raise tokens.PscRefusal("token", "discovery names another issuer")
        claims = tokens.decode(
            raw, self._fetch_json(discovery["jwks_uri"]), issuer=discovery["issuer"], client_id=app.client_id
        )
        tokens.check_login(claims, self._expectations(config))
        userinfo = self._userinfo(token.token, discovery, app)
        if userinfo.get("sub") != claims["sub"]:  # OIDC core §5.3.2: the same person, or nothing
            raise tokens.PscRefusal("userinfo", "sub differs from the ID token's")
        if not isinstance(userinfo.get(NATIONAL_ID_CLAIM), str):
            raise tokens.PscRefusal("userinfo", f"no {NATIONAL_ID_CLAIM}")
        return self.get_provider().sociallogin_from_response(
            request, {"id_token": claims, "userinfo": userinfo}
        )

    def _expectations(self, config) -> tokens.Expectations:
        state = self.state or {}
        return tokens.Expectations(
            issuer=config.issuer,
            client_id=config.client_id,
            nonce=state.get(STATE_NONCE, ""),
            started_at=float(state.get(STATE_STARTED_AT) or 0),
            max_age=state.get(STATE_MAX_AGE),
        )

    def _fetch_json(self, url: str) -> dict:
        with get_adapter().get_requests_session() as session:
            response = session.get(url)
            response.raise_for_status()
            return response.json()

    def _userinfo(self, access_token: str, discovery: dict, app) -> dict:
        """PSC's userinfo: JSON, or a JWT signed with the same keys as the ID token (then checked the same)."""
        with get_adapter().get_requests_session() as session:
            response = session.get(
                discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}
            )
            response.raise_for_status()
        if response.headers.get("Content-Type", "").split(";")[0].strip() == "application/jwt":
            jwks = self._fetch_json(discovery["jwks_uri"])
            return tokens.decode_userinfo(
                response.text, jwks, issuer=discovery["issuer"], client_id=app.client_id
            )
        data = response.json()
        if not isinstance(data, dict):
            raise tokens.PscRefusal("userinfo", "not an object")
        return data


class PscCallbackView(OAuth2CallbackView):
    """allauth's callback, which also hands the login's state to the adapter (the nonce is in it)."""

    def _get_state(self, request, provider):
        state, response = super()._get_state(request, provider)
        self.adapter.state = state
        return state, response


class ProSanteConnectProvider(OpenIDConnectProvider):
    id = PROVIDER_ID
    name = "Pro Santé Connect"
    oauth2_adapter_class = PscOAuth2Adapter
    pkce_enabled_default = True
    supports_token_authentication = False  # never a login from a token posted by a client

    def get_login_url(self, request, **kwargs) -> str:
        url = reverse("psc_login")
        return f"{url}?{urlencode(kwargs)}" if kwargs else url

    def get_callback_url(self) -> str:
        return reverse("psc_callback")

    def get_oauth2_adapter(self, request) -> PscOAuth2Adapter:
        return PscOAuth2Adapter(request)

    def get_default_scope(self) -> list[str]:
        return list(psc_settings().scope)

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        """Off to PSC with a fresh nonce, the authentication level asked and how fresh it must be."""
        config = psc_settings()
        if process == AuthProcess.REDIRECT:  # a step-up of the person already logged in
            if not request.user.is_authenticated:
                raise PermissionDenied
            max_age, extra = 0, {"prompt": "login"}
        elif process == AuthProcess.LOGIN:
            max_age, extra = config.login_max_age, {}
        else:  # "connect": a PSC identity is linked by an owner, never by the person alone
            raise PermissionDenied
        nonce = secrets.token_urlsafe(32)
        kwargs["auth_params"] = {
            "nonce": nonce,
            "acr_values": " ".join(config.allowed_acr),
            "max_age": str(max_age),
            **extra,
        }
        kwargs["scope"] = list(config.scope)
        kwargs.update({STATE_NONCE: nonce, STATE_STARTED_AT: time.time(), STATE_MAX_AGE: max_age})
        return super().redirect(request, process, next_url=next_url, data=data, **kwargs)

    def extract_uid(self, data) -> str:
        return str(data["id_token"]["sub"])

    def extract_extra_data(self, data) -> dict:
        return data

    def extract_common_fields(self, data) -> dict:
        info = data.get("userinfo", {})
        return {"first_name": info.get("given_name"), "last_name": info.get("family_name")}

    def extract_email_addresses(self, data) -> list:
        return []  # an address PSC gives never links nor creates anything


provider_classes = [ProSanteConnectProvider]
