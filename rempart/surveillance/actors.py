"""How surveillance names an actor in its counters and states (one module, so engine and responses share it)."""

from __future__ import annotations


def actor_key(actor) -> str:
    """An API token is watched on its own; a person across their sessions."""
    return f"t:{actor.token_id}" if actor.token_id else f"u:{actor.user_id}"
