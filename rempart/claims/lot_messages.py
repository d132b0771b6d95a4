"""The stable codes and French messages of the claims lot format (docs/formats/claims-lot-v1.md).

Kept apart from the reader so that the tables read as the spec's tables do. French is the source language;
rempart/locale/en translates. No message holds a value from the file: only field names, counts and limits.
"""

from django.utils.translation import gettext_lazy as _

# Per-field reasons (an invoice's errors, and the field named by a bad header or trailer). The key is the
# stable code given to software; the French text is the source string, translated by rempart/locale.
FIELD_MESSAGES = {
    "not_json": _("la ligne n'est pas un document JSON valide"),
    "json_constant": _("NaN, Infinity et -Infinity ne sont pas du JSON"),
    "number_too_long": _("nombre trop long"),
    "too_deep": _("structure JSON trop imbriquée"),
    "not_object": _("un objet JSON {…} est attendu"),
    "duplicate_key": _("clé présente deux fois dans le même objet"),
    "unknown_key": _("champ inconnu dans ce format"),
    "missing": _("champ obligatoire absent ou null"),
    "not_string": _("une chaîne de caractères est attendue"),
    "not_integer": _("un nombre entier est attendu"),
    "not_cents": _("un nombre entier de centimes est attendu (ni décimales, ni guillemets)"),
    "not_list": _("une liste […] est attendue"),
    "cents_range": _("montant de 0 à %(max)s centimes attendu"),
    "integer_range": _("nombre entier de %(min)s à %(max)s attendu"),
    "lines_count": _("de 1 à %(max)s lignes attendues"),
    "date_format": _("date AAAA-MM-JJ attendue"),
    "date_impossible": _("date impossible"),
    "datetime_format": _("date et heure ISO 8601 avec fuseau attendues (AAAA-MM-JJTHH:MM:SS+01:00)"),
    "reference_format": _("1 à 40 caractères : lettres, chiffres, « . », « / », « _ » ou « - »"),
    "amc_number_format": _("9 chiffres attendus"),
    "adherent_number_format": _("1 à 20 lettres, chiffres ou tirets"),
    "nir_format": _("NIR de 15 caractères attendu (13 caractères et la clé, sans espaces)"),
    "nir_key": _("clé du NIR erronée"),
    "birth_date_format": _("date de naissance AAAA-MM-JJ attendue (00 si le jour ou le mois est inconnu)"),
    "domain_format": _("code de domaine de 4 lettres majuscules attendu (PHAR, OPTI, AUDI…)"),
    "rpps_format": _("RPPS de 11 chiffres attendu"),
    "pec_number_format": _("numéro de prise en charge de 1 à 16 lettres, chiffres ou tirets attendu"),
    "code_system_choice": _("LPP, CIP13, NGAP, CCAM ou OTHER attendu"),
    "code_format": _(
        "code de 1 à 20 caractères : lettres, chiffres, espaces, « . », « + », « / », « _ » ou « - »"
    ),
    "lpp_class_choice": _("A, B, I, II ou null attendu"),
    "side_choice": _("right, left ou null attendu"),
    "duplicate_invoice_number": _("même numéro de facture que la ligne %(line)s du lot"),
    "finess_format": _("FINESS de 9 caractères avec sa clé attendu"),
    "siret_format": _("SIRET de 14 chiffres avec sa clé attendu"),
    "organisation_missing": _(
        "le FINESS de l'organisation, ou son SIRET à défaut, est attendu (un seul des deux)"
    ),
    "software_format": _("1 à 80 caractères imprimables"),
    "lot_number_mismatch": _("ce n'est pas le numéro de lot de l'en-tête"),
}

# Whole-file refusals: message key → (stable code, French text).
REFUSALS = {
    "encoding": ("encoding", _("le fichier n'est pas en UTF-8")),
    "encoding_bom": (
        "encoding",
        _("le fichier commence par une marque d'ordre des octets (BOM) : enregistrez-le en UTF-8 sans BOM"),
    ),
    "encoding_utf16": (
        "encoding",
        _("le fichier semble encodé en UTF-16 ou UTF-32 : UTF-8 sans BOM attendu"),
    ),
    "not_a_lot": (
        "not_a_lot",
        _(
            'ce n\'est pas un lot de factures : la ligne 1 doit être l\'en-tête {"format": "rempart-claims-lot", …}'
        ),
    ),
    "unsupported_version": (
        "unsupported_version",
        _("version du format non prise en charge (cette plateforme lit la version 1)"),
    ),
    "bad_header": ("bad_header", _("en-tête incorrect, champ « %(field)s » : %(reason)s")),
    "wrong_organisation": (
        "wrong_organisation",
        _("le lot est au nom d'une autre organisation que celle qui l'envoie"),
    ),
    "too_many_invoices": ("too_large", _("lot trop gros : au plus %(limit)s factures par lot")),
    "too_many_bytes": ("too_large", _("lot trop volumineux : au plus %(limit)s octets")),
    "line_too_long": ("line_too_long", _("ligne trop longue : au plus %(limit)s octets par ligne")),
    "truncated": ("truncated", _('lot tronqué : la ligne de fin {"end_of_lot": …} manque')),
    "bad_trailer": ("bad_trailer", _("ligne de fin incorrecte, champ « %(field)s » : %(reason)s")),
    "count_mismatch": (
        "count_mismatch",
        _("l'en-tête annonce %(announced)s factures, le fichier en contient %(found)s"),
    ),
    "count_exceeded": (
        "count_mismatch",
        _("l'en-tête annonce %(announced)s factures, le fichier en contient davantage"),
    ),
    "count_trailer": (
        "count_mismatch",
        _("la ligne de fin annonce %(trailer)s factures, l'en-tête %(announced)s"),
    ),
    "total_mismatch": (
        "total_mismatch",
        _("l'en-tête annonce %(announced)s centimes demandés, les factures en totalisent %(found)s"),
    ),
    "data_after_trailer": ("data_after_trailer", _("des données suivent la ligne de fin")),
}
