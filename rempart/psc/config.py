"""Pro Santé Connect's configuration (``settings.REMPART_PSC``, from the environment): off unless complete.

One place reads it, so that the button, the allauth app, the checks and the docs agree on what "on" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

PROVIDER_ID = "prosanteconnect"
# Claims PSC returns (ANS userinfo; docs/security.md §2.4): the national identifier of the professional,
# ``8`` + RPPS for an RPPS holder, and the authentication level of the ID token.
NATIONAL_ID_CLAIM = "SubjectNameID"
ACR_CLAIM = "acr"
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
CLOCK_LEEWAY_SECONDS = 60


@dataclass(frozen=True)
class PscSettings:
    issuer: str
    discovery_url: str
    client_id: str
    client_secret: str
    allowed_acr: tuple[str, ...]
    scope: tuple[str, ...]
    login_max_age: int  # seconds: an older PSC authentication (single sign-on) is asked again
    authorization_origin: str  # where the browser is sent: allowed as a form target on the PSC pages

    @property
    def form_action_origin(self) -> str:
        """PSC's authorization page is on another host than its issuer (wallet.… vs auth.…): configured."""
        origin = self.authorization_origin or self.issuer
        parts = urlsplit(origin)
        return (
            f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
        )

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id and self.client_secret)

    @property
    def server_url(self) -> str:
        """The discovery document: PSC publishes its own (``…/.well-known/wallet-openid-configuration``)."""
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def psc_settings() -> PscSettings:
    raw = getattr(settings, "REMPART_PSC", {}) or {}
    return PscSettings(
        issuer=(raw.get("issuer") or "").rstrip("/"),
        discovery_url=raw.get("discovery_url") or "",
        client_id=raw.get("client_id") or "",
        client_secret=raw.get("client_secret") or "",
        allowed_acr=tuple(raw.get("allowed_acr") or ()),
        scope=tuple(raw.get("scope") or ("openid", "scope_all")),
        login_max_age=int(raw.get("login_max_age") or 600),
        authorization_origin=raw.get("authorization_origin") or "",
    )


def is_enabled() -> bool:
    return psc_settings().enabled
