"""The remittance statement (*relevé*) of one transfer: what it settles, line by line, as PDF and as CSV.

The professional reconciles the amount on their bank statement with their invoices: each line is an
invoice paid (or reduced, credited, rejected with its reasons), and the lines' *paid* column adds up
to the transfer. A statement that does not add up says so on its face rather than hiding the gap.

Nothing about patients is in it: a claim keeps no identity (invoice numbers, dates, amounts, reason
codes only), and a credit note's free-text reason is left out because the professional may have typed
anything there. The IBAN is only ever the stored mask. Labels are in the reader's language
(``fr``/``en``): the reason codes through :func:`rempart.claims.reasons.label`, the rest through gettext.
The PDF is drawn with the incident notices' toolkit (ReportLab, Helvetica).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

from rempart.authorizations.templatetags.money import euros
from rempart.claims.models import Claim
from rempart.claims.reasons import label as reason_label
from rempart.lib import csv_safe
from rempart.lib.pdf import STYLES as _STYLES
from rempart.lib.pdf import PdfDocument as _Pdf
from rempart.lib.pdf import markup as _markup
from rempart.lib.pdf import pdf_text
from rempart.payments import return_reasons
from rempart.payments.models import Payment, PaymentItem

#: The order of a statement's sections: what is paid, then what is taken back, then what paid nothing.
KIND_ORDER = (
    PaymentItem.Kind.CLAIM,
    PaymentItem.Kind.REVIEW,
    PaymentItem.Kind.RETURN,
    PaymentItem.Kind.CREDIT_NOTE,
    PaymentItem.Kind.REJECTED,
)

#: Why a transfer is held (``Payment.held_reason``), in words the professional can act on.
HELD_REASONS = {
    "no_iban": gettext_lazy(
        "aucun IBAN enregistré : le titulaire renseigne les coordonnées bancaires (menu Banque)"
    ),
    "iban_on_hold": gettext_lazy(
        "le nouvel IBAN est en période d'attente de sécurité : le virement part à la fin de l'attente"
    ),
    "iban_failed": gettext_lazy(
        "la banque a rejeté le dernier virement vers cet IBAN : le titulaire en donne un nouveau"
    ),
    "organisation_suspended": gettext_lazy(
        "l'organisation est suspendue : rien n'est versé tant que l'opérateur ne l'a pas rétablie"
    ),
}


def held_label(code: str) -> str:
    return str(HELD_REASONS.get(code, code))


@dataclass(frozen=True)
class StatementLine:
    kind: str  # PaymentItem.Kind
    kind_label: str
    invoice_number: str  # "" for a returned transfer taken back
    care_date: dt.date | None
    invoice_date: dt.date | None
    claimed_cents: int | None  # the claim's, for invoice lines (None for credit notes and returns)
    accepted_cents: int | None
    paid_cents: int  # what this line adds to this transfer (negative when taken back)
    status: str  # the claim's status code, "" when the line is no claim
    status_label: str
    reasons: tuple[tuple[str, str], ...]  # (code, label in the reader's language)
    claim_id: int | None
    returned_reference: str = ""  # for a return: the transfer the bank rejected


@dataclass(frozen=True)
class Statement:
    payment: Payment
    language: str
    organisation: str
    identifiers: tuple[tuple[str, str], ...]  # ("FINESS", "750000010"), ("SIRET", …)
    address: str
    lines: tuple[StatementLine, ...]

    @property
    def total_cents(self) -> int:
        return sum(line.paid_cents for line in self.lines)

    @property
    def held(self) -> bool:
        """Nothing was sent: the amount owed waits for a later run, and the statement has no lines yet."""
        return self.payment.status == Payment.Status.HELD

    @property
    def balanced(self) -> bool:
        """The lines add up to the transfer (they always should; a gap is shown, never hidden)."""
        if self.held and not self.lines:
            return True
        return self.total_cents == self.payment.amount_cents

    def subtotals(self) -> list[tuple[str, str, int, int]]:
        """(kind, label, number of lines, amount) per kind present, in the statement's order."""
        rows = []
        for kind in KIND_ORDER:
            lines = [line for line in self.lines if line.kind == kind]
            if lines:
                rows.append((kind, lines[0].kind_label, len(lines), sum(x.paid_cents for x in lines)))
        return rows

    @property
    def file_stem(self) -> str:
        return f"releve-{self.payment.reference}"


