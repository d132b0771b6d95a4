"""The security console (French): the alert queue, actor pages, kill switches and canaries.

For operator staff with the security or admin role only; anyone else gets a plain 404. Pages show what an
actor did (time, channel, domain, outcome, reference, address) and never whom it concerned: no beneficiary
identity is read here. Restoring what was suspended, switching back on what the system switched off and
reading the canaries' sealed card data ask for a fresh second factor (step-up).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncDate
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import ApiToken, KnownDevice, Role, User
from rempart.accounts.sessions import end_sessions
from rempart.accounts.stepup import step_up_required
from rempart.incidents import workflow
from rempart.incidents.models import Incident
from rempart.ledger.models import Disclosure
from rempart.registry.models import CareDomain, Insurer
from rempart.surveillance import bank_change, canaries, labels, switches
from rempart.surveillance.forms import PlantForm, SwitchOffForm
from rempart.surveillance.models import ActorState, Alert, Canary, Switch
from rempart.surveillance.policy import SUSPEND
from rempart.surveillance.responses import SIGNAL_LABELS

log = logging.getLogger("rempart.surveillance")

SECURITY_ROLES = {Role.SECURITY, Role.ADMIN}
CHART_DAYS = 14
RECENT_CHECKS = 50
ALERTS_PER_PAGE = 50

# The evidence an alert carries, in words (keys come from rempart.surveillance.policy and engine).
EVIDENCE_LABELS = {
    "checks_last_minute": gettext_lazy("vérifications dans la dernière minute"),
    "checks_last_hour": gettext_lazy("vérifications dans la dernière heure"),
    "ceiling": gettext_lazy("plafond"),
    "distinct_confirmed_this_hour": gettext_lazy("bénéficiaires distincts confirmés cette heure"),
    "distinct_confirmed_today": gettext_lazy("bénéficiaires distincts confirmés aujourd'hui"),
    "distinct_confirmed_last_hour": gettext_lazy("bénéficiaires distincts confirmés en 60 minutes"),
    "distinct_confirmed_last_24h": gettext_lazy("bénéficiaires distincts confirmés en 24 heures"),
    "new_identities_last_hour": gettext_lazy("personnes nouvelles pour l'organisation en 60 minutes"),
    "new_identities_last_24h": gettext_lazy("personnes nouvelles pour l'organisation en 24 heures"),
    "invoiced_new_identities_last_24h": gettext_lazy("personnes nouvelles facturées en 24 heures"),
    "new_identities_last_7_days": gettext_lazy("personnes nouvelles pour l'organisation en 7 jours"),
    "checks_last_24h": gettext_lazy("vérifications en 24 heures"),
    "misses_last_hour": gettext_lazy("sans correspondance dans la dernière heure"),
    "ratio": gettext_lazy("part sans correspondance"),
    "misses_from_address_last_hour": gettext_lazy("échecs depuis l'adresse dans la dernière heure"),
    "refused_attempts_last_hour": gettext_lazy("tentatives refusées dans la dernière heure"),
    "refusal": gettext_lazy("refus"),
    "previous": gettext_lazy("précédent palier"),
    "canary": gettext_lazy("canari"),
    "insurer": gettext_lazy("assureur"),
    "severity": gettext_lazy("gravité"),
    "address": gettext_lazy("adresse"),
    "known": gettext_lazy("adresses connues"),
    "addresses": gettext_lazy("adresses"),
    "hour": gettext_lazy("heure"),
    "actors": gettext_lazy("comptes ou jetons suspendus"),
    "close_adherent_numbers": gettext_lazy("numéros voisins"),
    "of_last": gettext_lazy("parmi les derniers"),
    "checks_today": gettext_lazy("vérifications aujourd'hui"),
    "baseline": gettext_lazy("habitude de l'organisation"),
    "signs": gettext_lazy("signes"),
    "why": gettext_lazy("constats"),
    "bank_change": gettext_lazy("changement d'IBAN n°"),
    "iban": gettext_lazy("nouvel IBAN"),
    "hold_until": gettext_lazy("en attente jusqu'au"),
    "amc_number": gettext_lazy("numéro AMC"),
    "name": gettext_lazy("nom"),
    "days": gettext_lazy("jours de retard"),
    "limit_days": gettext_lazy("retard admis par le contrat (jours)"),
    "statement": gettext_lazy("relevé"),
    "due_date": gettext_lazy("échéance"),
    "unpaid_cents": gettext_lazy("reste dû"),
    "amount_cents": gettext_lazy("montant"),
    "reason": gettext_lazy("code de rejet"),
    "reason_label": gettext_lazy("motif"),
    "returned_on": gettext_lazy("rejeté le"),
    "receipt": gettext_lazy("encaissement n°"),
}
# Keys the analyst does not need to read (shown elsewhere or internal references).
HIDDEN_EVIDENCE = {"severity", "sign_times", "insurer_id", "known_reason"}


# --- access ------------------------------------------------------------------------------------------


def security_staff(view):
    """Logged in, operator staff with the security or admin role: anyone else gets a plain 404.

    Applied outside ``step_up_required`` so that nobody else is ever sent to the second-factor prompt.
    """

    @login_required
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not roles.is_operator(request.user, SECURITY_ROLES):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def _back(request, default: str):
    """Back to the page the form was on (a local ``next``), or to ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect(default)


