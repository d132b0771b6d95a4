"""Kill switches: cut one account, token, organisation, an insurer's checks, or a whole channel — alone.

What is off answers with a clear refusal; everything else goes on. Active switches are read once per
process every few seconds (a change is effective everywhere within REFRESH_SECONDS).
"""

from __future__ import annotations

import time

from django.utils import timezone
from django.utils.translation import gettext as _

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


def token_label(token) -> str:
    """A token named without its secret: its visible prefix and its name."""
    return f"rmp_{token.prefix}_… ({token.name})"


def target_label(switch: Switch) -> str:
    """What a switch cuts, in words (French unless the console is in English)."""
    if switch.target == Switch.Target.ACCOUNT and switch.user:
        return _("compte %(email)s") % {"email": switch.user.email}
    if switch.target == Switch.Target.TOKEN and switch.token:
        return _("jeton %(token)s") % {"token": token_label(switch.token)}
    if switch.target == Switch.Target.ORGANISATION and switch.organisation:
        return _("organisation « %(name)s »") % {"name": switch.organisation.name}
    if switch.target == Switch.Target.INSURER and switch.insurer:
        return _("cartes de %(name)s (AMC %(amc)s)") % {
            "name": switch.insurer.name,
            "amc": switch.insurer.amc_number,
        }
    if switch.target == Switch.Target.CHANNEL:
        return _("tout le monde")
    return switch.get_target_display()


def event_owner(switch: Switch) -> dict:
    """Whose security events record a switch.off / switch.on: the account's, or the organisation concerned."""
    from rempart.accounts.models import Organisation

    if switch.user_id:
        return {"user": switch.user}
    if switch.token_id:
        return {"organisation": switch.token.organisation}
    if switch.organisation_id:
        return {"organisation": switch.organisation}
    if switch.insurer_id:
        organisation = Organisation.objects.filter(insurer_id=switch.insurer_id).first()
        return {"organisation": organisation} if organisation else {}
    return {}


def event_details(switch: Switch) -> dict:
    return {
        "switch": switch.pk,
        "target": switch.target,
        "what": target_label(switch),
        "channel": switch.channel or "all",
        "domain": switch.domain or "all",
        "reason": switch.reason,
    }
