"""The API token's surveillance state, read in the token's own statement (one round trip fewer per call).

Every check admits its actor first (rempart.surveillance.engine: suspended? throttled?). For an API call
the token check has just read the token's and its organisation's standing; this companion read
(rempart.accounts.tokens.Companion) adds the token's surveillance state to that same statement, and the
check that follows in the same request and thread uses it instead of reading it again. A read is used
once, only by the thread that made it, and only for :data:`FRESH_SECONDS`: nothing older than the token
check of the request itself.
"""

from __future__ import annotations

import threading
import time

FRESH_SECONDS = 1.0
_local = threading.local()


def _fields():
    from rempart.surveillance.models import ActorState

    return [field for field in ActorState._meta.concrete_fields]


def register() -> None:
    """Add the companion read to the token statement (from the app's ``ready()``)."""
    from rempart.accounts import tokens

    tokens.add_companion(
        tokens.Companion(
            # The state of actor "t:<token id>" (rempart.surveillance.actors.actor_key), if it has one.
            "LEFT JOIN surveillance_actorstate ON surveillance_actorstate.actor = 't:' || t.id",
            _fields(),
            _received,
            # False while the token is throttled: the rights check then compares nothing (tokens.standing_sql).
            guard=(
                "surveillance_actorstate.throttled_until IS NULL"
                " OR surveillance_actorstate.throttled_until <= CURRENT_TIMESTAMP"
            ),
        )
    )


def _received(token, values: tuple) -> None:
    # The token was accepted: its standing (token, organisation, creator) passed the token check just now.
    _local.read = (token.pk, time.monotonic(), token.suspended_at, token.organisation_status, values)


def take(token_id: int | None):
    """The read made with this thread's token check for ``token_id``, if fresh: (token suspended at,
    organisation status, ActorState or None); None when there is none to use (read it from the database)."""
    read = getattr(_local, "read", None)
    _local.read = None
    if read is None or token_id is None or read[0] != token_id or time.monotonic() - read[1] > FRESH_SECONDS:
        return None
    _token_id, _at, token_suspended_at, organisation_status, values = read
    state = None
    if values and values[0] is not None:
        from rempart.surveillance.models import ActorState

        state = ActorState.from_db("default", [field.attname for field in _fields()], values)
    return token_suspended_at, organisation_status, state
