"""The surveillance engine, called by the recording gate around every rights check.

``before_check`` refuses what is switched off, stepped up (portal) or throttled (API), and counts the
refused attempts; ``after_check`` updates the shared counters, evaluates the signals and climbs the
response ladder (rempart.surveillance.policy). Side effects that must not be undone by a rollback or
that are slow (ending sessions, the email to the owner, the incident with its scope) run once the
check's transaction has committed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.lib import metrics
from rempart.surveillance import admission, canaries, clientele, policy, switches
from rempart.surveillance.actors import actor_key
from rempart.surveillance.counters import DAY, HOUR, MINUTE, WEEK, Count, Distinct, get_store
from rempart.surveillance.models import ActorState
from rempart.surveillance.policy import ALERT, STEP_UP, SUSPEND, Finding

log = logging.getLogger("rempart.surveillance")
KNOWN_IPS = 20
GRACE = dt.timedelta(minutes=2)


class CheckRefused(Exception):
    """The check is not answered; ``code`` is stable for API clients, ``message`` is French for people."""

    def __init__(self, code: str, message: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.retry_after = code, message, status, retry_after
        metrics.record_surveillance_refusal(code)  # here: every refusal is made by raising one of these


def clock() -> float:
    """Seconds since the epoch for the counters (a seam for tests that replay a day in a second)."""
    return time.time()


def enabled() -> bool:
    return settings.REMPART_SURVEILLANCE_ENABLED


# --- before the check ---------------------------------------------------------------------------------


def before_check(actor, card) -> ActorState | None:
    """Refuse what is suspended or switched off (always), then what the ladder holds back (when enabled)."""
    state = _admit(actor)
    refuse_switched_off(actor, card)
    return _hold_back(actor, state)


def before_chunk(actor) -> ActorState | None:
    """The same for a chunk of one actor's requests (invoice lots): the actor is admitted once; each card
    is then checked against the kill switches with :func:`refuse_switched_off`."""
    return _hold_back(actor, _admit(actor))


def is_switched_off(actor, card) -> bool:
    """Whether :func:`refuse_switched_off` would refuse (without raising)."""
    return switches.matching(actor, domain=card.domain, amc_number=card.amc_number) is not None


def refuse_switched_off(actor, card) -> None:
    switch = switches.matching(actor, domain=card.domain, amc_number=card.amc_number)
    if switch is not None and switch.target == switch.Target.INSURER and switch.insurer:
        # Tiers payant cut for one insurer's cards (e.g. an insurer that does not pay, rempart/billing/overdue.py):
        # say whose cards, so the professional asks the patient to pay and claims nothing.
        raise CheckRefused(
            "switched_off",
            _(
                "La vérification des droits est momentanément coupée par l'opérateur pour les cartes de "
                "%(insurer)s : le tiers payant n'est pas possible avec cet assureur pour l'instant. Faites régler "
                "le patient ou contactez le support de Rempart."
            )
            % {"insurer": switch.insurer.name},
            503,
        )
    if switch is not None:
        raise CheckRefused(
            "switched_off",
            _(
                "La vérification des droits est momentanément coupée par l'opérateur. "
                "Réessayez plus tard ou contactez le support de Rempart."
            ),
            503,
        )


def _hold_back(actor, state: ActorState | None) -> ActorState | None:
    """Throttled (API) or stepped up (portal): refused, and the refusal counted."""
    if not enabled() or state is None:
        return None
    now = timezone.now()
    if actor.channel == "api" and state.throttled_until and state.throttled_until > now:
        retry = max(1, int((state.throttled_until - now).total_seconds()) + 1)
        _blocked_attempt(actor, "rate_limited")
        raise CheckRefused(
            "rate_limited",
            _("trop de vérifications en peu de temps : réessayez dans %(seconds)s s") % {"seconds": retry},
            429,
            retry_after=retry,
        )
    if actor.channel != "api" and state.step_up_since:
        proved = actor.second_factor_at
        if proved is None or proved < state.step_up_since.timestamp():
            _blocked_attempt(actor, "step_up_required")
            raise CheckRefused(
                "step_up_required",
                _("Activité inhabituelle : confirmez votre second facteur pour continuer les vérifications."),
                403,
            )
        # This session proved the factor again, from here (rempart.accounts.stepup): it goes on. The hold stays
        # for the account's other sessions (a stolen one among them) until each proves it too. The first
        # release lets the minute's count drain before judging again.
        if state.grace_until is None or state.grace_until <= state.step_up_since:
            ActorState.objects.filter(pk=state.pk).update(grace_until=now + GRACE)
            state.grace_until = now + GRACE
    return state


_STATE_FIELDS = [f.name for f in ActorState._meta.concrete_fields]
_ADMISSION_SQL = (
    "SELECT u.suspended_at, t.suspended_at, o.status, {columns} FROM (SELECT 1 AS one) x "
    "LEFT JOIN accounts_user u ON u.id = %s LEFT JOIN accounts_apitoken t ON t.id = %s "
    "LEFT JOIN accounts_organisation o ON o.id = %s LEFT JOIN surveillance_actorstate s ON s.actor = %s"
)
_ADMISSION = None


def _admission_statement():
    """One prepared statement per check: the actor's standing (suspensions) and its surveillance state."""
    global _ADMISSION
    if _ADMISSION is None:
        from rempart.accounts.models import ApiToken, Organisation, User
        from rempart.lib import hot_sql

        columns = ", ".join(f"s.{ActorState._meta.get_field(n).column}" for n in _STATE_FIELDS)
        sql = _ADMISSION_SQL.format(columns=columns)  # column names from the model; values are parameters
        _ADMISSION = hot_sql.Statement(
            sql,
            [
                hot_sql.field(User, "suspended_at"),
                hot_sql.field(ApiToken, "suspended_at"),
                hot_sql.field(Organisation, "status"),
                *(ActorState._meta.get_field(n) for n in _STATE_FIELDS),
            ],
        )
    return _ADMISSION


