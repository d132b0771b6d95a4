"""Which member a Pro Santé Connect identity is, and who may say so.

A PSC login proves "this is the professional whose national identifier is N"; it says nothing about who
they are *in Rempart*. The link is made beforehand, by the owner of their organisation or by the
operator, from the member's RPPS; a PSC login never creates an account nor links one by itself.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, Role, User
from rempart.lib.identifiers import InvalidIdentifier, validate_rpps
from rempart.psc.models import ProfessionalIdentity
from rempart.registry.models import Professional


class LinkRefused(Exception):
    """The link cannot be made; the message is for the person who asked."""


def link(user: User, rpps: str, *, by: User | None = None, request=None) -> ProfessionalIdentity:
    """Let ``user`` log in with the PSC identity of ``rpps`` (replacing any RPPS they had)."""
    try:
        rpps = validate_rpps(rpps)
    except InvalidIdentifier:
        raise LinkRefused(_("Numéro RPPS invalide (11 chiffres, clé de contrôle).")) from None
    membership = user.membership
    if not user.is_active or membership is None:
        raise LinkRefused(_("Cette personne n'est membre d'aucune organisation."))
    if membership.organisation.kind != Organisation.Kind.PROFESSIONAL:
        raise LinkRefused(_("Pro Santé Connect est réservé aux membres des organisations de professionnels."))
    taken = ProfessionalIdentity.objects.filter(rpps=rpps).exclude(user=user).exists()
    if taken:
        raise LinkRefused(_("Ce numéro RPPS est déjà relié à un autre compte."))
    try:
        with transaction.atomic():
            identity, _created = ProfessionalIdentity.objects.update_or_create(
                user=user, defaults={"rpps": rpps, "linked_by": by, "last_login_at": None}
            )
    except IntegrityError:  # the same RPPS linked elsewhere meanwhile
        raise LinkRefused(_("Ce numéro RPPS est déjà relié à un autre compte.")) from None
    record_event(
        "psc.linked", request=request, user=user, rpps=rpps, by=by.email if by is not None else "operator"
    )
    return identity


def unlink(user: User, *, by: User | None = None, request=None) -> bool:
    deleted, _rows = ProfessionalIdentity.objects.filter(user=user).delete()
    if deleted:
        record_event(
            "psc.unlinked", request=request, user=user, by=by.email if by is not None else "operator"
        )
    return bool(deleted)


def may_link(actor: User, member: User) -> bool:
    """An owner links the members of their own professional organisation (themselves included)."""
    mine, theirs = actor.membership, member.membership
    return (
        mine is not None
        and theirs is not None
        and mine.role == Role.OWNER
        and mine.organisation_id == theirs.organisation_id
        and mine.organisation.kind == Organisation.Kind.PROFESSIONAL
    )


def member_for(national_id: str) -> ProfessionalIdentity | None:
    """The link of the professional PSC names (``8`` + RPPS), if one was made; None for any other form."""
    try:
        rpps = validate_rpps(national_id)
    except InvalidIdentifier:
        return None
    return ProfessionalIdentity.objects.select_related("user").filter(rpps=rpps).first()


def rpps_of(national_id: str) -> str:
    try:
        return validate_rpps(national_id)
    except InvalidIdentifier:
        return ""


def claimed_organisation(userinfo: dict) -> Organisation | None:
    """The Rempart organisation of a practice PSC lists for the professional (FINESS or SIRET of a site):
    whose owner should hear of an unknown PSC identity trying to log in."""
    finess, siret = set(), set()
    refpro = userinfo.get("SubjectRefPro")
    exercices = refpro.get("exercices") if isinstance(refpro, dict) else None
    for exercice in exercices if isinstance(exercices, list) else []:
        activities = exercice.get("activities") if isinstance(exercice, dict) else None
        for activity in activities if isinstance(activities, list) else []:
            if not isinstance(activity, dict):
                continue
            for name in ("numeroFinessSite", "numeroFinessetablissementJuridique"):
                if isinstance(activity.get(name), str) and activity[name].strip():
                    finess.add(activity[name].strip())
            if isinstance(activity.get("numeroSiretSite"), str) and activity["numeroSiretSite"].strip():
                siret.add(activity["numeroSiretSite"].strip())
    if not finess and not siret:
        return None
    professional = (
        Professional.objects.filter(finess__in=finess).first()
        or Professional.objects.filter(siret__in=siret).exclude(siret="").first()
    )
    if professional is None:
        return None
    return Organisation.objects.filter(professional=professional).first()
