"""The alert queue (filtered, refreshing by itself, assignable) and the list of everything suspended.

Same access as the rest of the console (rempart.surveillance.views.security_staff): operator security and
admin staff only, a plain 404 for anyone else. The queue's live part is also served alone (``live``) for
the page's small polling script; without JavaScript the page reloads itself with its filters.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from rempart.accounts.models import User
from rempart.lib.db_routing import reads_may_lag
from rempart.surveillance import queue, suspended
from rempart.surveillance.forms import AlertFilterForm
from rempart.surveillance.models import Alert, Switch
from rempart.surveillance.views import _back, _can_see_incidents, alert_rows, security_staff

ALERTS_PER_PAGE = 50
REFRESH_SECONDS = 30  # the live part's polling period, and the page's reload without JavaScript
FILTERS = ("status", "severity", "actor", "organisation", "signal", "since", "until", "assigned")


def _queue_context(request) -> dict:
    form = AlertFilterForm(request.GET or None)
    form.is_valid()  # the valid filters apply; the others are shown in error
    alerts = Alert.objects.select_related(
        "user", "token", "organisation", "incident", "handled_by", "assigned_to"
    )
    alerts = queue.ordered(form.filter(alerts, request.user))
    page = Paginator(alerts, ALERTS_PER_PAGE).get_page(request.GET.get("page"))
    open_counts = dict(
        Alert.objects.filter(status=Alert.Status.OPEN)
        .values("severity")
        .annotate(n=Count("id"))
        .values_list("severity", "n")
    )
    filters = {k: v for k, v in request.GET.items() if k in FILTERS and v}
    return {
        "rows": alert_rows(page),
        "page": page,
        "form": form,
        "filter_query": urlencode(filters),
        "open_counts": [
            (value, label, open_counts.get(value, 0)) for value, label in reversed(Alert.Severity.choices)
        ],
        "active_switches": Switch.objects.filter(on_at__isnull=True).count(),
        "can_see_incidents": _can_see_incidents(request.user),
        "next": reverse("surveillance:alerts") + (f"?{request.GET.urlencode()}" if request.GET else ""),
        "team": list(queue.security_team()),
        "refreshed_at": timezone.now(),
        "refresh_seconds": REFRESH_SECONDS,
        "live_url": reverse("surveillance:alerts_live"),
    }


@security_staff
@never_cache
@reads_may_lag
def alert_queue(request):
    return render(request, "surveillance/alerts.html", _queue_context(request))


@security_staff
@never_cache
@reads_may_lag
def alert_queue_live(request):
    """The queue's live part alone (tallies and table), with the same filters: the page's script swaps it in."""
    return render(request, "surveillance/_alerts_live.html", _queue_context(request))


@security_staff
@require_POST
def alert_assign(request, pk: int):
    alert = get_object_or_404(Alert.objects.select_related("assigned_to"), pk=pk)
    choice = request.POST.get("assignee", "").strip()
    assignee = None
    if choice == "me":
        assignee = request.user
    elif choice.isdigit():
        assignee = User.objects.filter(pk=int(choice)).first()
        if assignee is None:
            messages.error(request, _("Cette personne n'existe pas."))
            return _back(request, reverse("surveillance:alerts"))
    elif choice:
        messages.error(request, _("Choisissez une personne de l'équipe sécurité."))
        return _back(request, reverse("surveillance:alerts"))
    try:
        changed = queue.assign(alert, assignee, by=request.user, request=request)
    except queue.AssignmentRefused:
        messages.error(
            request,
            _("Alerte n° %(pk)s : %(email)s n'est pas membre de l'équipe sécurité de l'opérateur.")
            % {"pk": alert.pk, "email": assignee.email},
        )
        return _back(request, reverse("surveillance:alerts"))
    if not changed:
        messages.info(request, _("Alerte n° %(pk)s : rien n'a changé.") % {"pk": alert.pk})
    elif assignee is None:
        messages.success(request, _("Alerte n° %(pk)s : attribution retirée.") % {"pk": alert.pk})
    else:
        messages.success(
            request, _("Alerte n° %(pk)s attribuée à %(email)s.") % {"pk": alert.pk, "email": assignee.email}
        )
    return _back(request, reverse("surveillance:alerts"))


@security_staff
@never_cache
def suspended_list(request):
    """Everything suspended or cut, with who or what decided it and why; filtered by kind."""
    kind = request.GET.get("kind", "")
    if kind not in suspended.KINDS:
        kind = ""
    context = {
        "entries": suspended.everything(kind),
        "kind": kind,
        "kinds": [
            (key, label, n)
            for (key, label), n in zip(suspended.KINDS.items(), suspended.counts().values(), strict=True)
        ],
        "can_see_incidents": _can_see_incidents(request.user),
    }
    return render(request, "surveillance/suspended.html", context)
