"""Everything suspended or cut, in one list: accounts, tokens, organisations and the kill switches in force.

Each entry says who or what did it — a person (their address, from the security event of the act) or the
surveillance (the alert that decided it, by its number) — why (the alert's signal, or the person's motive),
and since when. Suspensions keep no author of their own: it is read back from the alert or the event
recorded at the time, so rows suspended before this list existed are described too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rempart.accounts.models import ApiToken, Organisation, SecurityEvent, User
from rempart.surveillance import switches
from rempart.surveillance.models import Alert, Switch
from rempart.surveillance.policy import SUSPEND, SUSPEND_ORGANISATION
from rempart.surveillance.responses import SIGNAL_LABELS

KINDS = {
    "account": gettext_lazy("Comptes"),
    "token": gettext_lazy("Jetons d'API"),
    "organisation": gettext_lazy("Organisations"),
    "switch": gettext_lazy("Coupures"),
}
LIMIT = 500  # per kind: a list longer than this is an outage, not a queue
SLACK = dt.timedelta(seconds=2)  # the alert or event is written just after the suspension itself


@dataclass
class Entry:
    kind: str  # a key of KINDS
    what: str  # the thing, in words
    since: dt.datetime | None
    by_system: bool
    by: str = ""  # a person's address when not the system
    alert: Alert | None = None  # the alert that decided it, when the system did
    why: str = ""
    organisation: str = ""
    link: str = ""  # the thing's console page
    lift: str = ""  # where a POST lifts it (the console's existing actions)
    lift_needs_step_up: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def kind_label(self) -> str:
        return str(KINDS[self.kind])


def _system_alert(alerts, since: dt.datetime | None) -> Alert | None:
    """The surveillance's alert of a suspension in force: one of suspension level raised when it began."""
    if since is None:
        return None
    return alerts.filter(created_at__gte=since - SLACK).order_by("created_at", "pk").first()


def _person_event(events, since: dt.datetime | None) -> SecurityEvent | None:
    """The latest security event of a person's suspension, from when it began (none: older than the event)."""
    if since is not None:
        events = events.filter(created_at__gte=since - SLACK)
    return events.exclude(details__by="surveillance").order_by("-created_at", "-pk").first()


def _why_system(alert: Alert) -> str:
    return str(SIGNAL_LABELS.get(alert.signal, _("signal de surveillance")))


def _why_person(event: SecurityEvent | None) -> str:
    reason = (event.details or {}).get("reason", "") if event else ""
    return reason or _("suspension décidée à la main (aucun motif indiqué)")


def _by_person(event: SecurityEvent | None) -> str:
    by = (event.details or {}).get("by", "") if event else ""
    return by or _("une personne (non consignée)")


def accounts() -> list[Entry]:
    from django.urls import reverse

    entries = []
    users = (
        User.objects.filter(suspended_at__isnull=False)
        .select_related("_membership__organisation")
        .order_by("-suspended_at")[:LIMIT]
    )
    for user in users:
        alert = _system_alert(
            Alert.objects.filter(user=user, token__isnull=True, level__gte=SUSPEND), user.suspended_at
        )
        event = None if alert else _person_event(
            SecurityEvent.objects.filter(user=user, tag="account.suspended"), user.suspended_at
        )  # fmt: skip
        membership = user.membership
        entries.append(
            Entry(
                kind="account",
                what=user.email,
                since=user.suspended_at,
                by_system=alert is not None,
                by="" if alert else _by_person(event),
                alert=alert,
                why=_why_system(alert) if alert else _why_person(event),
                organisation=membership.organisation.name if membership else "",
                link=reverse("surveillance:account", args=[user.pk]),
                lift=reverse("surveillance:account_restore", args=[user.pk]),
                lift_needs_step_up=True,
            )
        )
    return entries


