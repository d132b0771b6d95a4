"""Security events (login, factors, tokens, invitations, roles, lockouts): one function records them all."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from rempart.accounts.models import Organisation, SecurityEvent, User
from rempart.lib.http import client_ip, user_agent

TAGS = {
    "login.success": _("Connexion réussie"),
    "login.failed": _("Échec de connexion"),
    "login.new_device": _("Connexion depuis un nouvel appareil ou une nouvelle adresse"),
    "login.locked": _("Compte verrouillé après trop d'échecs"),
    "login.password_only": _("Mot de passe correct, second facteur demandé"),
    "logout": _("Déconnexion"),
    "logout.everywhere": _("Déconnexion de toutes les sessions"),
    "session.expired": _("Session expirée"),
    "session.context_changed": _("Session utilisée depuis une autre adresse ou un autre appareil"),
    "mfa.added": _("Second facteur ajouté"),
    "mfa.removed": _("Second facteur supprimé"),
    "mfa.failed": _("Code de second facteur refusé"),
    "mfa.recovery_code_used": _("Code de secours utilisé"),
    "mfa.recovery_codes_generated": _("Codes de secours régénérés"),
    "mfa.step_up": _("Second facteur confirmé pour une action sensible"),
    "account.password_changed": _("Mot de passe modifié"),
    "account.password_reset": _("Mot de passe réinitialisé"),
    "token.created": _("Jeton d'API créé"),
    "token.revoked": _("Jeton d'API révoqué"),
    "token.rejected": _("Jeton d'API refusé"),
    "invitation.created": _("Invitation envoyée"),
    "invitation.accepted": _("Invitation acceptée"),
    "invitation.revoked": _("Invitation annulée"),
    "member.role_changed": _("Rôle modifié"),
    "member.removed": _("Membre retiré"),
    "account.suspended": _("Compte suspendu"),
    "account.restored": _("Compte rétabli"),
    "organisation.created": _("Organisation créée"),
    "bank.changed": _("Coordonnées bancaires modifiées"),  # before the hold (issue 14); kept for old rows
    "bank.change_requested": _("Nouvel IBAN demandé, en attente avant d'être payé"),
    "bank.change_cancelled": _("Changement d'IBAN annulé"),
    "bank.change_released": _("Nouvel IBAN appliqué à la fin de la période d'attente"),
    "payments.run_requested": _("Préparation d'une campagne de paiement demandée"),
    "payments.run_prepared": _("Campagne de paiement préparée"),
    "payments.run_approved": _("Campagne de paiement approuvée, fichier de virements émis"),
    "payments.approval_refused": _("Approbation d'une campagne de paiement refusée"),
    "payments.run_cancelled": _("Campagne de paiement annulée"),
    "payments.file_downloaded": _("Fichier de virements téléchargé"),
    "payments.file_tampered": _("Fichier de virements altéré : téléchargement refusé"),
    "payments.bank_file_imported": _("Fichier bancaire importé (compte rendu pain.002 ou avis camt.054)"),
    "payments.bank_file_refused": _("Fichier bancaire refusé, rien n'a été modifié"),
    "payments.transfer_returned": _("Virement rejeté par la banque, montant de nouveau à payer"),
    "billing.statement_issued": _("Relevé assureur émis, frais comptabilisés"),
    "billing.statement_downloaded": _("Relevé assureur téléchargé (PDF)"),
    "billing.statement_tampered": _("Relevé assureur altéré : téléchargement refusé"),
    "billing.collection_file": _("Fichier de prélèvements (pain.008) émis"),
    "billing.collection_downloaded": _("Fichier de prélèvements téléchargé"),
    "billing.receipts_imported": _("Avis de crédit camt.054 importé, encaissements comptabilisés"),
    "billing.receipts_refused": _("Avis de crédit refusé, rien n'a été modifié"),
    "billing.receipt_recorded": _("Encaissement saisi à la main"),
    "billing.receipt_approved": _("Encaissement saisi à la main approuvé par une seconde personne"),
    "billing.receipt_discarded": _("Encaissement saisi à la main écarté avant approbation"),
    "billing.debit_returned": _("Prélèvement SEPA rejeté par la banque de l'assureur : créance rouverte"),
    "billing.overdue_switch_off": _("Tiers payant coupé pour un assureur en retard de paiement"),
    "billing.detail_written": _("Fichier détaillé d'un relevé assureur produit"),
    "billing.detail_downloaded": _("Fichier détaillé d'un relevé assureur téléchargé"),
    "billing.detail_tampered": _("Fichier détaillé altéré : téléchargement refusé"),
    "claim.reviewed": _("Facture en examen jugée par l'opérateur"),
    "claim.credited": _("Avoir émis sur une facture"),
    "organisation.suspended": _("Organisation suspendue"),
    "organisation.restored": _("Organisation rétablie"),
    "surveillance.step_up": _("Second facteur redemandé : activité inhabituelle"),
    "surveillance.throttled": _("Jeton d'API ralenti : activité inhabituelle"),
    "surveillance.suspended": _("Suspension automatique : activité anormale"),
    "switch.off": _("Coupure activée"),
    "switch.on": _("Coupure levée"),
    "token.suspended": _("Jeton d'API suspendu"),
    "token.restored": _("Jeton d'API rétabli"),
    "canary.planted": _("Bénéficiaires témoins (canaris) implantés"),
    "canary.revealed": _("Données scellées des canaris consultées"),
    "alert.handled": _("Alerte de surveillance traitée"),
    "registry.import_forced": _("Fichier de droits complet chargé en forçant le seuil de sécurité"),
    "incident.notices_published": _("Notifications d'incident publiées à l'assureur"),
    "alert.assigned": _("Alerte de surveillance attribuée"),
    "alert.forward_failed": _("Alerte de surveillance non transmise (courriel, webhook ou syslog)"),
    "job.retried": _("Tâche de fond relancée par l'opérateur"),
    "job.cancelled": _("Tâche de fond annulée par l'opérateur"),
    "psc.login": _("Connexion avec Pro Santé Connect"),
    "psc.refused": _("Connexion Pro Santé Connect refusée"),
    "psc.unknown_identity": _("Identité Pro Santé Connect inconnue : connexion refusée"),
    "psc.linked": _("Numéro RPPS relié au compte (Pro Santé Connect)"),
    "psc.unlinked": _("Numéro RPPS détaché du compte (Pro Santé Connect)"),
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
    return str(TAGS.get(tag, tag))
