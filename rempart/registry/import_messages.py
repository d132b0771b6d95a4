"""The stable codes of the registry imports' messages, and their words in French (English by rempart/locale).

What is stored (an import run's refusal and warnings, each rejected row's reason in errors.csv) is a code
and its parameters, e.g. ``{"code": "nir_checksum"}`` for a row or ``{"code": "trailer_count", "announced":
"12", "found": 11}`` for a file; the words are chosen when shown, in the reader's language. Nothing here
holds a value from the file beyond line numbers, counts and the format's own column names.

Older runs stored English sentences: ``describe`` shows a plain string as it is (a tolerant renderer, so
no data migration rewrites the history).
"""

from __future__ import annotations

import json

from django.utils import translation
from django.utils.translation import gettext_lazy as _

# One row's reasons (the column is given beside the reason, in the report and on the page).
ROW_MESSAGES = {
    "field_count": _("%(count)s champs au lieu de %(expected)s"),
    "amc_mismatch": _("diffère de l'assureur du fichier"),
    "adherent_format": _("1 à 20 lettres, chiffres ou tirets attendus"),
    "product_format": _("1 à 20 lettres, chiffres, « _ » ou « - » attendus"),
    "product_format_products": _(
        "1 à 20 lettres, chiffres, « _ » ou « - » attendus (comme dans les fichiers de droits)"
    ),
    "date_missing": _("absente (AAAA-MM-JJ attendu)"),
    "date_format": _("AAAA-MM-JJ attendu"),
    "date_impossible": _("date impossible"),
    "date_before": _("antérieure à %(other)s"),
    "year_before_1880": _("année antérieure à 1880"),
    "month_impossible": _("mois impossible"),
    "day_impossible": _("jour impossible"),
    "contract_status_choice": _("active, suspended ou terminated attendu"),
    "integer_range": _("nombre entier de %(low)s à %(high)s attendu"),
    "quality_choice": _("ASSURE, CONJOINT, ENFANT ou AUTRE attendu"),
    "sex_choice": _("M ou F attendu"),
    "missing": _("absent"),
    "name_too_long": _("plus de 60 caractères"),
    "name_characters": _("lettres, espaces, apostrophes, traits d'union et points seulement"),
    "nir_length": _("longueur incorrecte (15 caractères attendus, clé comprise)"),
    "nir_format": _("format incorrect"),
    "nir_checksum": _("clé incorrecte"),
    "nir_component": _("composant impossible"),
    "nir_invalid": _("NIR invalide"),
    "nir_missing": _("absent : donnez le NIR du bénéficiaire ou celui de l'ouvrant droit"),
    "nir_assure_required": _("l'assuré principal doit avoir son propre NIR"),
    "unknown_product": _("produit inconnu pour cet assureur (chargez le fichier de produits)"),
    "duplicate_member": _("même numéro d'adhérent et même numéro de ligne que la ligne %(first)s"),
    "contract_conflict": _(
        "les champs du contrat (produit, dates, statut) diffèrent entre ses lignes (première à la ligne "
        "%(first)s) ; aucune de ses lignes n'a été chargée"
    ),
    # Products files.
    "amount_format": _("montant en euros attendu, par exemple 420.00"),
    "amount_max": _("au plus %(max)s euros"),
    "amount_precision": _("montant positif avec au plus 2 décimales attendu"),
    "ceilings_domain": _("seulement pour %(domains)s"),
    "ceilings_format": _("paires « clé=montant » séparées par « | » ; clés pour %(domain)s : %(keys)s"),
    "yes_no": _("O ou N attendu"),
    "domain_choice": _("l'un de %(domains)s attendu"),
    "tp_code_format": _("1 à 8 caractères attendus (tels qu'imprimés sur la carte)"),
    "rate_range": _("nombre entier de 0 à 1000 attendu"),
    "duplicate_guarantee": _("même produit, même domaine et même date que la ligne %(first)s"),
}

