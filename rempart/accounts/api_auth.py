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


class TokenAuth(HttpBearer):
    openapi_description = "Jeton d'API de l'organisation : `Authorization: Bearer rmp_…`"

    def __init__(self, scope: str | None) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request, token: str):
        try:
            api_token = authenticate_token(token, self.scope, client_ip(request))
        except TokenRejected as exc:
            if exc.token is not None:  # a real token's prefix: its organisation sees the refusal
                record_event(
                    "token.rejected",
                    request=request,
                    organisation=exc.token.organisation,
                    reason=exc.reason,
                    token=exc.token.prefix,
                )
            raise _refusal(exc, self.scope) from None
        request.api_token = api_token
        return api_token
