"""What the ledger check before a freeze verified, in words that cannot mislead (page and notices alike).

Three facts, each counted: the ledger rows verified and from which checkpoint (the verification that saved it,
by number, and its date) — or every chain from its first row —, and the scope's own rows re-hashed one by one.
Scopes frozen before these facts were kept say only what was kept: how many rows were checked.
"""

from __future__ import annotations

from django.utils import formats, timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _


def number(value: int) -> str:
    """12345 → "12 345" (French, no-break space: PDF fonts have it) or "12,345" (English)."""
    separator = "," if (get_language() or "fr").startswith("en") else "\u00a0"
    return f"{int(value):,}".replace(",", separator)


def ledger_line(scope) -> str:
    """The sentence of an intact check (an altered ledger is said by the alert shown instead)."""
    rows = ngettext("%(n)s ligne", "%(n)s lignes", scope.ledger_rows) % {"n": number(scope.ledger_rows)}
    if scope.ledger_scope_rows is None:
        return _("Registre vérifié avant le gel : %(rows)s contrôlées, intactes") % {"rows": rows}
    own = ngettext(
        "la %(n)s ligne du périmètre recalculée une à une : intacte",
        "les %(n)s lignes du périmètre recalculées une à une : intactes",
        scope.ledger_scope_rows,
    ) % {"n": number(scope.ledger_scope_rows)}
    if not scope.ledger_scope_rows:
        own = _("aucune ligne dans le périmètre à recalculer")
    words = {"rows": rows, "own": own}
    if scope.ledger_checkpoint_at is None:
        return _("Registre vérifié : %(rows)s, chaque chaîne depuis sa première ligne ; %(own)s") % words
    words["day"] = formats.date_format(timezone.localtime(scope.ledger_checkpoint_at), "SHORT_DATE_FORMAT")
    if scope.ledger_checkpoint_run:
        words["run"] = scope.ledger_checkpoint_run
        return (
            _("Registre vérifié : %(rows)s depuis le point de contrôle n° %(run)s du %(day)s ; %(own)s")
            % words
        )
    return _("Registre vérifié : %(rows)s depuis le point de contrôle du %(day)s ; %(own)s") % words
