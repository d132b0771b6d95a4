"""The rungs of the ladder: alert, step-up or throttle, suspension with an incident, organisation suspension.

Every rung is recorded (an Alert row, a security event for the organisation, the incident's timeline).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from rempart.accounts.events import record_event
from rempart.accounts.models import ApiToken, Membership, Organisation, Role, User
from rempart.surveillance import labels, policy
from rempart.surveillance.models import ActorState, Alert
from rempart.surveillance.policy import ALERT, STEP_UP, SUSPEND, SUSPEND_ORGANISATION, Finding

log = logging.getLogger("rempart.surveillance")
DEDUPE = dt.timedelta(hours=1)
_recent_alerts: dict[tuple, dt.datetime] = {}  # per process: (signal, user, token) → last time seen
SCOPE_DAYS = 30

SIGNAL_LABELS = {
    "velocity_minute": _("trop de vérifications par minute"),
    "velocity_hour": _("trop de vérifications par heure"),
    "confirmed_hour": _("trop de bénéficiaires confirmés dans l'heure"),
    "confirmed_day": _("trop de bénéficiaires confirmés dans la journée"),
    "new_identities_hour": _("trop de personnes jamais vues par l'organisation en une heure"),
    "new_identities_day": _("trop de personnes jamais vues par l'organisation en 24 heures"),
    "invoiced_new_identities_day": _(
        "trop de factures pour des personnes jamais vues par l'organisation en 24 heures"
    ),
    "new_identities_week": _("trop de personnes jamais vues par l'organisation en 7 jours"),
    "misses": _("trop de vérifications sans correspondance"),
    "address_misses": _("trop d'échecs depuis une même adresse"),
    "sequential_identifiers": _("numéros d'adhérent qui se suivent (énumération)"),
    "organisation_volume": _("volume inhabituel pour l'organisation"),
    "blocked_attempts": _("tentatives répétées malgré le blocage"),
    "repeated": _("comportement anormal répété"),
    "canary": _("bénéficiaire témoin (canari) présenté : fuite de données du registre"),
    "new_address": _("nouvelle adresse pour ce compte"),
    "token_new_address": _("jeton utilisé depuis une adresse inconnue"),
    "two_addresses": _("compte actif depuis deux adresses à la fois"),
    "unusual_hour": _("activité hors des heures habituelles de l'organisation"),
    "suspended_actors": _("plusieurs comptes ou jetons suspendus dans l'organisation"),
    "session_context_changed": _("session utilisée depuis une autre adresse ou un autre appareil"),
    "insurer_overdue": _("assureur en retard de paiement au-delà de la limite de son contrat"),
    "insurer_debit_returned": _("prélèvement SEPA d'un assureur rejeté par sa banque"),
    "bank_change_suspicious": _(
        "changement d'IBAN peu après un nouvel appareil, une nouvelle adresse ou un changement d'identifiants"
    ),
}


def _severity(level: int, findings: list[Finding]) -> str:
    if level >= SUSPEND or any(f.signal == "canary" for f in findings):
        return Alert.Severity.CRITICAL
    if level == STEP_UP or any(f.signal in ("two_addresses", "token_new_address") for f in findings):
        return Alert.Severity.WARNING
    return Alert.Severity.INFO


def _actor_fields(actor) -> dict:
    return {
        "user_id": actor.user_id,
        "token_id": actor.token_id,
        "organisation_id": actor.organisation_id,
        "ip_address": actor.ip,
    }


def alert(
    actor, level: int, findings: list[Finding], response: str, params: dict | None = None
) -> Alert | None:
    """An Alert row for the console (alert-level ones at most once an hour per actor and signal); ``response``
    is a code of rempart.surveillance.labels.RESPONSES."""
    return _alert(actor, level, findings, response, params)


def _alert(
    actor, level: int, findings: list[Finding], response: str, params: dict | None = None
) -> Alert | None:
    now = timezone.now()
    signal = findings[0].signal
    if level == ALERT:  # the same explanation once an hour is enough
        memo = (signal, actor.user_id, actor.token_id)
        if memo in _recent_alerts and now - _recent_alerts[memo] < DEDUPE:
            return None  # this process raised it within the hour: no query on the hot path
        recent = Alert.objects.filter(
            signal=signal, user_id=actor.user_id, token_id=actor.token_id, created_at__gte=now - DEDUPE
        )
        _recent_alerts[memo] = now
        if recent.exists():
            return None
    evidence = {f.signal: f.evidence for f in findings}
    return Alert.objects.create(
        severity=_severity(level, findings), signal=signal, level=level, response=response,
        response_params=params or {}, evidence=evidence, **_actor_fields(actor),
    )  # fmt: skip


def apply(actor, level: int, findings: list[Finding], *, all_findings: list[Finding] | None = None) -> None:
    if level <= ALERT:
        for finding in all_findings or findings:
            _alert(actor, ALERT, [finding], "")
        return
    if level == STEP_UP:
        _step_up(actor, findings)
        return
    _suspend_actor(actor, findings)
    if level >= SUSPEND_ORGANISATION:
        _suspend_organisation(actor.organisation_id, findings)


def _step_up(actor, findings: list[Finding]) -> None:
    from rempart.surveillance.actors import actor_key

    now = timezone.now()
    state, _created = ActorState.objects.get_or_create(actor=actor_key(actor))
    repeat = dt.timedelta(seconds=policy.threshold("repeat_level2_seconds"))
    recent = state.last_level2_at is not None and now - state.last_level2_at < repeat
    state.level2_count = state.level2_count + 1 if recent else 1
    state.last_level2_at = now
    if actor.channel == "api":
        state.throttled_until = now + dt.timedelta(seconds=policy.threshold("throttle_seconds"))
        response, params = labels.THROTTLED, {"until": state.throttled_until.isoformat()}
        tag = "surveillance.throttled"
    else:
        state.step_up_since = now
        response, params = labels.STEP_UP, {}
        tag = "surveillance.step_up"
    state.save()
    _alert(actor, STEP_UP, findings, response, params)
    organisation = Organisation.objects.filter(pk=actor.organisation_id).first()
    record_event(tag, user=User.objects.filter(pk=actor.user_id).first() if actor.user_id else None,
                 organisation=organisation, signal=findings[0].signal)  # fmt: skip


def _suspend_actor(actor, findings: list[Finding]) -> None:
    now = timezone.now()
    label = ""
    if actor.token_id:
        token = ApiToken.objects.filter(pk=actor.token_id).first()
        if token is None or token.suspended_at:
            return
        ApiToken.objects.filter(pk=token.pk).update(suspended_at=now)
        label = f"jeton rmp_{token.prefix}… ({token.name})"
        response = labels.TOKEN_SUSPENDED
        user = None
    else:
        user = User.objects.filter(pk=actor.user_id).first()
        if user is None or user.suspended_at:
            return
        User.objects.filter(pk=user.pk).update(suspended_at=now)
        label = f"compte {user.email}"
        response = labels.ACCOUNT_SUSPENDED
    alert = _alert(actor, SUSPEND, findings, response)
    organisation = Organisation.objects.filter(pk=actor.organisation_id).first()
    record_event("surveillance.suspended", user=user, organisation=organisation, signal=findings[0].signal,
                 actor=label)  # fmt: skip
    transaction.on_commit(lambda: _after_suspension(actor, label, findings, alert.pk if alert else None))
    _maybe_suspend_organisation(actor, findings)


def _after_suspension(actor, label: str, findings: list[Finding], alert_id: int | None) -> None:
    """Once committed: sessions ended, the owners told, an incident opened with its scope attached."""
    from rempart.accounts.sessions import end_sessions
    from rempart.incidents import workflow
    from rempart.incidents.jobs import enqueue_suspension_scope
    from rempart.incidents.models import Incident

    if actor.user_id:
        end_sessions(user_id=actor.user_id)
    with translation.override("fr"):  # the owners' email and the incident are written in French
        reasons = "; ".join(str(SIGNAL_LABELS.get(f.signal, f.signal)) for f in findings)
    _tell_owners(actor.organisation_id, label, reasons)
    now = timezone.now()
    incident = workflow.open_incident(
        title=f"Suspension automatique : {label}",
        detected_at=now,
        description=f"Signal : {reasons}.",
        source=Incident.Source.ALERT,
    )
    workflow.add_measure(incident, f"{label} suspendu automatiquement")
    if alert_id:
        Alert.objects.filter(pk=alert_id).update(incident=incident)
    # The scope reads the whole ledger (verification, then the actor's activity): a worker freezes it.
    enqueue_suspension_scope(
        incident.pk,
        user_id=actor.user_id if actor.user_id and not actor.token_id else None,
        token_id=actor.token_id,
        since=now - dt.timedelta(days=SCOPE_DAYS),
        label=f"Activité de {label} ({SCOPE_DAYS} jours)",
    )


def _tell_owners(organisation_id: int | None, label: str, reasons: str) -> None:
    owners = list(
        Membership.objects.filter(
            organisation_id=organisation_id, role=Role.OWNER, user__suspended_at__isnull=True
        ).values_list("user__email", flat=True)
    )
    if not owners:
        return
    send_mail(
        "Rempart : suspension automatique dans votre organisation",
        f"Bonjour,\n\nRempart a suspendu automatiquement le {label} de votre organisation : {reasons}.\n\n"
        "Si cette activité ne vient pas de vous, quelqu'un a peut-être obtenu ses identifiants : l'équipe sécurité "
        "de Rempart vous contactera. Pour rétablir l'accès, contactez le support de Rempart.\n\n— Rempart",
        settings.DEFAULT_FROM_EMAIL,
        owners,
    )


def _maybe_suspend_organisation(actor, findings: list[Finding]) -> None:
    since = timezone.now() - dt.timedelta(hours=24)
    suspended = Alert.objects.filter(
        organisation_id=actor.organisation_id, level__gte=SUSPEND, created_at__gte=since
    )
    actors = {(a.user_id, a.token_id) for a in suspended}
    if len(actors) >= policy.threshold("suspended_actors_for_organisation"):
        _suspend_organisation(
            actor.organisation_id,
            [Finding("suspended_actors", SUSPEND_ORGANISATION, {"actors": len(actors)})],
        )


def _suspend_organisation(organisation_id: int | None, findings: list[Finding]) -> None:
    organisation = (
        Organisation.objects.filter(pk=organisation_id).exclude(kind=Organisation.Kind.OPERATOR).first()
    )
    if organisation is None or organisation.is_suspended:
        return
    Organisation.objects.filter(pk=organisation.pk).update(status=Organisation.Status.SUSPENDED)
    Alert.objects.create(
        severity=Alert.Severity.CRITICAL, signal=findings[0].signal, level=SUSPEND_ORGANISATION,
        response=labels.ORGANISATION_SUSPENDED, organisation=organisation,
        evidence={f.signal: f.evidence for f in findings},
    )  # fmt: skip
    record_event("organisation.suspended", organisation=organisation, by="surveillance")
    from rempart.accounts.sessions import end_sessions

    transaction.on_commit(lambda: end_sessions(user___membership__organisation=organisation))
