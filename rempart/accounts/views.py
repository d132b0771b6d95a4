"""Account pages: thin views over the rules in roles, invitations, tokens and events."""

from __future__ import annotations

import time

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rempart.accounts import invitations, roles, tokens
from rempart.accounts.events import label, record_event
from rempart.accounts.forms import AcceptInvitationForm, InviteForm, RoleForm, TokenForm
from rempart.accounts.models import ApiToken, Invitation, Membership, SecurityEvent
from rempart.accounts.sessions import end_sessions
from rempart.accounts.stepup import step_up_required

BACKEND = "rempart.accounts.backends.AuthenticationBackend"


def _events(queryset, limit=100):
    return [(event, label(event.tag)) for event in queryset.select_related("user")[:limit]]


@login_required
def home(request):
    return render(request, "accounts/home.html", {"membership": request.user.membership})


@login_required
def enrol(request):
    has_factor = Authenticator.objects.filter(user=request.user).exclude(
        type=Authenticator.Type.RECOVERY_CODES
    )
    return render(request, "accounts/enrol.html", {"has_factor": has_factor.exists()})


def accept_invitation(request, token: str):
    try:
        invitation = invitations.find_usable(token)
    except invitations.InvitationError as exc:
        return render(request, "accounts/invitation_invalid.html", {"reason": str(exc)}, status=404)
    form = AcceptInvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitations.accept(token, form.cleaned_data["password1"], form.cleaned_data["full_name"])
        except ValidationError as exc:
            form.add_error("password1", exc)
        except invitations.InvitationError as exc:
            return render(request, "accounts/invitation_invalid.html", {"reason": str(exc)}, status=404)
        else:
            if request.user.is_authenticated:
                logout(request)
            login(request, user, backend=BACKEND)
            request.session["rempart_enrolment_until"] = (
                time.time() + settings.REMPART_ENROLMENT_WINDOW_SECONDS
            )
            record_event("invitation.accepted", request=request, user=user, role=invitation.role)
            return redirect("accounts:enrol")
    return render(request, "accounts/accept_invitation.html", {"form": form, "invitation": invitation})


@login_required
def security(request):
    user = request.user
    context = {
        "factors": Authenticator.objects.filter(user=user).order_by("type", "created_at"),
        "sessions": UserSession.objects.filter(user=user).order_by("-last_seen_at"),
        "current_session_key": request.session.session_key,
        "events": _events(SecurityEvent.objects.filter(user=user), 50),
    }
    return render(request, "accounts/security.html", context)


@login_required
@require_POST
def logout_everywhere(request):
    user = request.user
    record_event("logout.everywhere", request=request, user=user)
    end_sessions(user=user)
    logout(request)
    messages.success(request, _("Toutes vos sessions ont été fermées."))
    return redirect("account_login")


def _managed_organisation(request):
    organisation = roles.organisation_of(request.user)
    if organisation is None or not roles.can_manage_members(request.user, organisation):
        raise Http404
    return organisation


@login_required
def members(request):
    organisation = _managed_organisation(request)
    context = {
        "organisation": organisation,
        "memberships": organisation.memberships.select_related("user").order_by("user__email"),
        "invitations": organisation.invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True),
        "form": InviteForm(organisation=organisation),
        "role_form": RoleForm(),
        "now": timezone.now(),
    }
    return render(request, "accounts/members.html", context)


@login_required
@require_POST
@step_up_required
def invite(request):
    organisation = _managed_organisation(request)
    form = InviteForm(request.POST, organisation=organisation)
    if form.is_valid():
        try:
            invitation, _raw = invitations.invite(
                organisation, form.cleaned_data["email"], form.cleaned_data["role"], request.user
            )
        except invitations.InvitationError as exc:
            messages.error(request, str(exc))
        else:
            record_event("invitation.created", request=request, email=invitation.email, role=invitation.role)
            messages.success(request, _("Invitation envoyée à %(email)s.") % {"email": invitation.email})
    else:
        messages.error(request, _("Invitation impossible : vérifiez l'adresse et le rôle."))
    return redirect("accounts:members")