def _reason(request) -> str:
    """The motive a person gives for a suspension (optional; shown in the list of what is suspended)."""
    return " ".join(request.POST.get("reason", "").split())[:300]


def _can_see_incidents(user) -> bool:
    return roles.is_operator(
        user, {Role.SECURITY}
    )  # the incidents console is the analysts' (rempart.incidents)


# --- describing things -------------------------------------------------------------------------------


def _value(key: str, value, insurers: dict[int, str], facts: dict) -> str:
    if key == "insurer" and isinstance(value, int):
        return insurers.get(value, str(value))
    if key == "ratio" and isinstance(value, (int, float)):
        return f"{round(value * 100)} %"
    if key == "hour" and isinstance(value, int):
        return f"{value} h"
    if key in ("previous", "hold_until") and isinstance(value, str):
        return labels.when(value)  # ISO 8601 (an old row's already formatted date comes back as it is)
    if key in ("due_date", "returned_on") and isinstance(value, str):
        return labels.day(value)
    if key in ("unpaid_cents", "amount_cents") and isinstance(value, int):
        return labels.euros(value)
    if key == "refusal" and isinstance(value, str):
        return str(labels.REFUSALS.get(value, value))
    if key == "signs" and isinstance(value, list):
        names, times = bank_change.sign_labels(), facts.get("sign_times") or {}
        return ", ".join(
            f"{names.get(sign, sign)} ({labels.when(times[sign])})"
            if sign in times
            else str(names.get(sign, sign))
            for sign in value
        )
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} : {v}" for k, v in value.items())
    return str(value)


