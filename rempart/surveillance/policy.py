"""Signals and thresholds: from the counters of one check to the rungs of the response ladder.

Pure: no database, no HTTP. Levels: 1 alert; 2 step-up (portal) or throttle (API, 429); 3 suspension of
the account or token (and an incident); 4 suspension of the organisation. docs/surveillance.md explains
each default and how to tune it (settings.REMPART_SURVEILLANCE overrides any of them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.conf import settings

ALERT, STEP_UP, SUSPEND, SUSPEND_ORGANISATION = 1, 2, 3, 4

DEFAULTS = {
    # Velocity per account (portal) or token (API). A person at a counter checks one patient at a time:
    # a family of four in a minute is fast; ten a minute is a script.
    "portal_checks_per_minute": 6,
    "api_checks_per_minute": 10,
    "portal_checks_per_hour": 60,
    "api_checks_per_hour": 300,
    # Distinct beneficiaries confirmed (identity matched) per account or token, in any 60 minutes / 24 hours.
    "confirmed_per_hour_step_up": 30,
    "confirmed_per_day_suspend": 150,
    # New identities: people the actor's organisation never confirmed in the last ``clientele_days``
    # (rempart.surveillance.clientele). A counter confirms its patients again and again and meets a few new
    # ones a day; a list is new people only. Step-ups on reaching the count (the person passes them), then
    # suspension: whatever the pace, an actor is suspended by its 10th new identity in any 24 hours.
    "new_identities_hour_step_up": 5,
    "new_identities_day_step_up": 8,
    "new_identities_day_suspend": 10,
    "new_identities_week_step_up": 25,
    "new_identities_week_suspend": 40,
    # Invoices accepted for payment (purpose "claim"): a pharmacy invoices people it never checked online,
    # so they have their own, larger budget of new people per actor (docs/surveillance.md, "Invoices").
    "invoiced_new_identities_day_alert": 150,
    "invoiced_new_identities_day_suspend": 400,
    "clientele_days": 730,  # how long an organisation remembers a person (opticians see theirs every 2 years)
    "clientele_learning_days": 30,  # younger histories: everyone is new, the budget waits (the ceilings above hold)
    # Misses (no match): guessing or enumeration.
    "misses_per_hour_step_up": 10,
    "miss_ratio_step_up": 0.5,
    "misses_per_hour_suspend": 25,
    "ip_misses_per_hour_suspend": 40,  # one address across accounts
    # Refused attempts while stepped up or throttled: whoever keeps pushing is not the professional.
    "blocked_attempts_suspend": 5,
    # A second step-up or throttle within this many seconds suspends.
    "repeat_level2_seconds": 3600,
    "throttle_seconds": 60,
    # Organisation: checks in any 24 h above max(floor, factor × its 30-day high percentile) raise an alert.
    "organisation_daily_floor": 400,
    "organisation_daily_factor": 3.0,
    # Patterns: of the last 12 adherent numbers presented, this many close to another (±20) is enumeration.
    "sequential_neighbours": 6,
    # Two addresses for one account within this many seconds.
    "two_addresses_seconds": 300,
    # Organisation suspended when this many of its actors were suspended within 24 h.
    "suspended_actors_for_organisation": 2,
    # An IBAN change (rempart.surveillance.bank_change) within this many days of a login from a new device or
    # address, or of a session used from elsewhere / of a password reset or change or a second-factor change:
    # the hijacked-account pattern, an alert for the analyst while the new IBAN is on hold.
    "bank_change_new_context_days": 7,
    "bank_change_credentials_days": 7,
}


def threshold(name: str):
    return {**DEFAULTS, **getattr(settings, "REMPART_SURVEILLANCE", {})}[name]


@dataclass(frozen=True)
class Finding:
    signal: str
    level: int
    evidence: dict = field(default_factory=dict)


def velocity(channel: str, per_minute: int, per_hour: int) -> list[Finding]:
    kind = "api" if channel == "api" else "portal"
    findings = []
    minute_cap, hour_cap = threshold(f"{kind}_checks_per_minute"), threshold(f"{kind}_checks_per_hour")
    if per_minute > minute_cap:
        findings.append(
            Finding("velocity_minute", STEP_UP, {"checks_last_minute": per_minute, "ceiling": minute_cap})
        )
    if per_hour > hour_cap:
        findings.append(
            Finding("velocity_hour", STEP_UP, {"checks_last_hour": per_hour, "ceiling": hour_cap})
        )
    return findings


def confirmations(per_hour: int, per_day: int) -> list[Finding]:
    findings = []
    if per_day > threshold("confirmed_per_day_suspend"):
        findings.append(Finding("confirmed_day", SUSPEND, {"distinct_confirmed_last_24h": per_day}))
    elif per_hour > threshold("confirmed_per_hour_step_up"):
        findings.append(Finding("confirmed_hour", STEP_UP, {"distinct_confirmed_last_hour": per_hour}))
    return findings


def new_identities(per_hour: int, per_day: int, per_week: int) -> list[Finding]:
    """Judge the actor's new identities, once this check added one (each count has just grown by one).

    Suspension holds from the threshold on; a step-up is asked when a count *reaches* its threshold, so
    the real person is asked once per level and not again at every later new patient.
    """
    evidence = {
        "new_identities_last_hour": per_hour,
        "new_identities_last_24h": per_day,
        "new_identities_last_7_days": per_week,
    }
    if per_day >= threshold("new_identities_day_suspend"):
        return [Finding("new_identities_day", SUSPEND, evidence)]
    if per_week >= threshold("new_identities_week_suspend"):
        return [Finding("new_identities_week", SUSPEND, evidence)]
    for signal, value, name in (
        ("new_identities_hour", per_hour, "new_identities_hour_step_up"),
        ("new_identities_day", per_day, "new_identities_day_step_up"),
        ("new_identities_week", per_week, "new_identities_week_step_up"),
    ):
        if value == threshold(name):
            return [Finding(signal, STEP_UP, evidence)]
    return []


def invoiced_new_identities(per_day: int, added: int = 1) -> list[Finding]:
    """New people confirmed by accepted invoices in the last 24 h: an alert at one ceiling, suspension at the next.

    ``added``: how many this observation added (a chunk of a lot adds several): the alert is raised once,
    when the count crosses its ceiling."""
    evidence = {"invoiced_new_identities_last_24h": per_day}
    if per_day >= threshold("invoiced_new_identities_day_suspend"):
        return [Finding("invoiced_new_identities_day", SUSPEND, evidence)]
    if per_day - added < threshold("invoiced_new_identities_day_alert") <= per_day:
        return [Finding("invoiced_new_identities_day", ALERT, evidence)]
    return []


def misses(misses_hour: int, checks_hour: int, ip_misses_hour: int) -> list[Finding]:
    findings = []
    ratio = misses_hour / checks_hour if checks_hour else 0.0
    evidence = {"misses_last_hour": misses_hour, "checks_last_hour": checks_hour, "ratio": round(ratio, 2)}
    if misses_hour >= threshold("misses_per_hour_suspend"):
        findings.append(Finding("misses", SUSPEND, evidence))
    elif misses_hour >= threshold("misses_per_hour_step_up") and ratio >= threshold("miss_ratio_step_up"):
        findings.append(Finding("misses", STEP_UP, evidence))
    if ip_misses_hour >= threshold("ip_misses_per_hour_suspend"):
        findings.append(Finding("address_misses", SUSPEND, {"misses_from_address_last_hour": ip_misses_hour}))
    return findings


_DIGITS = re.compile(r"(\d+)")


def _numeric_tail(adherent: str) -> tuple[str, int] | None:
    """Split an adherent number into its non-numeric head and its last run of digits (``ADH-0042`` → ``ADH-``, 42)."""
    parts = _DIGITS.split(adherent)
    if len(parts) < 3:
        return None
    return "".join(parts[:-2]), int(parts[-2])


def sequential(recent_adherents: list[str]) -> list[Finding]:
    """Enumeration: many recent adherent numbers within ±20 of another one of the same form."""
    tails = [t for t in (_numeric_tail(a) for a in recent_adherents) if t is not None]
    close = 0
    for i, (head, number) in enumerate(tails):
        if any(
            h == head and n != number and abs(n - number) <= 20 for j, (h, n) in enumerate(tails) if j != i
        ):
            close += 1
    if close >= threshold("sequential_neighbours"):
        return [
            Finding(
                "sequential_identifiers", STEP_UP, {"close_adherent_numbers": close, "of_last": len(tails)}
            )
        ]
    return []


def organisation_volume(checks_last_24h: int, baseline: int | None) -> list[Finding]:
    ceiling = max(
        threshold("organisation_daily_floor"), int((baseline or 0) * threshold("organisation_daily_factor"))
    )
    if checks_last_24h > ceiling:
        return [
            Finding(
                "organisation_volume",
                ALERT,
                {"checks_last_24h": checks_last_24h, "ceiling": ceiling, "baseline": baseline},
            )
        ]
    return []