@login_required
@require_POST
def revoke_invitation(request, pk: int):
    organisation = _managed_organisation(request)
    invitation = get_object_or_404(Invitation, pk=pk, organisation=organisation)
    invitations.revoke(invitation)
    record_event("invitation.revoked", request=request, email=invitation.email)
    return redirect("accounts:members")


@login_required
@require_POST
@step_up_required
def change_role(request, pk: int):
    organisation = _managed_organisation(request)
    membership = get_object_or_404(Membership, pk=pk, organisation=organisation)
    form = RoleForm(request.POST)
    if (
        not form.is_valid()
        or not roles.can_invite(request.user, organisation, form.cleaned_data["role"])
        or not roles.can_manage_member(request.user, membership)
    ):
        messages.error(request, _("Rôle impossible pour cette organisation."))
    elif membership.user_id == request.user.pk:
        messages.error(request, _("Vous ne pouvez pas changer votre propre rôle."))
    else:
        old = membership.role
        roles.apply_role(membership, form.cleaned_data["role"])
        record_event(
            "member.role_changed", request=request, member=membership.user.email, old=old, new=membership.role
        )
        messages.success(request, _("Rôle modifié."))
    return redirect("accounts:members")


@login_required
@require_POST
@step_up_required
def remove_member(request, pk: int):
    organisation = _managed_organisation(request)
    membership = get_object_or_404(Membership, pk=pk, organisation=organisation)
    if membership.user_id == request.user.pk or not roles.can_manage_member(request.user, membership):
        messages.error(request, _("Vous ne pouvez pas retirer ce membre."))
        return redirect("accounts:members")
    if (
        request.POST.get("confirm") != "yes"
    ):  # cannot be undone: the box is ticked, with or without JavaScript
        messages.error(
            request,
            _("Cochez la case de confirmation pour retirer %(email)s : son compte sera désactivé.")
            % {"email": membership.user.email},
        )
        return redirect("accounts:members")
    user = membership.user
    end_sessions(user=user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    membership.delete()
    record_event("member.removed", request=request, organisation=organisation, member=user.email)
    messages.success(request, _("%(email)s a été retiré de l'organisation.") % {"email": user.email})
    return redirect("accounts:members")


@login_required
def organisation_events(request):
    organisation = roles.organisation_of(request.user)
    if organisation is None or not roles.can_see_organisation_events(request.user, organisation):
        raise Http404
    events = _events(SecurityEvent.objects.filter(organisation=organisation), 200)
    return render(
        request, "accounts/organisation_events.html", {"organisation": organisation, "events": events}
    )


def _token_organisation(request):
    if not roles.can_manage_tokens(request.user):
        raise Http404
    return roles.organisation_of(request.user)


@login_required
def token_list(request):
    organisation = _token_organisation(request)
    context = {
        "tokens": ApiToken.objects.filter(organisation=organisation),
        "form": TokenForm(kind=organisation.kind),
        "now": timezone.now(),
        "new_token": request.session.pop("rempart_new_token", None),
    }
    return render(request, "accounts/tokens.html", context)


@login_required
@require_POST
@step_up_required
def token_create(request):
    organisation = _token_organisation(request)
    form = TokenForm(request.POST, kind=organisation.kind)
    if not form.is_valid():
        messages.error(request, _("Jeton non créé : vérifiez le nom, les autorisations et la durée."))
        return redirect("accounts:tokens")
    try:
        token, raw = tokens.create_token(
            organisation,
            form.cleaned_data["name"],
            form.cleaned_data["scopes"],
            request.user,
            form.cleaned_data["lifetime_days"],
        )
    except tokens.TokenError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:tokens")
    record_event("token.created", request=request, token=token.prefix, name=token.name, scopes=token.scopes)
    # Shown once, on the next page only (never put in a URL).
    request.session["rempart_new_token"] = raw
    return redirect("accounts:tokens")


@login_required
@require_POST
def token_revoke(request, pk: int):
    organisation = _token_organisation(request)
    token = get_object_or_404(ApiToken, pk=pk, organisation=organisation)
    tokens.revoke_token(token)
    record_event("token.revoked", request=request, token=token.prefix, name=token.name)
    messages.success(request, _("Jeton « %(name)s » révoqué.") % {"name": token.name})
    return redirect("accounts:tokens")
