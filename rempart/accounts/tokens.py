"""API tokens for professional software: shown once, stored as a SHA-256 hash behind a visible prefix.

A token is 32 random bytes, so a plain (fast) hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.utils import timezone

from rempart.accounts.models import ApiToken, Organisation, User
from rempart.accounts.scopes import scopes_for
from rempart.lib import hot_sql

TOKEN_TAG = "rmp"


class TokenError(ValueError):
    """A token cannot be created as asked (reason safe to show)."""


class TokenRejected(Exception):
    """A presented token is refused; ``status`` is 401 (not a valid token) or 403 (valid but not allowed)."""

    def __init__(self, status: int, reason: str, token: ApiToken | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.token = token  # the token the prefix named, when there is one (so its owner sees the refusal)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(
    organisation: Organisation,
    name: str,
    scopes: list[str],
    created_by: User,
    lifetime_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; return it with the raw secret, which is never stored and never shown again."""
    lifetime_days = lifetime_days or settings.REMPART_TOKEN_DEFAULT_DAYS
    if not 1 <= lifetime_days <= settings.REMPART_TOKEN_MAX_DAYS:
        raise TokenError(
            f"la durée de validité doit être comprise entre 1 et {settings.REMPART_TOKEN_MAX_DAYS} jours"
        )
    unknown = set(scopes) - set(scopes_for(organisation.kind))
    if not scopes or unknown:
        raise TokenError("choisissez au moins une autorisation parmi celles proposées")
    if not name.strip():
        raise TokenError("donnez un nom au jeton (le logiciel qui l'utilise)")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_TAG}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        organisation=organisation,
        name=name.strip()[:100],
        prefix=prefix,
        token_hash=_hash(raw),
        scopes=sorted(set(scopes)),
        created_by=created_by,
        expires_at=timezone.now() + dt.timedelta(days=lifetime_days),
    )
    return token, raw


_TOKEN_FIELDS = [f.name for f in ApiToken._meta.concrete_fields]
_BY_PREFIX_SQL = """
    SELECT {columns},
           o.status, u.suspended_at IS NOT NULL, u.is_active{companion_columns}
    FROM accounts_apitoken t
    JOIN accounts_organisation o ON o.id = t.organisation_id
    LEFT JOIN accounts_user u ON u.id = t.created_by_id{companion_joins}
    WHERE t.prefix = %s
"""
_MARK_USED = "UPDATE accounts_apitoken SET last_used_at = %s, last_used_ip = %s WHERE id = %s"


class Companion:
    """What another app reads with the token, in its statement (one round trip fewer on every API call).

    ``join``: SQL joining its table to ``t`` (the token; values are never interpolated); ``columns``: the model
    fields it selects, in order; ``receive(token, values)`` is called once the token is accepted. Surveillance
    reads the token's own state this way (rempart.surveillance.admission).
    """

    def __init__(self, join: str, columns, receive) -> None:
        self.join, self.columns, self.receive = join, list(columns), receive


_companions: list[Companion] = []
_by_prefix: list[hot_sql.Statement] = []


def add_companion(companion: Companion) -> None:
    """Register a companion read (from an app's ``ready()``); the statement is rebuilt on next use."""
    _companions.append(companion)
    _by_prefix.clear()


def _statement() -> hot_sql.Statement:
    # Every API call starts here: one prepared statement for the token, its organisation's status, its
    # creator's standing (rempart.lib.hot_sql) and what the companions read.
    if not _by_prefix:
        companion_columns = "".join(
            f", {column.model._meta.db_table}.{column.column}" for c in _companions for column in c.columns
        )
        sql = _BY_PREFIX_SQL.format(
            columns=", ".join(f"t.{ApiToken._meta.get_field(name).column}" for name in _TOKEN_FIELDS),
            companion_columns=companion_columns,
            companion_joins="".join(f"\n    {c.join}" for c in _companions),
        )  # column names come from the models, values are parameters
        columns = [ApiToken._meta.get_field(name) for name in _TOKEN_FIELDS]
        _by_prefix.append(
            hot_sql.Statement(
                sql, [*columns, *([None] * 3), *(col for c in _companions for col in c.columns)]
            )
        )
    return _by_prefix[0]


def _token_by_prefix(prefix: str) -> ApiToken | None:
    """The token (its organisation and creator loaded on demand) with their standing as attributes."""
    row = _statement().first([prefix])
    if row is None:
        return None
    count = len(_TOKEN_FIELDS)
    token = ApiToken.from_db(
        "default", [ApiToken._meta.get_field(n).attname for n in _TOKEN_FIELDS], row[:count]
    )
    token.organisation_status, creator_suspended, creator_active = row[count : count + 3]
    token.creator_suspended, token.creator_active = bool(creator_suspended), bool(creator_active)
    token.companion_values = row[count + 3 :]
    return token


def _hand_to_companions(token: ApiToken) -> None:
    values = list(getattr(token, "companion_values", ()))
    for companion in _companions:
        width = len(companion.columns)
        companion.receive(token, tuple(values[:width]))
        values = values[width:]


def authenticate_token(raw: str, scope: str | None, ip: str | None = None) -> ApiToken:
    """Return the live token for a raw bearer value, or raise TokenRejected (``scope=None``: any scope)."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_TAG:
        raise TokenRejected(401, "jeton invalide")
    token = _token_by_prefix(parts[1])
    if token is None or not hmac.compare_digest(token.token_hash, _hash(raw)):
        raise TokenRejected(401, "jeton invalide", token)
    now = timezone.now()
    if token.revoked_at:
        raise TokenRejected(401, "jeton révoqué", token)
    if now >= token.expires_at:
        raise TokenRejected(401, "jeton expiré", token)
    if token.suspended_at:
        raise TokenRejected(403, "jeton suspendu par l'opérateur", token)
    if token.organisation_status == Organisation.Status.SUSPENDED:
        raise TokenRejected(403, "organisation suspendue", token)
    if token.created_by_id is not None and (token.creator_suspended or not token.creator_active):
        raise TokenRejected(403, "le compte qui a créé ce jeton est suspendu", token)
    if scope is not None and scope not in token.scopes:
        raise TokenRejected(403, f"ce jeton n'a pas l'autorisation « {scope} »", token)
    # Record use, at most once a minute per token, to keep the hot path cheap.
    if (
        token.last_used_at is None
        or now - token.last_used_at > dt.timedelta(minutes=1)
        or token.last_used_ip != ip
    ):
        hot_sql.run(_MARK_USED, [now, ip, token.pk])
        token.last_used_at, token.last_used_ip = now, ip
    _hand_to_companions(token)
    return token


def revoke_token(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
