"""Surveillance of a chunk of one actor's requests decided at once (the gate's chunked path: invoice lots).

A lot of invoices is decided chunk by chunk (rempart.gate.batch) rather than one invoice at a time, and
surveillance must contain an abusive lot exactly as it contains the same invoices sent one by one: no
more disclosures past a ceiling than the one-by-one path would let through. So, before a chunk is
decided, :func:`screen` reads the actor's counters once and says how many more of each kind the actor
may have (new people on accepted invoices, new people on other answers, misses); the gate stops the
chunk right after the request that reaches a ceiling or names a canary, records what it decided, and
:func:`observe` then counts the chunk and climbs the ladder — the next chunk is refused if the actor
was suspended or throttled, as the next single request would be.

Counting is set-wise too: one read and one batch of writes of the clientele memory, one counter update
for the accepted invoices and one for every other answer (which counts like a rights check).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rempart.surveillance import canaries, clientele, engine, policy
from rempart.surveillance.actors import actor_key
from rempart.surveillance.counters import DAY, HOUR, MINUTE, WEEK, Count, Distinct, get_store

_UNLIMITED = 1 << 60


def _left(value: int, *ceilings: int) -> int:
    """How many more the count may grow before it reaches the nearest ceiling still ahead of it."""
    ahead = [ceiling - value for ceiling in ceilings if ceiling > value]
    return min(ahead) if ahead else 1  # past every ceiling: one at a time, each judged by the ladder


@dataclass
class Screen:
    """What the actor may still do in this chunk; :meth:`take` says where the chunk must stop."""

    enabled: bool
    purpose: str
    known: set[int] = field(default_factory=set)  # grows as the chunk is decided
    learning: bool = True
    known_before: frozenset[int] = frozenset()  # the organisation's memory when the chunk began
    invoiced_left: int = _UNLIMITED
    checked_left: int = _UNLIMITED
    misses_left: int = _UNLIMITED

    def take(self, beneficiary_id: int | None, outcome: str) -> bool:
        """Count one decided request; True: the chunk stops after it (a ceiling is reached, or a canary)."""
        if not self.enabled:
            return False
        if beneficiary_id is None:
            if outcome == "no_match":
                self.misses_left -= 1
                return self.misses_left <= 0
            return False
        if canaries.canary_for(beneficiary_id) is not None:
            return True
        new = beneficiary_id not in self.known and not self.learning
        self.known.add(beneficiary_id)
        if not new:
            return False
        if self.purpose == "claim" and outcome == "covered":
            self.invoiced_left -= 1
            return self.invoiced_left <= 0
        self.checked_left -= 1
        return self.checked_left <= 0


def screen(actor, purpose: str, beneficiary_ids: list[int], now: float | None = None) -> Screen:
    """Read the actor's standing once for a chunk (no counter moves)."""
    if not engine.enabled():
        return Screen(enabled=False, purpose=purpose)
    now = engine.clock() if now is None else now
    key = actor_key(actor)
    known, learning = set(), True
    if actor.organisation_id is not None:
        known, learning = clientele.known(actor.organisation_id, beneficiary_ids, now)
    reads = [
        Count(f"{key}:invoiced_new", DAY, add=0),
        Count(f"{key}:new", HOUR, add=0),
        Count(f"{key}:new", DAY, add=0),
        Count(f"{key}:new", WEEK, add=0),
        Count(f"{key}:miss", HOUR, add=0),
    ]
    values = get_store().update(reads, [], now=now)
    threshold = policy.threshold
    per_hour, per_day, per_week = (values[f"{key}:new|{w}"] for w in ("hour", "day", "week"))
    checked_left = min(
        _left(per_hour, threshold("new_identities_hour_step_up")),
        _left(per_day, threshold("new_identities_day_step_up"), threshold("new_identities_day_suspend")),
        _left(per_week, threshold("new_identities_week_step_up"), threshold("new_identities_week_suspend")),
    )
    return Screen(
        enabled=True,
        purpose=purpose,
        known=set(known),
        learning=learning,
        known_before=frozenset(known),
        invoiced_left=_left(
            values[f"{key}:invoiced_new|day"],
            threshold("invoiced_new_identities_day_alert"),
            threshold("invoiced_new_identities_day_suspend"),
        ),
        checked_left=checked_left,
        misses_left=_left(values[f"{key}:miss|hour"], threshold("misses_per_hour_suspend")),
    )