def _language(language: str | None) -> str:
    return "en" if (language or "").lower().startswith("en") else "fr"


def _claim_reasons(claim: Claim, language: str) -> tuple[tuple[str, str], ...]:
    """The codes the decision met, then the reviewer's, each once, in order."""
    codes = list(claim.decision.get("reasons") or [])
    if claim.review_reason:
        codes.append(claim.review_reason)
    return tuple((code, reason_label(code, language)) for code in dict.fromkeys(codes))


def build_statement(payment: Payment, language: str | None = None) -> Statement:
    """The statement of one payment, in ``language`` (default: the active one)."""
    language = _language(language or translation.get_language())
    items = list(payment.items.select_related("claim").order_by("pk"))
    returned = dict(
        Payment.objects.filter(
            organisation_id=payment.organisation_id,
            return_transaction_id__in=[i.transaction_id for i in items if i.kind == PaymentItem.Kind.RETURN],
        ).values_list("return_transaction_id", "reference")
    )
    with translation.override(language):
        lines = [_line(item, language, returned) for item in items]
        order = {kind: n for n, kind in enumerate(KIND_ORDER)}
        lines.sort(key=lambda x: (order.get(x.kind, len(order)), x.invoice_number, x.returned_reference))
        organisation = payment.organisation
        professional = organisation.professional
        identifiers = []
        if professional is not None and professional.finess:
            identifiers.append(("FINESS", professional.finess))
        if professional is not None and professional.siret:
            identifiers.append(("SIRET", professional.siret))
        address = ""
        if professional is not None:
            town = " ".join(p for p in (professional.postal_code, professional.city) if p)
            address = ", ".join(p for p in (professional.address, town) if p)
        return Statement(
            payment=payment,
            language=language,
            organisation=organisation.name,
            identifiers=tuple(identifiers),
            address=address,
            lines=tuple(lines),
        )


def _line(item: PaymentItem, language: str, returned: dict) -> StatementLine:
    claim = item.claim
    kind_label = str(PaymentItem.Kind(item.kind).label) if item.kind in PaymentItem.Kind.values else item.kind
    if claim is None:
        return StatementLine(
            kind=item.kind, kind_label=kind_label, invoice_number="", care_date=None, invoice_date=None,
            claimed_cents=None, accepted_cents=None, paid_cents=item.amount_cents, status="", status_label="",
            reasons=(), claim_id=None, returned_reference=returned.get(item.transaction_id, ""),
        )  # fmt: skip
    invoice_line = item.kind in (PaymentItem.Kind.CLAIM, PaymentItem.Kind.REVIEW, PaymentItem.Kind.REJECTED)
    return StatementLine(
        kind=item.kind,
        kind_label=kind_label,
        invoice_number=claim.invoice_number,
        care_date=claim.care_date,
        invoice_date=claim.invoice_date,
        claimed_cents=claim.claimed_cents if invoice_line else None,
        accepted_cents=claim.accepted_cents if invoice_line else None,
        paid_cents=item.amount_cents,
        status=claim.status,
        status_label=str(claim.get_status_display()),
        reasons=_claim_reasons(claim, language) if invoice_line else (),
        claim_id=claim.pk,
    )


# ---------------------------------------------------------------------------------------------- the words


def payment_facts(statement: Statement) -> list[tuple[str, str]]:
    """The statement's head, as (label, value) rows, in the active language."""
    payment = statement.payment
    rows = [(_("Organisation"), statement.organisation)]
    rows += list(statement.identifiers)
    if statement.address:
        rows.append((_("Adresse"), statement.address))
    rows += [
        (_("Référence du paiement"), payment.reference),
        (_("Date d'exécution"), payment.run.execution_date.strftime("%d/%m/%Y")),
        (_("Montant du virement"), euros(payment.amount_cents)),
        (_("IBAN"), payment.iban_masked or "—"),
        (_("BIC"), payment.bic or "—"),
        (_("Statut"), str(payment.get_status_display())),
    ]
    if payment.status == Payment.Status.HELD and payment.held_reason:
        rows.append((_("Motif de la retenue"), held_label(payment.held_reason)))
    if payment.status == Payment.Status.RETURNED:
        rows.append((_("Motif du rejet bancaire"), return_reasons.label(payment.return_reason)))
    rows.append((_("Payeur"), settings.REMPART_PAYMENTS_DEBTOR["name"]))
    return rows


