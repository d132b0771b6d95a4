"""Publishing an insurer's notices: the operator's review step between generating them and the insurer seeing them.

Generated notices are drafts for the operator's security staff: they read them, then *publish* one insurer's
documents of one frozen scope. Only then does the insurer's portal list them and are the insurer's members
emailed (in their language when the account stores one, else French), with a link to the portal and nothing
else: no names, no numbers of people, not even the incident's title (typed by the operator, it could say
anything). Publishing twice sends once: the documents are marked in one conditional UPDATE, and only the
request that marked some sends the email.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from rempart.accounts import roles
from rempart.accounts.events import record_event
from rempart.accounts.models import Membership, Organisation, Role
from rempart.incidents import workflow
from rempart.incidents.models import Document, Incident, Scope
from rempart.registry.models import Insurer

log = logging.getLogger(__name__)

PUBLISH_ROLES = {Role.SECURITY}  # the incident console's own staff (rempart.incidents.views.INCIDENT_ROLES)


class PublishRefused(PermissionError):
    """The person may not publish notices (message safe to show)."""


def unpublished(scope: Scope, insurer: Insurer):
    return Document.objects.filter(scope=scope, insurer=insurer, published_at__isnull=True)


def publish(incident: Incident, scope: Scope, insurer: Insurer, *, by, request=None) -> int:
    """Publish the insurer's documents of this scope; return how many were published now (0: already were).

    Raises PublishRefused for anyone but the operator's security staff.
    """
    if by is None or not roles.is_operator(by, PUBLISH_ROLES):
        raise PublishRefused("only the operator's security staff publish notices")
    if scope.incident_id != incident.pk:
        raise ValueError("scope of another incident")
    now = timezone.now()
    with transaction.atomic():
        count = unpublished(scope, insurer).update(published_at=now, published_by=by)
        if not count:
            return 0
        workflow.log(incident, "published", f"{insurer.name} : {count} document(s) — « {scope.label} »", by)
        record_event(
            "incident.notices_published",
            request=request,
            user=by,
            incident=incident.number,
            scope=scope.pk,
            insurer=insurer.amc_number,
            documents=count,
        )
        transaction.on_commit(lambda: notify_members(insurer, incident))
    return count


def recipients(insurer: Insurer) -> list:
    """The insurer's members who can log in (active, not suspended)."""
    memberships = Membership.objects.filter(
        organisation__kind=Organisation.Kind.INSURER,
        organisation__insurer=insurer,
        user__is_active=True,
        user__suspended_at__isnull=True,
    ).select_related("user")
    return [m.user for m in memberships]


def _language_of(user) -> str:
    language = getattr(user, "language", "") or ""
    known = {code for code, _name in settings.LANGUAGES}
    return language if language in known else "fr"


def notify_members(insurer: Insurer, incident: Incident) -> int:
    """One email per member, in the member's language; returns how many were sent. A mail server down loses
    the email, never the publication (the portal lists the documents either way)."""
    url = settings.REMPART_BASE_URL.rstrip("/") + reverse("incidents:insurer_notices")
    sent = 0
    for user in recipients(insurer):
        with translation.override(_language_of(user)):
            context = {"insurer": insurer, "incident_number": incident.number, "url": url}
            subject = render_to_string("incidents/email/notices_published_subject.txt", context).strip()
            body = render_to_string("incidents/email/notices_published.txt", context)
        try:
            send_mail(subject, body, None, [user.email])
        except OSError:
            log.warning(
                "incident %s: the notice email to a member of insurer %s failed", incident.pk, insurer.pk
            )
            continue
        sent += 1
    return sent