# A file wrong as a whole (nothing changed), and the warnings of a run that went through.
FILE_MESSAGES = {
    "not_utf8": _("le fichier n'est pas en UTF-8 valide (vers la ligne %(line)s)"),
    "not_utf8_file": _("le fichier n'est pas en UTF-8 valide"),
    "unreadable_csv": _("CSV illisible à la ligne %(line)s"),
    "unreadable_csv_file": _("CSV illisible (guillemet non fermé ou champ trop long)"),
    "not_rights_file": _("ligne 1 : ce n'est pas un fichier de droits (« %(expected)s » attendu)"),
    "not_products_file": _("ligne 1 : ce n'est pas un fichier de produits (« %(expected)s » attendu)"),
    "unsupported_version": _(
        "ligne 1 : version du format non prise en charge (cette plateforme lit la version %(version)s)"
    ),
    "other_insurer": _("ligne 1 : le fichier est celui d'un autre assureur que celui indiqué"),
    "wrong_header": _("ligne 2 : en-tête incorrect (« %(expected)s » attendu)"),
    "data_after_trailer": _("ligne %(line)s : données après la ligne « %(trailer)s »"),
    "no_trailer": _("fichier tronqué : pas de ligne « %(trailer)s » à la fin du fichier"),
    "trailer_count": _(
        "fichier tronqué ou altéré : la ligne « %(trailer)s » annonce %(announced)s lignes, le fichier en a "
        "%(found)s"
    ),
    "above_threshold": _(
        "ce fichier complet mettrait fin à %(to_end)s des %(open)s contrats ouverts (%(share)s %%, limite "
        "%(limit)s %%) ; vérifiez le fichier, ou chargez-le en forçant (--force en ligne de commande)"
    ),
    "above_threshold_dry_run": _(
        "au-delà du seuil de sécurité : ce fichier complet mettrait fin à %(to_end)s des %(open)s contrats "
        "ouverts (%(share)s %%, limite %(limit)s %%) ; chargé pour de bon, il serait refusé sans forçage"
    ),
    "unreadable_adherents": _(
        "%(count)s ligne(s) rejetée(s) sans numéro d'adhérent lisible : ce chargement complet n'a mis fin à "
        "rien"
    ),
    "forced": _("chargement complet forcé au-delà du seuil de sécurité"),
}

UNKNOWN = _("motif non reconnu")


def entry(code: str, **params) -> dict:
    """A message as stored: its code and its parameters (numbers, line numbers, column names)."""
    return {"code": code, **params}


def describe(message, language: str | None = None) -> str:
    """The words of a stored message in the active language (or ``language``); a plain string (an older run's
    English sentence) is shown as it is."""
    if message is None or message == "":
        return ""
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return str(message)
    if language:
        with translation.override(language):
            return describe(message)
    code = message.get("code", "")
    template = ROW_MESSAGES.get(code) or FILE_MESSAGES.get(code)
    if template is None:
        return str(UNKNOWN)
    params = {k: v for k, v in message.items() if k != "code"}
    try:
        return str(template) % params if params or "%(" in str(template) else str(template)
    except (KeyError, TypeError, ValueError):
        return str(UNKNOWN)


def describe_all(messages) -> list[str]:
    """The words of a run's stored notes (a list of messages), or of an older run's text, line by line."""
    if isinstance(messages, str):
        return [line for line in messages.splitlines() if line.strip()]
    return [describe(m) for m in messages or []]


def to_json(message: dict) -> str:
    return json.dumps({k: v for k, v in message.items() if k != "code"}, sort_keys=True, ensure_ascii=False)


def from_csv(code: str, params: str) -> dict:
    """A message read back from errors.csv's ``code`` and ``params`` columns."""
    try:
        values = json.loads(params) if params else {}
    except ValueError:
        values = {}
    if not isinstance(values, dict):
        values = {}
    return {"code": code, **values}
