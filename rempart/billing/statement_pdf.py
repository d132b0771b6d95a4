"""The insurer statement as PDF (rempart.lib.pdf, the toolkit of every other document), written once at issue.

No personal data: totals by domain and professional category and the fees; the per-claim detail is the
detail file's. The statement's SHA-256 is taken over these bytes and checked at every download.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import override

from rempart.authorizations.templatetags.money import euros
from rempart.billing.models import Statement
from rempart.lib.pdf import PdfDocument


def render(statement: Statement) -> bytes:
    """The PDF of an issued statement (in French, the document's language whatever the user's)."""
    with override("fr"):
        return _render(statement)


def _render(statement: Statement) -> bytes:
    insurer = statement.insurer
    title = (
        _("Relevé rectificatif %(n)s") if statement.kind == Statement.Kind.CORRECTION else _("Relevé %(n)s")
    ) % {"n": statement.number}
    pdf = PdfDocument(title=title, footer=f"Rempart — {statement.number}")
    pdf.text(title, "title")
    facts = [
        (_("Assureur"), f"{insurer.name} (AMC {insurer.amc_number})"),
        (_("Période"), f"{statement.period_start:%d/%m/%Y} – {statement.period_end:%d/%m/%Y}"),
        (_("Émis le"), f"{statement.issued_at:%d/%m/%Y}"),
        (_("Échéance"), f"{statement.due_date:%d/%m/%Y}"),
    ]
    if statement.corrects_id:
        facts.append((_("Rectifie"), statement.corrects.number))
        facts.append((_("Motif"), statement.summary.get("reason", "")))
    pdf.facts(facts)
    pdf.heading(_("Montants"))
    pdf.facts(
        [
            (_("Payé pour votre compte"), euros(statement.paid_cents)),
            (_("Avoirs, révisions et annulations"), euros(statement.reversals_cents)),
            (_("Frais de gestion"), euros(statement.fees_cents)),
            (_("Total dû"), euros(statement.total_cents)),
            (_("Lignes"), str(statement.summary.get("lines", 0))),
        ]
    )
    for heading, key in (
        (_("Par domaine de soins"), "by_domain"),
        (_("Par catégorie de professionnel"), "by_category"),
    ):
        rows = statement.summary.get(key) or {}
        if rows:
            pdf.heading(heading)
            pdf.facts(
                [(name, _("%(n)s lignes, payé %(p)s, avoirs %(r)s") % {
                    "n": row["lines"], "p": euros(row["paid_cents"]), "r": euros(row["reversals_cents"])})
                 for name, row in rows.items()]
            )  # fmt: skip
    fees = statement.summary.get("fees") or {}
    if fees:
        pdf.heading(_("Frais de gestion"))
        pdf.facts(
            [
                (
                    _("Vérifications de droits"),
                    f"{fees['rights_checks']} — {euros(fees['rights_check_cents'])}",
                ),
                (_("Prises en charge"), f"{fees['pecs']} — {euros(fees['pec_cents'])}"),
                (_("Factures payées"), f"{fees['invoices']} — {euros(fees['invoice_cents'])}"),
                (_("Part des montants payés"), euros(fees["share_cents"])),
            ]
        )
    return pdf.render()
