"""Who may see a job: the person who asked for it, their organisation's members, and the operator's staff.
Plain rules, no HTTP."""

from __future__ import annotations

from rempart.accounts.models import Role
from rempart.accounts.roles import is_operator
from rempart.jobs.models import Job

CONSOLE_ROLES = {Role.ADMIN, Role.SUPPORT, Role.SECURITY, Role.TREASURY}
MANAGERS = {Role.ADMIN, Role.SUPPORT}


def can_see(user, job: Job) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if job.created_by_id == user.pk or is_operator(user, CONSOLE_ROLES):
        return True
    membership = user.membership
    return (
        membership is not None
        and job.organisation_id is not None
        and membership.organisation_id == job.organisation_id
    )


def can_see_console(user) -> bool:
    return getattr(user, "is_authenticated", False) and is_operator(user, CONSOLE_ROLES)


def can_manage(user) -> bool:
    """Retry a failed job or cancel a waiting one: the operator's administrators and support."""
    return getattr(user, "is_authenticated", False) and is_operator(user, MANAGERS)
