"""Bearer-token authentication for the JSON API (never cookies), one scope per endpoint."""

from __future__ import annotations

from django.utils.translation import gettext as _
from ninja.security import HttpBearer

from rempart.accounts.events import record_event
from rempart.accounts.tokens import TokenRejected, authenticate_token
from rempart.api_errors import ApiError
from rempart.lib.http import client_ip

# TokenRejected's reasons (French, kept as they are in the security events) and the API's stable codes.
REASON_CODES = {
    "jeton invalide": "token_invalid",
    "jeton révoqué": "token_revoked",
    "jeton expiré": "token_expired",
    "jeton suspendu par l'opérateur": "token_suspended",
    "organisation suspendue": "organisation_suspended",
    "le compte qui a créé ce jeton est suspendu": "creator_suspended",
}


def _refusal(exc: TokenRejected, scope: str | None) -> ApiError:
    """The refusal said in the request's language, with a code a program can test."""
    if exc.reason in REASON_CODES:
        return ApiError(exc.status, REASON_CODES[exc.reason], _(exc.reason))
    if exc.status == 403 and scope:
        return ApiError(
            403, "scope_missing", _("ce jeton n'a pas l'autorisation « %(scope)s »") % {"scope": scope}
        )
    return ApiError(exc.status, "unauthenticated" if exc.status == 401 else "forbidden", exc.reason)


def refused(request, exc: TokenRejected, scope: str | None) -> ApiError:
    """A token refusal, recorded for the token's organisation when the prefix named a real token."""
    if exc.token is not None:  # a real token's prefix: its organisation sees the refusal
        record_event(
            "token.rejected",
            request=request,
            organisation=exc.token.organisation,
            reason=exc.reason,
            token=exc.token.prefix,
        )
    return _refusal(exc, scope)


class TokenAuth(HttpBearer):
    """``confirm_with_lookup``: the endpoint's gate reads the standing of a token accepted in the last second
    with its lookup (rempart.accounts.tokens.authenticate_token); the rights check only. A refusal decided
    there reaches the API's TokenRejected handler and is answered and recorded as here."""

    openapi_description = "Jeton d'API de l'organisation : `Authorization: Bearer rmp_…`"

    def __init__(self, scope: str | None, *, confirm_with_lookup: bool = False) -> None:
        super().__init__()
        self.scope = scope
        self.confirm_with_lookup = confirm_with_lookup

    def authenticate(self, request, token: str):
        try:
            api_token = authenticate_token(
                token, self.scope, client_ip(request), confirm_with_lookup=self.confirm_with_lookup
            )
        except TokenRejected as exc:
            raise refused(request, exc, self.scope) from None
        request.api_token = api_token
        return api_token
