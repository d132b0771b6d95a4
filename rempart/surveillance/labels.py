"""What surveillance stored as codes, in words: the automatic responses of alerts and the values of their evidence.

Alerts keep a response *code* and its parameters (``Alert.response``, ``Alert.response_params``), never a
sentence: the console reads them in the language chosen (French by default, English), and a SIEM receives
the code (docs/formats/alert-event-v1.md). Rows written before the codes hold a French sentence; the
migration turned the known ones into codes, and any other is shown as it is.
"""

from __future__ import annotations

import datetime as dt

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# Response codes (Alert.response). The parameters each one takes are listed beside it.
ALERT_ONLY = ""
STEP_UP = "step_up"  # no parameters
SESSION_STEP_UP = "session_step_up"  # no parameters
THROTTLED = "throttled"  # until: ISO 8601 datetime
ACCOUNT_SUSPENDED = "account_suspended"  # the account is the alert's user
TOKEN_SUSPENDED = "token_suspended"  # the token is the alert's token
ORGANISATION_SUSPENDED = "organisation_suspended"  # the organisation is the alert's organisation
IBAN_HELD = "iban_held"  # until: ISO 8601 datetime (end of the hold)
TREASURY_MAY_SWITCH_OFF = "treasury_may_switch_off"  # no parameters
DEBIT_REOPENED = "debit_reopened"  # no parameters (an insurer's direct debit returned by its bank)

RESPONSES = {
    ALERT_ONLY: gettext_lazy("alerte seulement"),
    STEP_UP: gettext_lazy("second facteur redemandé avant la prochaine vérification"),
    SESSION_STEP_UP: gettext_lazy("second facteur redemandé à cette session"),
    THROTTLED: gettext_lazy("jeton ralenti (429) jusqu'à %(until)s"),
    ACCOUNT_SUSPENDED: gettext_lazy("compte %(account)s suspendu automatiquement ; incident ouvert"),
    TOKEN_SUSPENDED: gettext_lazy("jeton %(token)s suspendu automatiquement ; incident ouvert"),
    ORGANISATION_SUSPENDED: gettext_lazy("organisation « %(organisation)s » suspendue automatiquement"),
    IBAN_HELD: gettext_lazy(
        "nouvel IBAN en attente jusqu'au %(until)s : appelez les titulaires, annulez au besoin"
    ),
    TREASURY_MAY_SWITCH_OFF: gettext_lazy(
        "aucune (la trésorerie peut couper le tiers payant pour les cartes de cet assureur)"
    ),
    DEBIT_REOPENED: gettext_lazy(
        "aucune (la créance est rouverte ; vérifiez le mandat avant de prélever à nouveau)"
    ),
}
# Sentences some rows (or a module not yet moved to codes) still hold, read as their code when shown.
LEGACY = {
    "second facteur redemandé avant la prochaine vérification": STEP_UP,
    "second facteur redemandé à cette session": SESSION_STEP_UP,
    "Aucune (la trésorerie peut couper le tiers payant pour les cartes de cet assureur).": TREASURY_MAY_SWITCH_OFF,
    "Aucune (la créance est rouverte ; vérifiez le mandat avant de prélever à nouveau).": DEBIT_REOPENED,
}

# Refusals counted as blocked attempts (rempart.surveillance.engine), in the evidence's "refusal".
REFUSALS = {
    "rate_limited": gettext_lazy("jeton ralenti (trop de vérifications)"),
    "step_up_required": gettext_lazy("second facteur redemandé"),
    "session_context_changed": gettext_lazy("session utilisée depuis une autre adresse ou un autre appareil"),
}


def when(value: dt.datetime | str | None) -> str:
    """A moment in the language of the page, unambiguous (the site's DATETIME_FORMAT: month in letters)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value is None:
        return "—"
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return formats.date_format(timezone.localtime(value), "DATETIME_FORMAT")


def day(value: dt.date | str) -> str:
    """A day in the language of the page, month in words."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value
    return formats.date_format(value, "DATE_FORMAT")


def token_words(token) -> str:
    return f"rmp_{token.prefix}_… ({token.name})"


def response_label(alert) -> str:
    """The automatic response of an alert in words (its code translated, its objects named)."""
    code = alert.response or ""
    code = LEGACY.get(code, code)
    if code not in RESPONSES:
        return code  # a sentence from before the codes: shown as it was written
    params = alert.response_params if isinstance(alert.response_params, dict) else {}
    words = {
        "until": when(params.get("until")),
        "account": alert.user.email if alert.user_id and alert.user else _("(compte inconnu)"),
        "token": token_words(alert.token) if alert.token_id and alert.token else _("(jeton inconnu)"),
        "organisation": alert.organisation.name
        if alert.organisation_id and alert.organisation
        else _("(organisation inconnue)"),
    }
    return str(RESPONSES[code]) % words if "%(" in str(RESPONSES[code]) else str(RESPONSES[code])


def euros(cents: int) -> str:
    """Integer cents in the page's notation: "1 234,56 €" (French) or "€1,234.56" (English)."""
    from django.utils.translation import get_language

    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    if (get_language() or "fr").startswith("en"):
        return f"{sign}€{whole:,}.{rest:02d}"
    return f"{sign}{whole:,}".replace(",", "\u202f") + f",{rest:02d}\u00a0€"