def _admit(actor) -> ActorState | None:
    """Refuse a suspended account, token or organisation (a second lock behind the session middleware and
    the token check); return the actor's surveillance state, if any."""
    if actor.user_id is None and actor.token_id is not None:
        read = admission.take(actor.token_id)  # read with this request's token check (an API call)
        if read is not None:
            token_suspended, organisation_status, state = read
            if token_suspended or organisation_status == "suspended":
                raise CheckRefused(
                    "suspended", _("Ce compte, ce jeton ou cette organisation est suspendu."), 403
                )
            return state
    row = _admission_statement().first(
        [actor.user_id, actor.token_id, actor.organisation_id, actor_key(actor)]
    )
    user_suspended, token_suspended, organisation_status, *state = row
    if user_suspended or token_suspended or organisation_status == "suspended":
        raise CheckRefused("suspended", _("Ce compte, ce jeton ou cette organisation est suspendu."), 403)
    if state[0] is None:
        return None
    return ActorState.from_db(
        "default", [ActorState._meta.get_field(n).attname for n in _STATE_FIELDS], state
    )


def _blocked_attempt(actor, why: str) -> None:
    """A refused attempt is counted: whoever keeps pushing after a refusal is suspended."""
    key = actor_key(actor)
    values = get_store().update([Count(f"{key}:blocked", HOUR)], [], now=clock())
    blocked = values[f"{key}:blocked|hour"]
    if blocked > policy.threshold("blocked_attempts_suspend"):
        respond(
            actor,
            [Finding("blocked_attempts", SUSPEND, {"refused_attempts_last_hour": blocked, "refusal": why})],
        )


def count_refused_attempt(actor, why: str) -> None:
    """A refusal made before the gate (a session used from a context it is not bound to) counts the same."""
    metrics.record_surveillance_refusal(why)
    if enabled():
        _blocked_attempt(actor, why)


# --- after the check ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    beneficiary_id: int | None
    outcome: str
    adherent_number: str
    purpose: str = (
        ""  # the gate's purpose (rights_check, pec, claim, …): a PEC after a check is a clientele's sign
    )
    # The clientele's sight of this confirmation when it was committed with the ledger row (with_row below).
    sight: clientele.Sight | None = None


def with_row(actor, beneficiary_id: int | None, purpose: str) -> list:
    """What surveillance commits together with a check's ledger row (rempart.ledger.fast_append): a
    confirmation's place in the organisation's clientele memory. Empty when nothing is to be written."""
    if not enabled() or actor.organisation_id is None or purpose == "claim":
        return []
    now = clock()
    # The memory's start is read (and the memory seeded, the first time) for a miss as for a match: what runs
    # before the row is written must not depend on whether the card matched, failures included.
    clientele.history_since(actor.organisation_id, now)
    if beneficiary_id is None:
        return []
    return [clientele.observe_with_row(actor.organisation_id, beneficiary_id, now)]