def tokens() -> list[Entry]:
    from django.urls import reverse

    entries = []
    suspended = (
        ApiToken.objects.filter(suspended_at__isnull=False, revoked_at__isnull=True)
        .select_related("organisation")
        .order_by("-suspended_at")[:LIMIT]
    )
    for token in suspended:
        alert = _system_alert(Alert.objects.filter(token=token, level__gte=SUSPEND), token.suspended_at)
        event = None if alert else _person_event(
            SecurityEvent.objects.filter(tag="token.suspended", details__token=f"rmp_{token.prefix}"),
            token.suspended_at,
        )  # fmt: skip
        entries.append(
            Entry(
                kind="token",
                what=switches.token_label(token),
                since=token.suspended_at,
                by_system=alert is not None,
                by="" if alert else _by_person(event),
                alert=alert,
                why=_why_system(alert) if alert else _why_person(event),
                organisation=token.organisation.name,
                link=reverse("surveillance:token", args=[token.pk]),
                lift=reverse("surveillance:token_restore", args=[token.pk]),
                lift_needs_step_up=True,
            )
        )
    return entries


def organisations() -> list[Entry]:
    from django.urls import reverse

    entries = []
    suspended = Organisation.objects.filter(status=Organisation.Status.SUSPENDED).exclude(
        kind=Organisation.Kind.OPERATOR
    )
    for organisation in suspended.order_by("name")[:LIMIT]:
        # An organisation keeps no date of suspension: the latest act that suspended it says when and who.
        alert = (
            Alert.objects.filter(organisation=organisation, level__gte=SUSPEND_ORGANISATION)
            .order_by("-created_at", "-pk")
            .first()
        )
        event = (
            SecurityEvent.objects.filter(organisation=organisation, tag="organisation.suspended")
            .exclude(details__by="surveillance")
            .order_by("-created_at", "-pk")
            .first()
        )
        by_system = alert is not None and (event is None or alert.created_at >= event.created_at - SLACK)
        since = alert.created_at if by_system else (event.created_at if event else None)
        entries.append(
            Entry(
                kind="organisation",
                what=organisation.name,
                since=since,
                by_system=by_system,
                by="" if by_system else _by_person(event),
                alert=alert if by_system else None,
                why=_why_system(alert) if by_system else _why_person(event),
                organisation=str(organisation.get_kind_display()),
                lift=reverse("accounts:operator_restore_organisation", args=[organisation.pk]),
                lift_needs_step_up=True,
            )
        )
    return entries


def cuts() -> list[Entry]:
    """The kill switches in force (what they cut, on which channel and domain, with their motive)."""
    from django.urls import reverse

    active = Switch.objects.filter(on_at__isnull=True).select_related(
        "user", "token__organisation", "organisation", "insurer", "off_by"
    )
    entries = []
    for switch in active.order_by("-off_at")[:LIMIT]:
        entries.append(
            Entry(
                kind="switch",
                what=switches.target_label(switch),
                since=switch.off_at,
                by_system=switch.by_system,
                by="" if switch.by_system else (switch.off_by.email if switch.off_by else _by_person(None)),
                why=switch.reason,
                lift=reverse("surveillance:switch_on", args=[switch.pk]),
                lift_needs_step_up=switch.by_system,
                extra={"channel": switch.get_channel_display() if switch.channel else ""},
            )
        )
    return entries


def everything(kind: str = "") -> list[Entry]:
    """Every suspension and cut in force (``kind``: only that one), the latest first."""
    gather = {"account": accounts, "token": tokens, "organisation": organisations, "switch": cuts}
    entries = []
    for name, collect in gather.items():
        if not kind or kind == name:
            entries += collect()
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    return sorted(entries, key=lambda e: e.since or epoch, reverse=True)


def counts() -> dict[str, int]:
    """How many of each kind are in force (the filter's tallies)."""
    return {
        "account": User.objects.filter(suspended_at__isnull=False).count(),
        "token": ApiToken.objects.filter(suspended_at__isnull=False, revoked_at__isnull=True).count(),
        "organisation": Organisation.objects.filter(
            Q(status=Organisation.Status.SUSPENDED), ~Q(kind=Organisation.Kind.OPERATOR)
        ).count(),
        "switch": Switch.objects.filter(on_at__isnull=True).count(),
    }
