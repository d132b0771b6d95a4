"""Sessions used from an address or device they are not bound to (rempart.accounts.sessions): the accounts
side steps the session up; surveillance shows it to the analyst and counts the attempts that push on."""

from __future__ import annotations

from django.dispatch import receiver

from rempart.accounts.sessions import context_refused
from rempart.surveillance import engine, labels, responses
from rempart.surveillance.policy import STEP_UP, Finding

SIGNAL = "session_context_changed"


@receiver(context_refused)
def session_used_elsewhere(sender, request, first: bool, attempted: bool, evidence: dict, **kwargs) -> None:
    """Once per session and context an alert; each refused POST a refused attempt (more than 5 an hour:
    the account is suspended, as for a stepped-up script that keeps pushing)."""
    from rempart.ledger.actor import Actor

    if not engine.enabled() or request.user.membership is None:
        return
    actor = Actor.portal(request)
    if first:
        responses.alert(actor, STEP_UP, [Finding(SIGNAL, STEP_UP, evidence)], labels.SESSION_STEP_UP)
    if attempted:
        engine.count_refused_attempt(actor, SIGNAL)
