"""Invitations: the only way in. Single use, expiring, stored as a hash of the link's secret."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from rempart.accounts import roles
from rempart.accounts.models import ROLES_BY_KIND, Invitation, Membership, Organisation, Role, User


class InvitationError(ValueError):
    """An invitation cannot be created or used (reason safe to show)."""


INVALID = "ce lien d'invitation n'est pas valable : il a expiré, a déjà servi ou a été annulé"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_url(raw: str) -> str:
    return settings.REMPART_BASE_URL.rstrip("/") + reverse("accounts:accept_invitation", args=[raw])


def invite(
    organisation: Organisation, email: str, role: str, invited_by: User | None, *, send: bool = True
) -> tuple[Invitation, str]:
    """Create an invitation (and email its link). ``invited_by=None`` is the operator's own tooling."""
    email = email.strip().lower()
    if organisation.is_suspended:
        raise InvitationError("cette organisation est suspendue par l'opérateur")
    if role not in ROLES_BY_KIND[organisation.kind]:
        raise InvitationError("ce rôle n'existe pas pour ce type d'organisation")
    if invited_by is not None and not roles.can_invite(invited_by, organisation, role):
        raise InvitationError("vous ne pouvez pas inviter dans cette organisation avec ce rôle")
    existing = User.objects.filter(email=email).first()
    if existing is not None and existing.membership is not None:
        if existing.membership.organisation_id != organisation.pk:
            raise InvitationError("cette adresse appartient déjà à une autre organisation")
        if Authenticator.objects.filter(user=existing).exists():
            raise InvitationError("cette personne est déjà membre de l'organisation")
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        role=role,
        token_hash=_hash(raw),
        invited_by=invited_by,
        expires_at=timezone.now() + dt.timedelta(hours=settings.REMPART_INVITATION_HOURS),
    )
    if send:
        context = {
            "invitation": invitation,
            "url": invitation_url(raw),
            "hours": settings.REMPART_INVITATION_HOURS,
        }
        send_mail(
            subject=f"Rempart — invitation à rejoindre {organisation.name}",
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=None,
            recipient_list=[email],
        )
    return invitation, raw


def find_usable(raw: str) -> Invitation:
    invitation = Invitation.objects.select_related("organisation").filter(token_hash=_hash(raw)).first()
    if invitation is None or not invitation.is_usable():
        raise InvitationError(INVALID)
    return invitation


def accept(raw: str, password: str, full_name: str = "") -> User:
    """Use an invitation once: create (or re-open, for someone who never enrolled a factor) the account."""
    with transaction.atomic():
        invitation = find_usable(raw)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if (
            not invitation.is_usable() or invitation.organisation.is_suspended
        ):  # used meanwhile, or org suspended
            raise InvitationError(INVALID)
        user = User.objects.filter(email=invitation.email).first()
        validate_password(password, user or User(email=invitation.email, full_name=full_name))
        if user is None:
            user = User.objects.create_user(invitation.email, password, full_name=full_name.strip()[:150])
            Membership.objects.create(user=user, organisation=invitation.organisation, role=invitation.role)
        else:
            removed = user.membership is None or not user.is_active
            if removed:  # a former member invited back starts afresh: old factors and sessions go
                Authenticator.objects.filter(user=user).delete()
                user.is_active = True
            elif Authenticator.objects.filter(user=user).exists():
                raise InvitationError(INVALID)
            user.set_password(password)
            if full_name.strip():
                user.full_name = full_name.strip()[:150]
            user.save()
            Membership.objects.update_or_create(
                user=user, defaults={"organisation": invitation.organisation, "role": invitation.role}
            )
        operator = invitation.organisation.kind == Organisation.Kind.OPERATOR
        user.is_staff = operator
        user.is_superuser = operator and invitation.role == Role.ADMIN
        user.save(update_fields=["is_staff", "is_superuser"])
        EmailAddress.objects.update_or_create(
            user=user, email=invitation.email, defaults={"verified": True, "primary": True}
        )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    return user


def revoke(invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(revoked_at=timezone.now())