def _date(day: dt.date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


def _nature(line: StatementLine) -> str:
    if line.returned_reference:
        return _("%(kind)s (virement %(reference)s)") % {
            "kind": line.kind_label,
            "reference": line.returned_reference,
        }
    return line.kind_label


# ---------------------------------------------------------------------------------------------- PDF

_LINE_WIDTHS = [2.5 * cm, 2.1 * cm, 1.65 * cm, 1.65 * cm, 1.75 * cm, 1.75 * cm, 1.85 * cm, 3.75 * cm]
_CHUNK = 150  # rows per table: ReportLab lays out many small tables much faster than one long one
_GRID = TableStyle(
    [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bbbbbb")),
        ("FONTNAME", (0, 0), (-1, -1), "Helvetica"),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("LEADING", (0, 0), (-1, -1), 9),
        ("ALIGN", (4, 0), (6, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
)
_CELL = ParagraphStyle("statement_cell", parent=_STYLES["small"], fontSize=7.5, leading=9, spaceAfter=0)
# Invoice numbers have no spaces: they wrap anywhere; the nature and the reasons wrap between words.
_WRAP = {0: ParagraphStyle("statement_number", parent=_CELL, wordWrap="CJK"), 1: _CELL, 7: _CELL}
_HEAD_CELL = ParagraphStyle("statement_head", parent=_CELL, fontName="Helvetica-Bold")
_HEAD = TableStyle(
    [
        ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f2f2f2")),
    ]
)


class _StatementPdf(_Pdf):
    """The incident notices' document, with the lines' table and the reader's language in its metadata."""

    def __init__(self, *, title: str, footer: str, language: str) -> None:
        super().__init__(title=title, footer=footer)
        self.language = language

    def lines(self, header: list[str], rows: list[list[str]]) -> None:
        """The statement's lines: plain cells for dates and amounts (fast), wrapped text for the rest."""
        head = [Paragraph(_markup(text), _HEAD_CELL) for text in header]
        for start in range(0, max(len(rows), 1), _CHUNK):
            body = [
                [
                    Paragraph(_markup(cell), _WRAP[n]) if n in _WRAP and cell else pdf_text(cell)
                    for n, cell in enumerate(row)
                ]
                for row in rows[start : start + _CHUNK]
            ]
            table = Table([head, *body], colWidths=_LINE_WIDTHS, repeatRows=1, hAlign="LEFT")
            table.setStyle(_GRID)
            table.setStyle(_HEAD)
            self.story.append(table)

    def render(self) -> bytes:
        buffer = io.BytesIO()
        document = SimpleDocTemplate(
            buffer, pagesize=A4, leftMargin=2 * cm, rightMargin=2 * cm, topMargin=1.8 * cm,
            bottomMargin=1.8 * cm, title=pdf_text(self.title), author="Rempart", creator="Rempart",
            lang="en-GB" if self.language == "en" else "fr-FR",
        )  # fmt: skip
        document.build(self.story, onFirstPage=self._decorate, onLaterPages=self._decorate)
        return buffer.getvalue()


def statement_pdf(statement: Statement) -> bytes:
    payment = statement.payment
    with translation.override(statement.language):
        today = timezone.localdate().strftime("%d/%m/%Y")
        pdf = _StatementPdf(
            title=_("Relevé de paiement %(reference)s") % {"reference": payment.reference},
            footer=_("Rempart — relevé %(reference)s — %(organisation)s — édité le %(day)s")
            % {"reference": payment.reference, "organisation": statement.organisation, "day": today},
            language=statement.language,
        )
        pdf.text(_("Relevé de paiement"), "title")
        pdf.text(statement.organisation, "subtitle")
        pdf.facts(payment_facts(statement))
        if not statement.balanced:
            pdf.alert(
                _("Écart : les lignes ne font pas le montant du virement"),
                [
                    _("Total des lignes : %(lines)s ; virement : %(transfer)s. Contactez l'opérateur.")
                    % {"lines": euros(statement.total_cents), "transfer": euros(payment.amount_cents)}
                ],
            )
        if statement.held:
            pdf.alert(
                _("Virement retenu : rien n'a été versé"),
                [
                    _("%(amount)s vous sont dus ; ils seront payés par une prochaine campagne.")
                    % {"amount": euros(payment.amount_cents)},
                    held_label(payment.held_reason),
                ],
            )
        pdf.heading(_("Récapitulatif"))
        summary = [
            (_("%(kind)s (%(n)s ligne(s))") % {"kind": kind_label, "n": count}, euros(cents))
            for _kind, kind_label, count, cents in statement.subtotals()
        ]
        summary.append((_("Total du virement"), euros(statement.total_cents)))
        pdf.facts(summary, widths=(10.2 * cm, 6.8 * cm))
        pdf.heading(_("Détail des lignes"))
        if statement.lines:
            pdf.lines(_header_pdf(), [_row_pdf(line) for line in statement.lines])
        else:
            pdf.text(_("Aucune ligne"))
        pdf.space()
        pdf.text(
            _(
                "Montants en euros. « Payé sur ce relevé » : ce que chaque ligne ajoute au virement (négatif "
                "pour un avoir ou une somme reprise) ; leur somme est le montant du virement. Aucune donnée "
                "de patient ne figure sur ce relevé."
            ),
            "small",
        )
        return pdf.render()


def _header_pdf() -> list[str]:
    return [
        _("Facture"), _("Nature"), _("Soins du"), _("Facturée le"), _("Demandé"), _("Accepté"),
        _("Payé sur ce relevé"), _("Statut et motifs"),
    ]  # fmt: skip


def _row_pdf(line: StatementLine) -> list:
    money = lambda cents: "" if cents is None else euros(cents)  # noqa: E731
    status = "; ".join(filter(None, [line.status_label, *(text for _code, text in line.reasons)]))
    return [
        line.invoice_number, _nature(line), _date(line.care_date), _date(line.invoice_date),
        money(line.claimed_cents), money(line.accepted_cents), euros(line.paid_cents), status,
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------- CSV


def _decimal(cents: int | None, language: str) -> str:
    """Euros for a spreadsheet in the reader's language: ``-1234,50`` (fr) or ``-1234.50`` (en)."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}{',' if language == 'fr' else '.'}{rest:02d}"


def statement_csv(statement: Statement) -> bytes:
    """One row per line, then the total row; UTF-8 with BOM, « ; » separated, every cell neutralised.

    Headers and labels in the reader's language, dates ISO (read right by every spreadsheet), amounts in
    euros with the language's decimal separator. Software reads the JSON API instead (integer cents).
    """
    payment, language = statement.payment, statement.language
    handle = io.StringIO()
    writer = csv_safe.writer(handle)
    with translation.override(language):
        writer.writerow(
            [
                _("Référence du paiement"), _("Date d'exécution"), _("IBAN"), _("Facture"), _("Nature"),
                _("Date des soins"), _("Date de facture"), _("Demandé (€)"), _("Accepté (€)"),
                _("Payé sur ce relevé (€)"), _("Statut"), _("Codes motifs"), _("Motifs"),
            ]
        )  # fmt: skip
        head = [payment.reference, payment.run.execution_date.isoformat(), payment.iban_masked]
        for line in statement.lines:
            writer.writerow(
                [
                    *head, line.invoice_number, _nature(line),
                    line.care_date.isoformat() if line.care_date else "",
                    line.invoice_date.isoformat() if line.invoice_date else "",
                    _decimal(line.claimed_cents, language), _decimal(line.accepted_cents, language),
                    _decimal(line.paid_cents, language), line.status_label,
                    ",".join(code for code, _text in line.reasons), " ; ".join(text for _c, text in line.reasons),
                ]
            )  # fmt: skip
        writer.writerow(
            [*head, "", _("Total du virement"), "", "", "", "", _decimal(statement.total_cents, language),
             str(payment.get_status_display()), "", ""]
        )  # fmt: skip
    return handle.getvalue().encode("utf-8-sig")
