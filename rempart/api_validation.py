"""pydantic's validation messages are English sentences: say them in the request's language instead.

django-ninja hands over pydantic's errors (``type``, ``loc``, ``msg``, ``ctx``). The ``type`` is stable, so
the message is rebuilt from it with gettext; a message of our own validators (``value_error``) is already
translated (it was raised with gettext inside the request) and only loses pydantic's "Value error, " prefix.
"""

from __future__ import annotations

from django.utils.translation import gettext as _


def _expected(ctx: dict) -> str:
    return str(ctx.get("expected", "")).replace("'", "")


def message_for(error: dict) -> str:
    """One pydantic error as a short sentence in the active language (never pydantic's English)."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        message = str(error.get("msg", ""))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        return message or _("valeur invalide")
    if kind == "missing":
        return _("champ obligatoire")
    if kind == "extra_forbidden":
        return _("champ inconnu")
    if kind in ("string_type", "string_sub_type"):
        return _("texte attendu")
    if kind == "string_too_short":
        return _("au moins %(n)s caractère(s)") % {"n": ctx.get("min_length", 1)}
    if kind == "string_too_long":
        return _("au plus %(n)s caractère(s)") % {"n": ctx.get("max_length", "?")}
    if kind == "string_pattern_mismatch":
        return _("format non reconnu")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("nombre entier attendu")
    if kind in ("float_type", "float_parsing", "decimal_type", "decimal_parsing"):
        return _("nombre attendu")
    if kind in ("decimal_max_digits", "decimal_max_places", "decimal_whole_digits"):
        return _("nombre trop long")
    if kind in ("bool_type", "bool_parsing"):
        return _("true ou false attendu")
    if kind.startswith("date") or kind.startswith("datetime"):
        return _("date attendue au format AAAA-MM-JJ")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next((ctx[k] for k in ("ge", "gt", "le", "lt") if k in ctx), "?")
        sentences = {
            "greater_than": _("supérieur à %(n)s attendu"),
            "greater_than_equal": _("au moins %(n)s"),
            "less_than": _("inférieur à %(n)s attendu"),
            "less_than_equal": _("au plus %(n)s"),
        }
        return sentences[kind] % {"n": bound}
    if kind in ("literal_error", "enum"):
        return _("valeur non reconnue (attendu : %(expected)s)") % {"expected": _expected(ctx)}
    if kind in ("list_type", "tuple_type", "set_type"):
        return _("liste attendue")
    if kind in ("too_short",):
        return _("au moins %(n)s élément(s)") % {"n": ctx.get("min_length", 1)}
    if kind in ("too_long",):
        return _("au plus %(n)s élément(s)") % {"n": ctx.get("max_length", "?")}
    if kind in ("dict_type", "model_type", "model_attributes_type", "dataclass_type"):
        return _("objet JSON attendu")
    if kind == "json_invalid":
        return _("corps JSON illisible")
    return _("valeur invalide")


def field_of(error: dict) -> str | None:
    """The field's dotted path, without django-ninja's source (``body``, ``query``…) and body name."""
    location = [str(part) for part in error.get("loc", [])]
    if location and location[0] in ("body", "query", "path", "header", "cookie", "form", "file"):
        location = location[1:]
    if location and location[0] == "payload":
        location = location[1:]
    return ".".join(location) or None
