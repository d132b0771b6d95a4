"""API tokens for professional software: shown once, stored as a SHA-256 hash behind a visible prefix.

A token is 32 random bytes, so a plain (fast) hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

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
    reads the token's own state this way (rempart.surveillance.admission). ``guard``: an SQL condition (no
    parameters) that is false when the companion would refuse the call, for :func:`standing_sql`.
    """

    def __init__(self, join: str, columns, receive, guard: str = "") -> None:
        self.join, self.columns, self.receive, self.guard = join, list(columns), receive, guard


_companions: list[Companion] = []
_by_prefix: list[hot_sql.Statement] = []


def add_companion(companion: Companion) -> None:
    """Register a companion read (from an app's ``ready()``); the statement is rebuilt on next use."""
    _companions.append(companion)
    _by_prefix.clear()
    _by_id.clear()


def _statement() -> hot_sql.Statement:
    # Every API call starts here: one prepared statement for the token, its organisation's status, its
    # creator's standing (rempart.lib.hot_sql) and what the companions read.
    if not _by_prefix:
        columns = [ApiToken._meta.get_field(name) for name in _TOKEN_FIELDS]
        _by_prefix.append(
            hot_sql.Statement(
                _select_sql(
                    "WHERE t.prefix = %s"
                ),  # column names come from the models, values are parameters
                [*columns, *([None] * 3), *(col for c in _companions for col in c.columns)],
            )
        )
    return _by_prefix[0]


def _select_sql(where: str, ok: str = "") -> str:
    return _BY_PREFIX_SQL.replace("WHERE t.prefix = %s", where).format(
        columns=ok + ", ".join(f"t.{ApiToken._meta.get_field(name).column}" for name in _TOKEN_FIELDS),
        companion_columns="".join(
            f", {column.model._meta.db_table}.{column.column}" for c in _companions for column in c.columns
        ),
        companion_joins="".join(f"\n    {c.join}" for c in _companions),
    )


def _token_from_row(row: tuple) -> ApiToken:
    count = len(_TOKEN_FIELDS)
    token = ApiToken.from_db(
        "default", [ApiToken._meta.get_field(n).attname for n in _TOKEN_FIELDS], row[:count]
    )
    token.organisation_status, creator_suspended, creator_active = row[count : count + 3]
    token.creator_suspended, token.creator_active = bool(creator_suspended), bool(creator_active)
    token.companion_values = row[count + 3 :]
    return token


def _token_by_prefix(prefix: str) -> ApiToken | None:
    """The token (its organisation and creator loaded on demand) with their standing as attributes."""
    row = _statement().first([prefix])
    return None if row is None else _token_from_row(row)


def _hand_to_companions(token: ApiToken) -> None:
    values = list(getattr(token, "companion_values", ()))
    for companion in _companions:
        width = len(companion.columns)
        companion.receive(token, tuple(values[:width]))
        values = values[width:]


def _check_standing(token: ApiToken, scope: str | None, now: dt.datetime) -> None:
    """Raise TokenRejected for a token that may not be used now (its hash already matched)."""
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


def _mark_used(token: ApiToken, now: dt.datetime, ip: str | None) -> None:
    # Record use, at most once a minute per token, to keep the hot path cheap.
    if (
        token.last_used_at is None
        or now - token.last_used_at > dt.timedelta(minutes=1)
        or token.last_used_ip != ip
    ):
        hot_sql.run(_MARK_USED, [now, ip, token.pk])
        token.last_used_at, token.last_used_ip = now, ip


def authenticate_token(
    raw: str, scope: str | None, ip: str | None = None, *, confirm_with_lookup: bool = False
) -> ApiToken:
    """Return the live token for a raw bearer value, or raise TokenRejected (``scope=None``: any scope).

    ``confirm_with_lookup`` (the rights check only): a token this process accepted from the same address less
    than :data:`RECENT_SECONDS` ago is returned without reading it again, *pending*: its standing is then read
    in the gate's lookup statement, which compares nothing unless the standing holds, and refused there exactly
    as here (:func:`take_pending`, :func:`accept_standing`). One round trip fewer per check, nothing cached
    that decides: revocation and suspension still take effect from the next check.
    """
    _pending.value = None  # whatever happens next, nothing of an earlier request stays pending
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_TAG:
        raise TokenRejected(401, "jeton invalide")
    digest = _hash(raw)
    if confirm_with_lookup:
        token = _recently_accepted(digest, ip)
        if (
            token is not None
            and timezone.now() < token.expires_at
            and (scope is None or scope in token.scopes)
        ):
            _pending.value = Pending(token, scope, time.monotonic())
            _mark_used(token, timezone.now(), ip)
            return token
    token = _token_by_prefix(parts[1])
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        raise TokenRejected(401, "jeton invalide", token)
    now = timezone.now()
    _check_standing(token, scope, now)
    _mark_used(token, now, ip)
    _hand_to_companions(token)
    _remember(digest, ip, token)
    return token


