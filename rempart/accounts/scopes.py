"""API token scopes. Each bounded context declares the scopes its endpoints need here."""

from django.utils.translation import gettext_lazy as _

SCOPES = {
    "rights:check": _("Vérifier les droits d'un patient (carte de tiers payant + carte Vitale)"),
    "pec:write": _("Demander des prises en charge optique et audioprothèse (devis)"),
}
