"""Kill switches: cut one account, token, organisation, an insurer's checks, or a whole channel — alone.

What is off answers with a clear refusal; everything else goes on. Active switches are read once per
process every few seconds (a change is effective everywhere within REFRESH_SECONDS).
"""

from __future__ import annotations

import time

from django.utils import timezone

from rempart.surveillance.models import Switch

REFRESH_SECONDS = 2.0
_cache: dict[str, object] = {"at": 0.0, "switches": []}


def channel_of(actor) -> str:
    return Switch.Channel.API_RIGHTS if actor.channel == "api" else Switch.Channel.PORTAL_RIGHTS


def active_switches() -> list[Switch]:
    if time.monotonic() - _cache["at"] > REFRESH_SECONDS:
        _cache["switches"] = list(Switch.objects.filter(on_at__isnull=True).select_related("insurer"))
        _cache["at"] = time.monotonic()
    return _cache["switches"]


def forget() -> None:
    """This process re-reads the switches at the next check (called after a change)."""
    _cache["at"] = 0.0


def matching(actor, *, domain: str, amc_number: str) -> Switch | None:
    channel = channel_of(actor)
    for switch in active_switches():
        if switch.channel and switch.channel != channel:
            continue
        if switch.domain and switch.domain != domain:
            continue
        target = switch.target
        if (
            target == Switch.Target.CHANNEL
            or (target == Switch.Target.ACCOUNT and actor.user_id and switch.user_id == actor.user_id)
            or (target == Switch.Target.TOKEN and actor.token_id and switch.token_id == actor.token_id)
            or (target == Switch.Target.ORGANISATION and switch.organisation_id == actor.organisation_id)
            or (
                target == Switch.Target.INSURER and switch.insurer and switch.insurer.amc_number == amc_number
            )
        ):
            return switch
    return None


def switch_off(*, target: str, reason: str, by=None, by_system: bool = False, **fields) -> Switch:
    if not reason.strip():
        raise ValueError("a reason is required")
    switch = Switch.objects.create(
        target=target, reason=reason.strip()[:300], off_by=by, by_system=by_system, **fields
    )
    forget()
    return switch


def switch_on(switch: Switch, *, by=None) -> None:
    Switch.objects.filter(pk=switch.pk, on_at__isnull=True).update(on_at=timezone.now(), on_by=by)
    forget()
