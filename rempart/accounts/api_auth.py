"""Bearer-token authentication for the JSON API (never cookies), one scope per endpoint."""

from __future__ import annotations

from ninja.errors import HttpError
from ninja.security import HttpBearer

from rempart.accounts.events import record_event
from rempart.accounts.tokens import TokenRejected, authenticate_token
from rempart.lib.http import client_ip


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
            raise HttpError(exc.status, exc.reason) from None
        request.api_token = api_token
        return api_token
