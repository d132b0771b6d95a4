"""The insurer statement as PDF (rempart.lib.pdf, the toolkit of every other document), in French and in English.

Both are rendered once, at issue, from the same figures, and each is kept with its SHA-256: a statement is
immutable, so its documents are too, and the one a reader gets is checked against its digest before it is
served (French: ``statements.verified_pdf``; English: ``statements.verified_pdf_for``, the same check and events). Dates are
written out ("1 décembre 2026" / "1 December 2026": never 01/12 against 12/01) and amounts in each language's
notation. No personal data and no raw code: totals by care domain and professional category under their
names ("Optique"), the fees by component in words; the per-claim detail is the detail file's.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.http import HttpResponse
from django.utils import dateformat, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import override

from rempart.billing.models import Statement
from rempart.lib.pdf import PdfDocument
from rempart.registry.models import CareDomain

LANGUAGES = ("fr", "en")
PDF_LANG = {"fr": "fr-FR", "en": "en-GB"}


def language_of(code: str | None) -> str:
    """The statement language for a Django language code (anything but English reads French, the default)."""
    return "en" if (code or "").lower().startswith("en") else "fr"


# ----------------------------------------------------------------------------------------------- labels


def domain_label(code: str) -> str:
    """A care domain's name in the active language ("OPTI" → "Optique"); an unknown code is shown as is."""
    try:
        return str(CareDomain(code).label)
    except ValueError:
        return code or "—"


def category_label(key: str) -> str:
    """A professional category, its domains joined ("OPTI+PHAR" → "Optique + Pharmacie"); "—": none known."""
    if not key or key == "—":
        return _("sans domaine déclaré")
    return " + ".join(domain_label(code) for code in key.split("+"))


def summary_rows(statement: Statement, key: str) -> list[dict]:
    """The summary's ``by_domain`` / ``by_category`` rows, labelled in the active language, sorted by label."""
    label = domain_label if key == "by_domain" else category_label
    rows = [{"label": label(name), **row} for name, row in ((statement.summary or {}).get(key) or {}).items()]
    return sorted(rows, key=lambda row: row["label"])


def money(cents: int, language: str) -> str:
    """Integer cents in the language's notation: "1 234,56 €" (French) or "€1,234.56" (English)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(int(cents)), 100)
    if language == "en":
        return f"{sign}€{whole:,}.{rest:02d}"
    return f"{sign}{whole:,}".replace(",", "\u202f") + f",{rest:02d}\u00a0€"


def long_date(value: dt.date | dt.datetime, language: str) -> str:
    """A date written out in the language: "1 décembre 2026" / "1 December 2026"."""
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value).date()
    with override(language):
        return dateformat.format(value, "j F Y")


# ----------------------------------------------------------------------------------------------- rendering


def render(statement: Statement, language: str = "fr") -> bytes:
    """The PDF of an issued statement in ``language`` ("fr" or "en"), whatever the active language."""
    with override(language):
        return _render(statement, language)


def render_all(statement: Statement) -> None:
    """Render the statement in every language and set each PDF and its SHA-256 (the caller saves)."""
    french, english = render(statement, "fr"), render(statement, "en")
    statement.pdf_content, statement.pdf_sha256 = french, hashlib.sha256(french).hexdigest()
    statement.pdf_en_content, statement.pdf_en_sha256 = english, hashlib.sha256(english).hexdigest()


def _render(statement: Statement, language: str) -> bytes:
    insurer = statement.insurer
    m = lambda cents: money(cents, language)  # noqa: E731 - local shorthand
    d = lambda day: long_date(day, language)  # noqa: E731
    title = (
        _("Relevé rectificatif %(n)s") if statement.kind == Statement.Kind.CORRECTION else _("Relevé %(n)s")
    ) % {"n": statement.number}
    pdf = PdfDocument(title=title, footer=f"Rempart — {statement.number}", lang=PDF_LANG[language])
    pdf.text(title, "title")
    facts = [
        (_("Assureur"), f"{insurer.name} (AMC {insurer.amc_number})"),
        (_("Période"), _("du %(start)s au %(end)s") % {"start": d(statement.period_start),
                                                        "end": d(statement.period_end)}),
        (_("Émis le"), d(statement.issued_at)),
        (_("Échéance"), d(statement.due_date)),
    ]  # fmt: skip
    if statement.corrects_id:
        facts.append((_("Rectifie"), statement.corrects.number))
        facts.append((_("Motif"), statement.summary.get("reason", "")))
    pdf.facts(facts)
    pdf.heading(_("Montants"))
    pdf.facts(
        [
            (_("Payé pour votre compte"), m(statement.paid_cents)),
            (_("Avoirs, révisions et annulations"), m(statement.reversals_cents)),
            (_("Frais de gestion"), m(statement.fees_cents)),
            (_("Total dû"), m(statement.total_cents)),
            (_("Lignes"), str(statement.summary.get("lines", 0))),
        ]
    )
    for heading, key in (
        (_("Par domaine de soins"), "by_domain"),
        (_("Par catégorie de professionnel"), "by_category"),
    ):
        rows = summary_rows(statement, key)
        if rows:
            pdf.heading(heading)
            pdf.facts(
                [(row["label"], _("%(n)s lignes, payé %(p)s, avoirs %(r)s") % {
                    "n": row["lines"], "p": m(row["paid_cents"]), "r": m(row["reversals_cents"])})
                 for row in rows]
            )  # fmt: skip
    fees = statement.summary.get("fees") or {}
    if fees:
        pdf.heading(_("Frais de gestion"))
        pdf.facts(
            [
                (_("Vérifications de droits"), f"{fees['rights_checks']} — {m(fees['rights_check_cents'])}"),
                (_("Prises en charge"), f"{fees['pecs']} — {m(fees['pec_cents'])}"),
                (_("Factures payées"), f"{fees['invoices']} — {m(fees['invoice_cents'])}"),
                (_("Part des montants payés"), m(fees["share_cents"])),
            ]
        )
    return pdf.render()


# ----------------------------------------------------------------------------------------------- serving


def file_name(statement: Statement, language: str) -> str:
    return f"releve-{statement.number}.pdf" if language == "fr" else f"statement-{statement.number}.pdf"


def requested_language(request) -> str:
    """The reader's language (Accept-Language, cookie), unless the link asks for the other (``?langue=fr|en``)."""
    asked = request.GET.get("langue")
    return asked if asked in LANGUAGES else language_of(translation.get_language())


def response(statement: Statement, content: bytes, sha256: str, language: str) -> HttpResponse:
    """The PDF as a download: its digest in ``X-Content-SHA256``, its language in ``Content-Language``."""
    served = HttpResponse(content, content_type="application/pdf")
    served["Content-Disposition"] = f'attachment; filename="{file_name(statement, language)}"'
    served["Content-Language"] = language
    served["Cache-Control"] = "no-store"
    served["X-Content-SHA256"] = sha256
    return served
