"""Security events (login, factors, tokens, invitations, roles, lockouts): one function records them all."""

from __future__ import annotations

from django.http import HttpRequest

from rempart.accounts.models import Organisation, SecurityEvent, User
from rempart.lib.http import client_ip, user_agent

TAGS = {
    "login.success": "Connexion réussie",
    "login.failed": "Échec de connexion",
    "login.new_device": "Connexion depuis un nouvel appareil ou une nouvelle adresse",
    "login.locked": "Compte verrouillé après trop d'échecs",
    "logout": "Déconnexion",
    "logout.everywhere": "Déconnexion de toutes les sessions",
    "session.expired": "Session expirée",
    "mfa.added": "Second facteur ajouté",
    "mfa.removed": "Second facteur supprimé",
    "mfa.failed": "Code de second facteur refusé",
    "mfa.recovery_code_used": "Code de secours utilisé",
    "mfa.recovery_codes_generated": "Codes de secours régénérés",
    "mfa.step_up": "Second facteur confirmé pour une action sensible",
    "account.password_changed": "Mot de passe modifié",
    "account.password_reset": "Mot de passe réinitialisé",
    "token.created": "Jeton d'API créé",
    "token.revoked": "Jeton d'API révoqué",
    "token.rejected": "Jeton d'API refusé",
    "invitation.created": "Invitation envoyée",
    "invitation.accepted": "Invitation acceptée",
    "invitation.revoked": "Invitation annulée",
    "member.role_changed": "Rôle modifié",
    "member.removed": "Membre retiré",
    "account.suspended": "Compte suspendu",
    "account.restored": "Compte rétabli",
    "organisation.created": "Organisation créée",
    "bank.changed": "Coordonnées bancaires modifiées",
    "organisation.suspended": "Organisation suspendue",
    "organisation.restored": "Organisation rétablie",
}


def record_event(
    tag: str,
    *,
    request: HttpRequest | None = None,
    user: User | None = None,
    organisation: Organisation | None = None,
    **details,
) -> SecurityEvent:
    """Record one security event; the organisation defaults to the person's."""
    if tag not in TAGS:
        raise ValueError(f"unknown security event tag {tag!r}")
    if user is None and request is not None and getattr(request, "user", None) is not None:
        user = request.user if request.user.is_authenticated else None
    if organisation is None and user is not None and user.membership is not None:
        organisation = user.membership.organisation
    return SecurityEvent.objects.create(
        tag=tag,
        user=user,
        organisation=organisation,
        ip_address=client_ip(request) if request is not None else None,
        user_agent=user_agent(request) if request is not None else "",
        details=details,
    )


def label(tag: str) -> str:
    return TAGS.get(tag, tag)
