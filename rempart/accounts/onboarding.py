"""Operator onboarding: an organisation is created from the registry's identifiers, then its owner is invited."""

from __future__ import annotations

from django.db import transaction

from rempart.accounts import invitations
from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, Role
from rempart.lib.identifiers import InvalidIdentifier, validate_amc_number, validate_finess, validate_siret
from rempart.registry.models import Insurer, Professional


class OnboardingError(ValueError):
    pass


def _professional(finess: str | None, siret: str | None, name: str | None) -> Professional:
    if not finess and not siret:
        raise OnboardingError("a professional organisation needs its FINESS or its SIRET")
    try:
        finess = validate_finess(finess) if finess else None
        siret = validate_siret(siret) if siret else None
    except InvalidIdentifier as exc:
        raise OnboardingError(str(exc)) from None
    found = Professional.objects.filter(finess=finess).first() if finess else None
    found = found or (Professional.objects.filter(siret=siret).first() if siret else None)
    if found:
        return found
    if not name:
        raise OnboardingError("this professional is not in the registry yet: give its --name to create it")
    return Professional.objects.create(finess=finess, siret=siret or "", name=name)


@transaction.atomic
def create_organisation(
    kind: str,
    owner_email: str,
    *,
    finess: str | None = None,
    siret: str | None = None,
    amc: str | None = None,
    name: str | None = None,
    role: str | None = None,
    send: bool = True,
) -> tuple[Organisation, str]:
    """Create the organisation and invite its first member; return it with the invitation link."""
    if kind == Organisation.Kind.PROFESSIONAL:
        professional = _professional(finess, siret, name)
        if hasattr(professional, "organisation"):
            raise OnboardingError("this professional already has an organisation")
        organisation = Organisation.objects.create(
            kind=kind, name=professional.name, professional=professional
        )
        first_role = Role.OWNER
    elif kind == Organisation.Kind.INSURER:
        try:
            insurer = Insurer.objects.get(amc_number=validate_amc_number(amc or ""))
        except (InvalidIdentifier, Insurer.DoesNotExist):
            raise OnboardingError(
                "an insurer organisation needs the AMC number of an insurer in the registry"
            ) from None
        if hasattr(insurer, "organisation"):
            raise OnboardingError("this insurer already has an organisation")
        organisation = Organisation.objects.create(kind=kind, name=insurer.name, insurer=insurer)
        first_role = Role.OWNER
    elif kind == Organisation.Kind.OPERATOR:
        if not name:
            raise OnboardingError("an operator organisation needs a --name")
        organisation = Organisation.objects.create(kind=kind, name=name)
        first_role = role or Role.ADMIN
    else:
        raise OnboardingError(f"unknown organisation kind {kind!r}")
    try:
        _invitation, raw = invitations.invite(organisation, owner_email, first_role, None, send=send)
    except invitations.InvitationError as exc:
        raise OnboardingError(str(exc)) from None
    record_event("organisation.created", organisation=organisation, owner=owner_email)
    record_event("invitation.created", organisation=organisation, email=owner_email, role=first_role)
    return organisation, invitations.invitation_url(raw)
