"""Ending people's sessions at once (log out everywhere, removal, suspension)."""

from __future__ import annotations

from allauth.usersessions.models import UserSession


def end_sessions(**filters) -> int:
    """End every tracked session matching the filters (e.g. ``user=…``); return how many were ended."""
    sessions = list(UserSession.objects.filter(**filters))
    for session in sessions:
        session.end()
    return len(sessions)