def evidence_lines(alert: Alert, insurers: dict[int, str]) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(signal in words, [(key in words, value)])] for one alert."""
    evidence = alert.evidence if isinstance(alert.evidence, dict) else {}
    lines = []
    for signal, facts in evidence.items():
        if not isinstance(facts, dict):
            facts = {"": facts}
        pairs = [
            (str(EVIDENCE_LABELS.get(key, key)), _value(key, value, insurers, facts))
            for key, value in facts.items()
            if key not in HIDDEN_EVIDENCE and not (key == "why" and "signs" in facts)
        ]
        lines.append((SIGNAL_LABELS.get(signal, signal), pairs))
    return lines


def _insurer_names(alerts) -> dict[int, str]:
    ids = {
        facts.get("insurer")
        for alert in alerts
        if isinstance(alert.evidence, dict)
        for facts in alert.evidence.values()
        if isinstance(facts, dict) and isinstance(facts.get("insurer"), int)
    }
    return {pk: f"{name} (AMC {amc})" for pk, name, amc in Insurer.objects.filter(pk__in=ids).values_list("pk", "name", "amc_number")}  # fmt: skip


def alert_rows(alerts) -> list[dict]:
    alerts = list(alerts)
    insurers = _insurer_names(alerts)
    return [
        {
            "alert": alert,
            "signal": SIGNAL_LABELS.get(alert.signal, alert.signal),
            "evidence": evidence_lines(alert, insurers),
            "response": labels.response_label(alert),
        }
        for alert in alerts
    ]


def _open_incidents(alerts) -> list[Incident]:
    ids = {a.incident_id for a in alerts if a.incident_id}
    return list(Incident.objects.filter(pk__in=ids).exclude(status=Incident.Status.CLOSED).order_by("pk"))


def _note_measure(alerts, text: str, by) -> None:
    """A containment done from the console goes into the timeline of the incidents its alerts opened."""
    for incident in _open_incidents(alerts):
        workflow.add_measure(incident, text, by=by)


# --- the alert queue ---------------------------------------------------------------------------------


@security_staff
@require_POST
def alert_status(request, pk: int):
    alert = get_object_or_404(Alert, pk=pk)
    status = request.POST.get("status")
    if status not in (Alert.Status.ACKNOWLEDGED, Alert.Status.RESOLVED):
        messages.error(request, _("Action inconnue."))
    elif alert.status == Alert.Status.RESOLVED:
        messages.info(request, _("Cette alerte est déjà résolue."))
    else:
        Alert.objects.filter(pk=alert.pk).update(
            status=status, handled_by=request.user, handled_at=timezone.now()
        )
        label = Alert.Status(status).label
        messages.success(request, _("Alerte n° %(pk)s : %(status)s.") % {"pk": alert.pk, "status": label})
    return _back(request, reverse("surveillance:alerts"))


# --- actor pages -------------------------------------------------------------------------------------


def activity_chart(checks) -> dict:
    """Checks per day over the last CHART_DAYS days (misses apart), laid out as an SVG bar chart."""
    today = timezone.localdate()
    first = today - dt.timedelta(days=CHART_DAYS - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    per_day: dict[dt.date, dict[str, int]] = {
        first + dt.timedelta(days=i): {"total": 0, "misses": 0} for i in range(CHART_DAYS)
    }
    rows = (
        checks.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "outcome")
        .annotate(n=Count("id"))
        .values_list("day", "outcome", "n")
    )
    for day, outcome, n in rows:
        if day in per_day:
            per_day[day]["total"] += n
            if outcome == Disclosure.Outcome.NO_MATCH:
                per_day[day]["misses"] += n
    top = max((d["total"] for d in per_day.values()), default=0)
    width, height, left, base, plot = 40, 170, 30, 140, 112  # one slot per day; bars grow up from ``base``
    bars = []
    for i, (day, counts) in enumerate(per_day.items()):
        total, missed = counts["total"], counts["misses"]
        total_h = round(plot * total / top) if top else 0
        miss_h = round(plot * missed / top) if top else 0
        x = left + i * width + 6
        bars.append(
            {
                "day": day,
                "label": date_format(day, "MONTH_DAY_FORMAT"),
                "total": total,
                "misses": missed,
                "x": x,
                "center": x + 14,
                "width": 28,
                "hit_y": base - total_h,
                "hit_h": total_h - miss_h,
                "miss_y": base - miss_h,
                "miss_h": miss_h,
                "value_y": base - total_h - 4,
                "today": day == today,
            }
        )
    return {
        "bars": bars,
        "top": top,
        "total": sum(b["total"] for b in bars),
        "misses": sum(b["misses"] for b in bars),
        "width": left + CHART_DAYS * width + 6,
        "height": height,
        "base": base,
        "left": left,
        "top_y": base - plot,
        "label_y": base + 18,
        "since": first,
    }


def _addresses(checks, state: ActorState | None, extra: list[str] = ()) -> list[dict]:
    """Every address seen for the actor: in the ledger (last CHART_DAYS days), by the surveillance, in sessions."""
    since = timezone.now() - dt.timedelta(days=CHART_DAYS)
    seen = {
        ip: {"address": ip, "checks": n, "last": last, "known": False, "session": False}
        for ip, n, last in checks.filter(created_at__gte=since, ip_address__isnull=False)
        .values("ip_address")
        .annotate(n=Count("id"), last=Max("created_at"))
        .values_list("ip_address", "n", "last")
    }
    for ip in state.known_ips if state else []:
        seen.setdefault(ip, {"address": ip, "checks": 0, "last": None, "known": False, "session": False})
        seen[ip]["known"] = True
    for ip in extra:
        if ip:
            seen.setdefault(ip, {"address": ip, "checks": 0, "last": None, "known": False, "session": False})
            seen[ip]["session"] = True
    epoch = timezone.make_aware(dt.datetime(2000, 1, 1))
    return sorted(seen.values(), key=lambda a: (a["last"] or epoch, a["checks"]), reverse=True)


def _recent_checks(checks) -> list[Disclosure]:
    # Only what the console may show: never the beneficiary, the insurer or the presented data.
    return list(
        checks.order_by("-created_at").only(
            "id", "created_at", "channel", "domain", "outcome", "reference", "ip_address", "purpose"
        )[:RECENT_CHECKS]
    )


def _system_suspension(alerts, suspended_at) -> Alert | None:
    """The alert of the automatic suspension in force, if the system made it (not a person)."""
    if suspended_at is None:
        return None
    return (
        alerts.filter(level__gte=SUSPEND, created_at__gte=suspended_at - dt.timedelta(seconds=1))
        .order_by("created_at")
        .first()
    )


def _actor_context(request, *, key: str, checks, alerts, suspended_at) -> dict:
    state = ActorState.objects.filter(actor=key).first()
    now = timezone.now()
    alerts = alerts.select_related("incident", "handled_by", "organisation")
    suspension = _system_suspension(alerts, suspended_at)
    return {
        "chart": activity_chart(checks),
        "checks": _recent_checks(checks),
        "state": state,
        "stepped_up": bool(state and state.holds_sessions(now)),
        "throttled": bool(state and state.throttled_until and state.throttled_until > now),
        "rows": alert_rows(alerts[:100]),
        "system_suspension": suspension,
        "system_suspension_signal": SIGNAL_LABELS.get(suspension.signal, suspension.signal)
        if suspension
        else "",
        "can_see_incidents": _can_see_incidents(request.user),
        "next": request.get_full_path(),
        "recent_days": CHART_DAYS,
        "recent_count": RECENT_CHECKS,
    }


@security_staff
def account_page(request, pk: int):
    user = get_object_or_404(User.objects.select_related("_membership__organisation"), pk=pk)
    checks = Disclosure.objects.filter(user_id=user.pk)
    sessions = list(UserSession.objects.filter(user=user).order_by("-last_seen_at"))
    context = _actor_context(
        request,
        key=f"u:{user.pk}",
        checks=checks,
        alerts=Alert.objects.filter(user=user, token__isnull=True),
        suspended_at=user.suspended_at,
    )
    context.update(
        actor=user,
        kind="account",
        organisation=user.membership.organisation if user.membership else None,
        sessions=sessions,
        devices=KnownDevice.objects.filter(user=user).order_by("-last_seen"),
        tokens=ApiToken.objects.filter(created_by=user).order_by("-created_at")[:20],
        addresses=_addresses(checks, context["state"], [s.ip for s in sessions]),
        switch_query=urlencode({"target": Switch.Target.ACCOUNT, "email": user.email}),
        active_switches=[
            s for s in Switch.objects.filter(on_at__isnull=True, user=user).select_related("user")
        ],
        is_self=user.pk == request.user.pk,
    )
    return render(request, "surveillance/actor.html", context)


@security_staff
def token_page(request, pk: int):
    token = get_object_or_404(ApiToken.objects.select_related("organisation", "created_by"), pk=pk)
    checks = Disclosure.objects.filter(token_id=token.pk)
    context = _actor_context(
        request,
        key=f"t:{token.pk}",
        checks=checks,
        alerts=Alert.objects.filter(token=token),
        suspended_at=token.suspended_at,
    )
    context.update(
        actor=token,
        kind="token",
        token_label=switches.token_label(token),
        organisation=token.organisation,
        addresses=_addresses(checks, context["state"], [token.last_used_ip]),
        switch_query=urlencode({"target": Switch.Target.TOKEN, "token": f"rmp_{token.prefix}"}),
        active_switches=[s for s in Switch.objects.filter(on_at__isnull=True, token=token)],
    )
    return render(request, "surveillance/actor.html", context)


@security_staff
@require_POST
def account_suspend(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    page = reverse("surveillance:account", args=[user.pk])
    if user.pk == request.user.pk:
        messages.error(request, _("Vous ne pouvez pas suspendre votre propre compte."))
        return redirect(page)
    if user.suspended_at:
        messages.info(request, _("Ce compte est déjà suspendu."))
        return redirect(page)
    user.suspended_at = timezone.now()
    user.save(update_fields=["suspended_at"])
    ended = end_sessions(user=user)
    record_event(
        "account.suspended", request=request, user=user, by=request.user.email, via="surveillance",
        reason=_reason(request),
    )  # fmt: skip
    _note_measure(
        Alert.objects.filter(user=user),
        f"compte {user.email} suspendu depuis la console de surveillance",
        request.user,
    )
    messages.success(
        request,
        _("Compte %(email)s suspendu ; %(n)s session(s) fermée(s).") % {"email": user.email, "n": ended},
    )
    return redirect(page)


@security_staff
@require_POST
@step_up_required
def account_restore(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    page = reverse("surveillance:account", args=[user.pk])
    if user.suspended_at is None:
        messages.info(request, _("Ce compte n'est pas suspendu."))
        return redirect(page)
    automatic = _system_suspension(Alert.objects.filter(user=user, token__isnull=True), user.suspended_at)
    User.objects.filter(pk=user.pk).update(suspended_at=None)
    record_event(
        "account.restored", request=request, user=user, by=request.user.email, via="surveillance",
        automatic=automatic is not None, alert=automatic.pk if automatic else None,
    )  # fmt: skip
    if automatic is not None:
        _note_measure([automatic], f"compte {user.email} rétabli par {request.user.email}", request.user)
        messages.success(
            request,
            _("Suspension automatique levée : compte %(email)s rétabli (second facteur confirmé).")
            % {"email": user.email},
        )
    else:
        messages.success(request, _("Compte %(email)s rétabli.") % {"email": user.email})
    return redirect(page)


@security_staff
@require_POST
def token_suspend(request, pk: int):
    token = get_object_or_404(ApiToken.objects.select_related("organisation"), pk=pk)
    page = reverse("surveillance:token", args=[token.pk])
    if token.suspended_at:
        messages.info(request, _("Ce jeton est déjà suspendu."))
        return redirect(page)
    ApiToken.objects.filter(pk=token.pk).update(suspended_at=timezone.now())
    record_event(
        "token.suspended", request=request, organisation=token.organisation, token=f"rmp_{token.prefix}",
        name=token.name, by=request.user.email, reason=_reason(request),
    )  # fmt: skip
    _note_measure(
        Alert.objects.filter(token=token),
        f"jeton {switches.token_label(token)} suspendu depuis la console de surveillance",
        request.user,
    )
    messages.success(request, _("Jeton %(token)s suspendu.") % {"token": switches.token_label(token)})
    return redirect(page)


@security_staff
@require_POST
@step_up_required
def token_restore(request, pk: int):
    token = get_object_or_404(ApiToken.objects.select_related("organisation"), pk=pk)
    page = reverse("surveillance:token", args=[token.pk])
    if token.suspended_at is None:
        messages.info(request, _("Ce jeton n'est pas suspendu."))
        return redirect(page)
    automatic = _system_suspension(Alert.objects.filter(token=token), token.suspended_at)
    ApiToken.objects.filter(pk=token.pk).update(suspended_at=None)
    record_event(
        "token.restored", request=request, organisation=token.organisation, token=f"rmp_{token.prefix}",
        name=token.name, by=request.user.email, automatic=automatic is not None,
        alert=automatic.pk if automatic else None,
    )  # fmt: skip
    if automatic is not None:
        _note_measure(
            [automatic], f"jeton {switches.token_label(token)} rétabli par {request.user.email}", request.user
        )
        messages.success(
            request,
            _("Suspension automatique levée : jeton %(token)s rétabli (second facteur confirmé).")
            % {"token": switches.token_label(token)},
        )
    else:
        messages.success(request, _("Jeton %(token)s rétabli.") % {"token": switches.token_label(token)})
    return redirect(page)


# --- kill switches -----------------------------------------------------------------------------------


@security_staff
def switches_panel(request):
    initial = {k: v for k, v in request.GET.items() if k in SwitchOffForm.base_fields}
    form = SwitchOffForm(request.POST or None, initial=initial or {"target": Switch.Target.ACCOUNT})
    if request.method == "POST" and form.is_valid():
        switch = switches.switch_off(
            target=form.cleaned_data["target"], reason=form.cleaned_data["reason"], by=request.user,
            **form.switch_fields(),
        )  # fmt: skip
        switch = Switch.objects.select_related("user", "token__organisation", "organisation", "insurer").get(
            pk=switch.pk
        )
        record_event(
            "switch.off", request=request, **switches.event_owner(switch), **switches.event_details(switch),
            by=request.user.email,
        )  # fmt: skip
        messages.success(
            request,
            _("Coupure activée : %(what)s — %(scope)s. Effective partout en quelques secondes.")
            % {"what": switches.target_label(switch), "scope": _switch_scope(switch)},
        )
        return redirect("surveillance:switches")
    related = ("user", "token__organisation", "organisation", "insurer", "off_by", "on_by")
    active = list(Switch.objects.filter(on_at__isnull=True).select_related(*related))
    history = list(
        Switch.objects.filter(on_at__isnull=False).select_related(*related).order_by("-on_at")[:20]
    )
    for switch in active + history:
        switch.what = switches.target_label(switch)
        switch.scope = _switch_scope(switch)
    context = {
        "form": form,
        "active": active,
        "history": history,
        "domains": dict(CareDomain.choices),
        "can_see_incidents": _can_see_incidents(request.user),
    }
    return render(request, "surveillance/switches.html", context)


def _switch_scope(switch: Switch) -> str:
    channel = switch.get_channel_display() if switch.channel else _("tous les canaux")
    domain = (
        _("domaine %(code)s (%(label)s)") % {"code": switch.domain, "label": CareDomain(switch.domain).label}
        if switch.domain in CareDomain.values
        else (switch.domain or _("tous les domaines de soins"))
    )
    return f"{channel}, {domain}"


@security_staff
@require_POST
def switch_on(request, pk: int):
    switch = get_object_or_404(Switch, pk=pk)
    if not switch.active:
        messages.info(request, _("Cette coupure est déjà levée."))
        return redirect("surveillance:switches")
    if switch.by_system:  # what the system cut is put back only with a fresh second factor
        return step_up_required(_switch_on)(request, switch)
    return _switch_on(request, switch)


def _switch_on(request, switch: Switch):
    switches.switch_on(switch, by=request.user)
    switch = Switch.objects.select_related("user", "token__organisation", "organisation", "insurer").get(
        pk=switch.pk
    )
    record_event(
        "switch.on", request=request, **switches.event_owner(switch), **switches.event_details(switch),
        by=request.user.email, by_system=switch.by_system,
    )  # fmt: skip
    messages.success(request, _("Coupure levée : %(what)s.") % {"what": switches.target_label(switch)})
    return redirect("surveillance:switches")


# --- canaries ----------------------------------------------------------------------------------------


@security_staff
def canary_panel(request):
    form = PlantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        insurer, count = form.cleaned_data["insurer"], form.cleaned_data["count"]
        try:
            planted = canaries.plant(insurer, count, by=request.user)
        except (ValueError, RuntimeError) as exc:
            log.warning("canary planting for insurer %s failed: %s", insurer.pk, exc)
            messages.error(
                request,
                _("Les canaris n'ont pas pu être plantés pour %(name)s : %(error)s")
                % {"name": insurer.name, "error": exc},
            )
        else:
            log.info("%s planted %s canaries for insurer %s", request.user.email, len(planted), insurer.pk)
            record_event("canary.planted", request=request, insurer=insurer.amc_number, canaries=len(planted))
            messages.success(
                request,
                _("%(n)s canari(s) planté(s) pour %(name)s.") % {"n": len(planted), "name": insurer.name},
            )
            return redirect("surveillance:canaries")
    live = Q(retired_at__isnull=True)
    per_insurer = {
        row["insurer"]: row
        for row in Canary.objects.values("insurer").annotate(
            active=Count("id", filter=live),
            retired=Count("id", filter=~live),
            first=Min("created_at"),
            latest=Max("created_at"),
            last_hit=Max("last_hit_at"),
            hit=Count("id", filter=Q(last_hit_at__isnull=False)),
        )
    }
    insurers = []
    for insurer in Insurer.objects.order_by("name"):
        insurer.canaries = per_insurer.get(insurer.pk)
        insurers.append(insurer)
    planted = Canary.objects.select_related("insurer", "created_by").order_by("-created_at")[:100]
    context = {
        "form": form,
        "insurers": insurers,
        "planted": planted,
        "can_see_incidents": _can_see_incidents(request.user),
    }
    return render(request, "surveillance/canaries.html", context)


@security_staff
@never_cache
@step_up_required
def canary_cards(request, pk: int):
    """The sealed card data of an insurer's live canaries: for investigators, behind a fresh second factor."""
    insurer = get_object_or_404(Insurer, pk=pk)
    planted = list(Canary.objects.filter(insurer=insurer, retired_at__isnull=True).order_by("created_at"))
    cards = [(canary, canaries.sealed_card(canary)) for canary in planted]
    log.warning(
        "sealed card data of %s canaries of insurer %s shown to %s",
        len(cards),
        insurer.pk,
        request.user.email,
    )
    record_event("canary.revealed", request=request, insurer=insurer.amc_number, canaries=len(cards))
    context = {"insurer": insurer, "cards": cards, "can_see_incidents": _can_see_incidents(request.user)}
    return render(request, "surveillance/canary_cards.html", context)