def observe(
    actor, state, observations: list[engine.Observation], screened: Screen, now: float | None = None
) -> None:
    """Count a decided chunk (judged against ``screened``, its screen: the memory is not read twice) and
    respond."""
    if not engine.enabled() or not observations:
        return
    now = engine.clock() if now is None else now
    invoiced = [
        o for o in observations if o.purpose == "claim" and o.outcome == "covered" and o.beneficiary_id
    ]
    findings: list[policy.Finding] = []
    for observation in invoiced:
        canary = canaries.canary_for(observation.beneficiary_id)
        if canary is not None:
            canaries.record_hit(canary)
            findings.append(
                policy.Finding(
                    "canary",
                    policy.SUSPEND,
                    {"canary": canary.pk, "insurer": canary.insurer_id, "severity": "critical"},
                )
            )
    if invoiced and actor.organisation_id is not None:
        people = [o.beneficiary_id for o in invoiced]
        clientele.remember(actor.organisation_id, people, now)
        added = 0 if screened.learning else len(set(people) - screened.known_before)
        if added:
            key = actor_key(actor)
            values = get_store().update([Count(f"{key}:invoiced_new", DAY, add=added)], [], now=now)
            findings += policy.invoiced_new_identities(values[f"{key}:invoiced_new|day"], added)
    checked = [o for o in observations if not (o.purpose == "claim" and o.outcome == "covered")]
    if checked:
        findings += _checks(actor, state, checked, screened, now)
    if findings:
        engine.respond(actor, findings)


def _checks(
    actor, state, observations: list[engine.Observation], screened: Screen, now: float
) -> list[policy.Finding]:
    """Every answer that counts like a rights check, counted at once: the counters ``engine.after_check``
    moves, each moved by the chunk's count, and the signals judged on the values reached. The chunk
    stopped at the nearest ceiling (:func:`screen`), so judging at its end finds what one by one would.
    Step-ups raised when a count *reaches* a threshold are judged at every value the count went through.
    """
    key = actor_key(actor)
    organisation, ip = f"o:{actor.organisation_id}", f"ip:{actor.ip}"
    findings: list[policy.Finding] = []
    matched = [o.beneficiary_id for o in observations if o.beneficiary_id is not None]
    for person in matched:
        canary = canaries.canary_for(person)
        if canary is not None:
            canaries.record_hit(canary)
            findings.append(
                policy.Finding(
                    "canary",
                    policy.SUSPEND,
                    {"canary": canary.pk, "insurer": canary.insurer_id, "severity": "critical"},
                )
            )
    misses = [o for o in observations if o.outcome == "no_match"]
    total = len(observations)
    counts = [Count(key, MINUTE, add=total), Count(key, HOUR, add=total), Count(organisation, DAY, add=total)]
    if misses:
        counts += [Count(f"{key}:miss", HOUR, add=len(misses)), Count(f"{ip}:miss", HOUR, add=len(misses))]
    new = 0
    if matched and actor.organisation_id is not None:
        clientele.remember(actor.organisation_id, matched, now)
        new = 0 if screened.learning else len(set(matched) - screened.known_before)
    if new:
        counts += [
            Count(f"{key}:new", HOUR, add=new),
            Count(f"{key}:new", DAY, add=new),
            Count(f"{key}:new", WEEK, add=new),
        ]
    distincts = [Distinct(f"{key}:confirmed", str(person), (HOUR, DAY)) for person in matched]
    store = get_store()
    values = store.update(counts, distincts, now=now)
    findings += policy.velocity(actor.channel, values[f"{key}|minute"], values[f"{key}|hour"])
    if matched:
        findings += policy.confirmations(
            values[f"{key}:confirmed|distinct|hour"], values[f"{key}:confirmed|distinct|day"]
        )
    for back in range(new - 1, -1, -1):  # each value the counts went through, as one by one
        findings += policy.new_identities(
            values[f"{key}:new|hour"] - back,
            values[f"{key}:new|day"] - back,
            values[f"{key}:new|week"] - back,
        )
    if misses:
        findings += policy.misses(
            values[f"{key}:miss|hour"], values[f"{key}|hour"], values[f"{ip}:miss|hour"]
        )
        for observation in misses:
            findings += policy.sequential(store.recent(f"{key}:adherents", observation.adherent_number))
    findings += policy.organisation_volume(
        values[f"{organisation}|day"], engine.baselines.daily(actor.organisation_id)
    )
    return findings + engine.context_findings(actor, state)
