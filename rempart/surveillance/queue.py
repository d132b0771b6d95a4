"""The alert queue's rules: its order, and who an alert may be assigned to.

An alert is followed up by one member of the operator's security team (security or admin role, not
suspended); assigning, reassigning and unassigning are security events.
"""

from __future__ import annotations

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, Role, User
from rempart.surveillance.models import Alert

SECURITY_ROLES = (Role.SECURITY, Role.ADMIN)


class AssignmentRefused(ValueError):
    """The person named may not follow alerts up (message safe to show)."""


def ordered(alerts: QuerySet) -> QuerySet:
    """Open first, then acknowledged, then resolved; the gravest first; the latest first."""
    status = Case(
        When(status=Alert.Status.OPEN, then=Value(0)),
        When(status=Alert.Status.ACKNOWLEDGED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    severity = Case(
        When(severity=Alert.Severity.CRITICAL, then=Value(0)),
        When(severity=Alert.Severity.WARNING, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return alerts.annotate(rank=status, weight=severity).order_by("rank", "weight", "-created_at", "-pk")


def security_team() -> QuerySet:
    """Whom alerts may be assigned to: the operator's security and admin members who are not suspended."""
    return User.objects.filter(
        _membership__organisation__kind=Organisation.Kind.OPERATOR,
        _membership__role__in=SECURITY_ROLES,
        suspended_at__isnull=True,
        is_active=True,
    ).order_by("email")


def assign(alert: Alert, assignee: User | None, *, by: User, request=None) -> bool:
    """Give the alert to ``assignee`` (None: to nobody). Returns whether anything changed."""
    if assignee is not None and not security_team().filter(pk=assignee.pk).exists():
        raise AssignmentRefused("not a member of the security team")
    if alert.assigned_to_id == (assignee.pk if assignee else None):
        return False
    previous = alert.assigned_to.email if alert.assigned_to_id else None
    now = timezone.now() if assignee else None
    Alert.objects.filter(pk=alert.pk).update(assigned_to=assignee, assigned_at=now)
    alert.assigned_to, alert.assigned_at = assignee, now
    record_event(
        "alert.assigned", request=request, user=by, alert=alert.pk, signal=alert.signal,
        assignee=assignee.email if assignee else None, previous=previous, by=by.email,
    )  # fmt: skip
    return True
