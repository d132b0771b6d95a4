"""Ending people's sessions at once (log out everywhere, removal, suspension)."""

from __future__ import annotations

from allauth.usersessions.models import UserSession


def end_sessions(**filters) -> int:
    """End every tracked session matching the filters (e.g. ``user=…``); return how many were ended."""
    sessions = list(UserSession.objects.filter(**filters))
    for session in sessions:
        session.end()
    return len(sessions)


def log_out_if_suspended(request) -> bool:
    """Surveillance may suspend the account during this very request (its sessions are then ended): log the
    browser out cleanly, on a fresh session, instead of letting Django try to save the ended one."""
    from django.contrib.auth import logout

    from rempart.accounts.models import User

    if User.objects.filter(pk=request.user.pk, suspended_at__isnull=False).exists():
        logout(request)
        return True
    return False
