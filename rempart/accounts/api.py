"""Account endpoints of the JSON API."""

import datetime as dt

from ninja import Router, Schema

from rempart.accounts.api_auth import TokenAuth

router = Router(tags=["compte"])


class WhoAmI(Schema):
    organisation: str
    token_name: str
    token_prefix: str
    scopes: list[str]
    expires_at: dt.datetime


@router.get(
    "/whoami", auth=TokenAuth(scope=None), response=WhoAmI, summary="Le jeton présenté et son organisation"
)
def whoami(request):
    token = request.api_token
    return WhoAmI(
        organisation=token.organisation.name,
        token_name=token.name,
        token_prefix=token.prefix,
        scopes=token.scopes,
        expires_at=token.expires_at,
    )
