"""API token scopes. Each bounded context declares the scopes its endpoints need here."""

from django.utils.translation import gettext_lazy as _

SCOPES = {
    "rights:check": _("Vérifier les droits d'un patient (carte de tiers payant + carte Vitale)"),
    "pec:write": _("Demander des prises en charge optique et audioprothèse (devis)"),
    "claims:write": _("Envoyer des factures (une à une ou par lots) et relire leur jugement"),
    "ledger:read": _("Télécharger les ancres signées du registre des divulgations"),
    "payments:read": _("Lire les virements reçus et leurs relevés (rapprochement des paiements)"),
    "billing:read": _("Lire les relevés de facturation de l'opérateur et leurs fichiers détaillés"),
}

# Which organisations' tokens may carry each scope: a professional's software checks rights, an insurer's keeps
# the ledger's anchors; neither can be given the other's.
SCOPES_BY_KIND = {
    "professional": ("rights:check", "pec:write", "claims:write", "payments:read"),
    "insurer": ("ledger:read", "billing:read"),
}


def scopes_for(kind: str) -> dict:
    return {name: label for name, label in SCOPES.items() if name in SCOPES_BY_KIND.get(kind, ())}