def after_check(actor, state: ActorState | None, observation: Observation) -> None:
    if not enabled():
        return
    findings: list[Finding] = []
    if observation.beneficiary_id is not None:
        canary = canaries.canary_for(observation.beneficiary_id)
        if canary is not None:
            canaries.record_hit(canary)
            findings.append(
                Finding(
                    "canary",
                    SUSPEND,
                    {"canary": canary.pk, "insurer": canary.insurer_id, "severity": "critical"},
                )
            )
    key = actor_key(actor)
    organisation, ip = f"o:{actor.organisation_id}", f"ip:{actor.ip}"
    miss = 1 if observation.outcome == "no_match" else 0
    now = clock()
    if observation.purpose == "claim" and observation.outcome == "covered":
        # An invoice accepted for payment is not the list-working an oracle shows: its money goes to the
        # organisation's own bank account under its own name, for care it says it gave. A pharmacy invoices
        # hundreds of people it never checked online (they read the cards), often in one lot. The person joins
        # the organisation's clientele; canaries (above), switches and suspensions still apply; misses and
        # rejected invoices count like checks (docs/surveillance.md, "Invoices").
        # They are bounded by a budget of their own: new people invoiced by this actor in any 24 hours.
        if actor.organisation_id is not None and observation.beneficiary_id is not None:
            sight = clientele.observe(actor.organisation_id, observation.beneficiary_id, now)
            if sight.new and not sight.learning:
                values = get_store().update([Count(f"{key}:invoiced_new", DAY)], [], now=now)
                findings += policy.invoiced_new_identities(values[f"{key}:invoiced_new|day"])
        if findings:
            respond(actor, findings)
        return
    # Only what this check can change is read: the miss counters move on a miss, the confirmed sets on a match.
    counts = [Count(key, MINUTE), Count(key, HOUR), Count(organisation, DAY)]
    if miss:
        counts += [Count(f"{key}:miss", HOUR), Count(f"{ip}:miss", HOUR)]
    member = str(observation.beneficiary_id) if observation.beneficiary_id is not None else None
    distincts = []
    new_identity = False
    if member is not None:
        distincts = [Distinct(f"{key}:confirmed", member, (HOUR, DAY))]
        if actor.organisation_id is not None:
            sight = observation.sight or clientele.observe(
                actor.organisation_id, observation.beneficiary_id, now
            )
            # Someone the organisation never confirmed is new exactly once (it is remembered at once): plain
            # counts are the actor's distinct new identities.
            new_identity = sight.new and not sight.learning
        if new_identity:
            counts += [Count(f"{key}:new", HOUR), Count(f"{key}:new", DAY), Count(f"{key}:new", WEEK)]
    store = get_store()
    values = store.update(counts, distincts, now=now)
    findings += policy.velocity(actor.channel, values[f"{key}|minute"], values[f"{key}|hour"])
    if member is not None:
        findings += policy.confirmations(
            values[f"{key}:confirmed|distinct|hour"], values[f"{key}:confirmed|distinct|day"]
        )
    if new_identity:
        findings += policy.new_identities(
            values[f"{key}:new|hour"], values[f"{key}:new|day"], values[f"{key}:new|week"]
        )
    if miss:
        findings += policy.misses(
            values[f"{key}:miss|hour"], values[f"{key}|hour"], values[f"{ip}:miss|hour"]
        )
        findings += policy.sequential(store.recent(f"{key}:adherents", observation.adherent_number))
    findings += policy.organisation_volume(
        values[f"{organisation}|day"], baselines.daily(actor.organisation_id)
    )
    findings += context_findings(actor, state)
    if findings:
        respond(actor, findings)