# --- Tokens accepted in the last second, whose standing the rights check reads with its lookup.

RECENT_SECONDS = 1.0
_RECENT_LIMIT = 10_000
_recent: dict[tuple[str, str | None], tuple[float, ApiToken]] = {}
_pending = threading.local()


@dataclass(frozen=True)
class Pending:
    """A token returned without its standing read: the gate must read and judge it before any comparison."""

    token: ApiToken
    scope: str | None
    at: float


def _remember(digest: str, ip: str | None, token: ApiToken) -> None:
    if len(_recent) >= _RECENT_LIMIT:
        _recent.clear()  # bounded memory; the next call of each token reads it again
    kept = copy.copy(token)
    kept.companion_values = ()
    _recent[(digest, ip)] = (time.monotonic(), kept)


def _recently_accepted(digest: str, ip: str | None) -> ApiToken | None:
    entry = _recent.get((digest, ip))
    if entry is None or time.monotonic() - entry[0] >= RECENT_SECONDS:
        return None
    return copy.copy(entry[1])


def forget_recent(token_id: int | None = None) -> None:
    """Drop the remembered acceptances (of one token, or all: tests)."""
    if token_id is None:
        _recent.clear()
        return
    for key in [key for key, (_at, token) in _recent.items() if token.pk == token_id]:
        _recent.pop(key, None)


def take_pending(token_id: int | None) -> Pending | None:
    """The pending acceptance of this thread's current request for ``token_id``, once (then forgotten)."""
    pending = getattr(_pending, "value", None)
    _pending.value = None
    if pending is None or token_id is None or pending.token.pk != token_id:
        return None
    if time.monotonic() - pending.at > RECENT_SECONDS:
        return None  # a request slower than that reads the standing the ordinary way
    return pending


_by_id: list[hot_sql.Statement] = []


def standing_sql() -> tuple[str, list]:
    """The standing of one token (one parameter: its id) as an SQL select, and its columns for hot_sql.

    The first column, ``ok``, is false when the token, its organisation, its creator or a companion's guard
    would refuse the call now: the gate guards its lookup with it. The rest is what :func:`accept_standing`
    judges (the same columns as the token check's own statement).
    """
    guards = "".join(f" AND ({c.guard})" for c in _companions if c.guard)
    ok = (
        "(t.revoked_at IS NULL AND t.suspended_at IS NULL AND t.expires_at > CURRENT_TIMESTAMP"
        f" AND o.status <> '{Organisation.Status.SUSPENDED}'"
        f" AND (t.created_by_id IS NULL OR (u.suspended_at IS NULL AND u.is_active)){guards}) AS ok, "
    )
    columns = [ApiToken._meta.get_field(name) for name in _TOKEN_FIELDS]
    return _select_sql("WHERE t.id = %s", ok), [
        None,
        *columns,
        *([None] * 3),
        *(col for c in _companions for col in c.columns),
    ]


def standing_width() -> int:
    return 1 + len(_TOKEN_FIELDS) + 3 + sum(len(c.columns) for c in _companions)


def accept_standing(pending: Pending, row: tuple | None) -> None:
    """Judge the standing read for a pending token (``standing_sql``'s columns, or None if the token is gone):
    raise TokenRejected as the token check would, else hand the companions their read."""
    if row is None:
        forget_recent(pending.token.pk)
        raise TokenRejected(401, "jeton invalide", None)
    token = _token_from_row(row[1:])
    try:
        _check_standing(token, pending.scope, timezone.now())
    except TokenRejected:
        forget_recent(token.pk)
        raise
    _hand_to_companions(token)


def confirm_if_pending(token_id: int | None) -> None:
    """Before an answer that does not reach the gate (bad input): judge a pending token's standing first, so that
    a token revoked within the second is told so rather than answered (raises TokenRejected)."""
    pending = take_pending(token_id)
    if pending is not None:
        confirm_pending(pending)


def confirm_pending(pending: Pending) -> None:
    """Read and judge a pending token's standing on its own (a refusal is due before the lookup)."""
    if not _by_id:
        sql, columns = standing_sql()
        _by_id.append(hot_sql.Statement(sql, columns))
    accept_standing(pending, _by_id[0].first([pending.token.pk]))


def revoke_token(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
