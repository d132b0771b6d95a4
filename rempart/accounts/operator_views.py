"""Operator console pages for accounts: who is suspended, and restoring (with step-up) or suspending."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import roles
from rempart.accounts.events import TAGS, label, record_event
from rempart.accounts.models import Organisation, Role, SecurityEvent, User
from rempart.accounts.sessions import end_sessions
from rempart.accounts.stepup import step_up_required

SECURITY_ROLES = {Role.SECURITY, Role.ADMIN}


def _require_security_staff(request) -> None:
    if not roles.is_operator(request.user, SECURITY_ROLES):
        raise Http404


@login_required
def all_events(request):
    """Operator staff see every organisation's security events, filtered by tag, organisation or person."""
    if not roles.is_operator(request.user):
        raise Http404
    events = SecurityEvent.objects.select_related("user", "organisation")
    tag, email, organisation = (request.GET.get(k, "").strip() for k in ("tag", "email", "organisation"))
    if tag:
        events = events.filter(tag=tag)
    if email:
        events = events.filter(user__email__iexact=email)
    if organisation.isdigit():
        events = events.filter(organisation_id=int(organisation))
    context = {
        "events": [(event, label(event.tag)) for event in events[:500]],
        "tags": sorted(TAGS.items()),
        "filters": {"tag": tag, "email": email, "organisation": organisation},
        "organisations": Organisation.objects.order_by("name"),
    }
    return render(request, "accounts/operator_events.html", context)


@login_required
def suspensions(request):
    _require_security_staff(request)
    suspended = User.objects.filter(suspended_at__isnull=False).select_related("_membership__organisation")
    organisations = Organisation.objects.exclude(kind=Organisation.Kind.OPERATOR).order_by("status", "name")
    return render(
        request,
        "accounts/operator_suspensions.html",
        {"suspended": suspended, "organisations": organisations},
    )


@login_required
@require_POST
def suspend_account(request, pk: int):
    _require_security_staff(request)
    user = get_object_or_404(User, pk=pk)
    if user.pk == request.user.pk:
        messages.error(request, _("Vous ne pouvez pas suspendre votre propre compte."))
        return redirect("accounts:operator_suspensions")
    user.suspended_at = timezone.now()
    user.save(update_fields=["suspended_at"])
    end_sessions(user=user)
    reason = " ".join(request.POST.get("reason", "").split())[:300]  # optional, shown in the list
    record_event("account.suspended", request=request, user=user, by=request.user.email, reason=reason)
    messages.success(request, _("Compte %(email)s suspendu et déconnecté.") % {"email": user.email})
    return redirect("accounts:operator_suspensions")


@login_required
@require_POST
@step_up_required
def restore_account(request, pk: int):
    _require_security_staff(request)
    user = get_object_or_404(User, pk=pk, suspended_at__isnull=False)
    user.suspended_at = None
    user.save(update_fields=["suspended_at"])
    record_event("account.restored", request=request, user=user, by=request.user.email)
    messages.success(request, _("Compte %(email)s rétabli.") % {"email": user.email})
    return redirect("accounts:operator_suspensions")


@login_required
@require_POST
def suspend_organisation(request, pk: int):
    _require_security_staff(request)
    organisation = get_object_or_404(Organisation, pk=pk)
    if organisation.kind == Organisation.Kind.OPERATOR:
        messages.error(request, _("L'organisation opérateur ne se suspend pas depuis cette page."))
        return redirect("accounts:operator_suspensions")
    organisation.status = Organisation.Status.SUSPENDED
    organisation.save(update_fields=["status"])
    end_sessions(user___membership__organisation=organisation)
    reason = " ".join(request.POST.get("reason", "").split())[:300]
    record_event(
        "organisation.suspended",
        request=request,
        organisation=organisation,
        by=request.user.email,
        reason=reason,
    )
    messages.success(
        request,
        _("Organisation « %(name)s » suspendue ; ses membres et jetons sont coupés.")
        % {"name": organisation.name},
    )
    return redirect("accounts:operator_suspensions")


@login_required
@require_POST
@step_up_required
def restore_organisation(request, pk: int):
    _require_security_staff(request)
    organisation = get_object_or_404(Organisation, pk=pk, status=Organisation.Status.SUSPENDED)
    organisation.status = Organisation.Status.ACTIVE
    organisation.save(update_fields=["status"])
    record_event("organisation.restored", request=request, organisation=organisation, by=request.user.email)
    messages.success(request, _("Organisation « %(name)s » rétablie.") % {"name": organisation.name})
    return redirect("accounts:operator_suspensions")


@login_required
@require_POST
def suspend_by_email(request):
    _require_security_staff(request)
    user = User.objects.filter(email__iexact=request.POST.get("email", "").strip()).first()
    if user is None:
        messages.error(request, _("Aucun compte avec cette adresse."))
        return redirect("accounts:operator_suspensions")
    return suspend_account(request, user.pk)
