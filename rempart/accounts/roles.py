"""What each role may do. Plain rules, no HTTP: views ask, tests check."""

from __future__ import annotations

from rempart.accounts.models import ROLES_BY_KIND, Membership, Organisation, Role, User

OPERATOR_MANAGERS = {Role.ADMIN, Role.SUPPORT}


def organisation_of(user: User) -> Organisation | None:
    membership = user.membership
    return membership.organisation if membership else None


def role_of(user: User) -> str | None:
    membership = user.membership
    return membership.role if membership else None


def is_operator(user: User, roles: set[str] | None = None) -> bool:
    membership = user.membership
    if membership is None or membership.organisation.kind != Organisation.Kind.OPERATOR:
        return False
    return roles is None or membership.role in roles


def can_manage_members(user: User, organisation: Organisation) -> bool:
    """Owners manage their own organisation; operator admins and support may manage any."""
    if is_operator(user, OPERATOR_MANAGERS):
        return True
    membership = user.membership
    return (
        membership is not None
        and membership.organisation_id == organisation.pk
        and membership.role == Role.OWNER
    )


def can_invite(user: User, organisation: Organisation, role: str) -> bool:
    if role not in ROLES_BY_KIND[organisation.kind]:
        return False
    if organisation.kind == Organisation.Kind.OPERATOR:
        return is_operator(user, {Role.ADMIN})
    return can_manage_members(user, organisation)


def can_manage_member(user: User, membership: Membership) -> bool:
    """Change or remove one member: their organisation's manager — and in the operator, only an admin."""
    organisation = membership.organisation
    if organisation.kind == Organisation.Kind.OPERATOR:
        return is_operator(user, {Role.ADMIN})
    return can_manage_members(user, organisation)


def apply_role(membership: Membership, role: str) -> None:
    """Set a member's role and the admin flags that follow from it (only operator staff reach the admin)."""
    membership.role = role
    membership.save(update_fields=["role"])
    user = membership.user
    user.is_staff = membership.organisation.kind == Organisation.Kind.OPERATOR
    user.is_superuser = user.is_staff and role == Role.ADMIN
    user.save(update_fields=["is_staff", "is_superuser"])


def can_manage_tokens(user: User) -> bool:
    """Only the owner of a professional organisation (or of an insurer, for the ledger's anchors) creates tokens."""
    membership = user.membership
    return (
        membership is not None
        and membership.organisation.kind in (Organisation.Kind.PROFESSIONAL, Organisation.Kind.INSURER)
        and membership.role == Role.OWNER
    )


def can_see_organisation_events(user: User, organisation: Organisation) -> bool:
    return is_operator(user) or can_manage_members(user, organisation)


def can_reach_admin(user: User) -> bool:
    return user.is_active and user.is_staff and is_operator(user)
