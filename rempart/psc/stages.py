"""The second-factor stage of a login, which knows what a Pro Santé Connect login proved.

A PSC login whose ID token says the CPS card or the e-CPS was used (an allowed ``acr``) stands for the
second factor: it is recorded as one (type ``psc``) and Rempart asks for nothing more. Any other PSC login
is asked Rempart's own factor, without the "someone knows your password" notice: no password was typed.
A password login goes on exactly as before (rempart.accounts.password_notice).
"""

from __future__ import annotations

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.stages import AuthenticateStage

from rempart.accounts.password_notice import SecondFactorStage as PasswordSecondFactorStage
from rempart.psc import tokens
from rempart.psc.admission import PROOF_TYPE
from rempart.psc.config import PROVIDER_ID, psc_settings

ASKED_KEY = "psc_second_factor_asked"  # read by the second-factor page (its wording)


def psc_claims(login) -> dict | None:
    """The ID token's claims if this login comes from Pro Santé Connect."""
    sociallogin = (login.signal_kwargs or {}).get("sociallogin")
    if sociallogin is None or sociallogin.account.provider != PROVIDER_ID:
        return None
    return (sociallogin.account.extra_data or {}).get("id_token") or {}


class SecondFactorStage(PasswordSecondFactorStage):
    def handle(self) -> tuple:
        claims = psc_claims(self.login)
        if claims is None:
            self.request.session.pop(ASKED_KEY, None)  # a PSC attempt left unfinished earlier
            return super().handle()
        if tokens.counts_as_second_factor(claims, psc_settings().allowed_acr):
            record_authentication(
                self.request, self.login.user, "mfa", type=PROOF_TYPE, acr=tokens.authentication_level(claims)
            )
            return None, True
        response, cont = AuthenticateStage.handle(self)
        if response is not None:
            self.request.session[ASKED_KEY] = True
        return response, cont