def context_findings(actor, state: ActorState | None) -> list[Finding]:
    """New address, two addresses at once, unusual hour: alerts only (they explain, they do not block)."""
    findings = []
    now = timezone.now()
    key = actor_key(actor)
    if state is None:
        state = ActorState(actor=key)
    ips = list(state.known_ips)
    if actor.ip and actor.ip not in ips:
        if ips:
            signal = "token_new_address" if actor.token_id else "new_address"
            findings.append(Finding(signal, ALERT, {"address": actor.ip, "known": ips[-5:]}))
        ips = (ips + [actor.ip])[-KNOWN_IPS:]
    window = dt.timedelta(seconds=policy.threshold("two_addresses_seconds"))
    if (
        actor.ip and state.last_ip and state.last_ip != actor.ip and state.last_seen_at
        and now - state.last_seen_at < window
    ):  # fmt: skip
        findings.append(Finding("two_addresses", ALERT, {"addresses": [state.last_ip, actor.ip]}))
    if baselines.unusual_hour(actor.organisation_id, timezone.localtime(now).hour):
        findings.append(Finding("unusual_hour", ALERT, {"hour": timezone.localtime(now).hour}))
    changed = ips != state.known_ips or state.last_ip != actor.ip
    stale = state.last_seen_at is None or now - state.last_seen_at > dt.timedelta(seconds=60)
    if changed or stale:  # a write at most once a minute per actor on the quiet path
        ActorState.objects.update_or_create(
            actor=key, defaults={"known_ips": ips, "last_ip": actor.ip, "last_seen_at": now}
        )
    return findings


# --- the ladder ---------------------------------------------------------------------------------------


def respond(actor, findings: list[Finding]) -> None:
    """Climb to the highest rung the findings call for; a repeated step-up or throttle climbs one more."""
    from rempart.surveillance import responses

    top = max(f.level for f in findings)
    if top == STEP_UP:
        state, _created = ActorState.objects.get_or_create(actor=actor_key(actor))
        now = timezone.now()
        repeat = dt.timedelta(seconds=policy.threshold("repeat_level2_seconds"))
        recent = state.last_level2_at is not None and now - state.last_level2_at < repeat
        if state.grace_until and now < state.grace_until:
            top = ALERT  # just stepped up and proved: the findings are noted, nothing more
        elif recent and state.level2_count >= (1 if actor.channel == "api" else 2):
            findings = [
                *findings,
                Finding("repeated", SUSPEND, {"previous": state.last_level2_at.isoformat()}),
            ]
            top = SUSPEND
    strongest = [f for f in findings if f.level >= top] or findings
    responses.apply(actor, top, strongest, all_findings=findings)


class _Baselines:
    """Per-organisation daily volume (a high percentile over 30 days) and usual hours, from the ledger, cached."""

    TTL = 3600.0

    def __init__(self) -> None:
        self._cache: dict[int, tuple[float, int | None, set[int] | None]] = {}

    def _get(self, organisation_id: int | None):
        if organisation_id is None:
            return None, None
        cached = self._cache.get(organisation_id)
        if cached is None or time.monotonic() - cached[0] > self.TTL:
            daily, hours = _learn(organisation_id)
            cached = (time.monotonic(), daily, hours)
            self._cache[organisation_id] = cached
        return cached[1], cached[2]

    def daily(self, organisation_id: int | None) -> int | None:
        return self._get(organisation_id)[0]

    def unusual_hour(self, organisation_id: int | None, hour: int) -> bool:
        hours = self._get(organisation_id)[1]
        return hours is not None and hour not in hours

    def forget(self) -> None:
        self._cache.clear()


MIN_HISTORY_FOR_HOURS = 200


def _learn(organisation_id: int) -> tuple[int | None, set[int] | None]:
    from django.db.models import Count as SqlCount
    from django.db.models.functions import ExtractHour, TruncDate

    from rempart.ledger.models import Disclosure

    since = timezone.now() - dt.timedelta(days=30)
    today = timezone.localdate()
    rows = Disclosure.objects.filter(organisation_id=organisation_id, created_at__gte=since)
    per_day = sorted(
        n
        for day, n in rows.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=SqlCount("id"))
        .values_list("day", "n")
        if day != today
    )
    daily = per_day[int(0.95 * (len(per_day) - 1))] if per_day else None
    hours = dict(
        rows.annotate(hour=ExtractHour("created_at"))
        .values("hour")
        .annotate(n=SqlCount("id"))
        .values_list("hour", "n")
    )
    usual = {h for h, n in hours.items() if n} if sum(hours.values()) >= MIN_HISTORY_FOR_HOURS else None
    if usual is not None:  # the ledger's hours are UTC: compare in local time
        offset = round(timezone.localtime().utcoffset().total_seconds() / 3600)
        usual = {(h + offset) % 24 for h in usual}
    return daily, usual


baselines = _Baselines()


def after_commit(function, *args, **kwargs) -> None:
    transaction.on_commit(lambda: function(*args, **kwargs))
