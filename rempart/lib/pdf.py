"""Short documents people open (incident notices, remittance statements) as PDF, with ReportLab.

One look for every document Rempart hands over: Helvetica (ReportLab's built-in font draws the
Windows-1252 set, which covers French; anything else in free text is replaced by a near equivalent),
a title, sections, facts tables and warnings, and a footer on every page.
"""

from __future__ import annotations

import io
import unicodedata
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

# --- Text for the PDFs: ReportLab's built-in Helvetica draws the Windows-1252 set (é è à ç œ « » — ’ €),
# which covers French; anything else that comes from free text is replaced by a near equivalent.

_REPLACEMENTS = {
    "\u202f": "\u00a0",  # narrow no-break space (French typography) → no-break space
    "\u2009": " ",
    "\u2011": "-",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
    "\u2713": "v",
    "\u2714": "v",
    "\u2212": "-",
    "\u2248": "~",
}


def _drawable(character: str) -> str:
    if character in "\n\t":
        return character
    if character in _REPLACEMENTS:
        return _REPLACEMENTS[character]
    if unicodedata.category(character).startswith("C"):
        return " "
    try:
        character.encode("cp1252")
        return character
    except UnicodeEncodeError:
        pass
    base = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
    try:
        return base.encode("cp1252").decode("cp1252") if base else "?"
    except UnicodeEncodeError:
        return "?"


def pdf_text(text: object) -> str:
    """Text that Helvetica can draw (characters outside Windows-1252 replaced)."""
    text = str(text)
    try:
        text.encode("cp1252")
        if not any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
            return text
    except UnicodeEncodeError:
        pass
    return "".join(_drawable(c) for c in text)


def markup(text: object) -> str:
    """Free text as Paragraph markup: drawable, escaped, line breaks kept."""
    return escape(pdf_text(text)).replace("\n", "<br/>")


# --- PDF building blocks.

BASE = ParagraphStyle("base", fontName="Helvetica", fontSize=10, leading=13.5, spaceAfter=5)
STYLES = {
    "base": BASE,
    "small": ParagraphStyle("small", parent=BASE, fontSize=8.5, leading=11),
    "title": ParagraphStyle(
        "title", parent=BASE, fontName="Helvetica-Bold", fontSize=15, leading=19, spaceAfter=4
    ),
    "subtitle": ParagraphStyle("subtitle", parent=BASE, fontSize=10.5, textColor=colors.HexColor("#444444")),
    "h2": ParagraphStyle(
        "h2", parent=BASE, fontName="Helvetica-Bold", fontSize=11.5, leading=15, spaceBefore=9, spaceAfter=4
    ),
    "cell": ParagraphStyle("cell", parent=BASE, fontSize=9.5, leading=12, spaceAfter=0),
    "cell_bold": ParagraphStyle(
        "cell_bold", parent=BASE, fontName="Helvetica-Bold", fontSize=9.5, leading=12
    ),
    "alert": ParagraphStyle(
        "alert",
        parent=BASE,
        fontName="Helvetica-Bold",
        fontSize=11,
        leading=14,
        textColor=colors.HexColor("#9b1c1c"),
    ),
    "draft": ParagraphStyle(
        "draft",
        parent=BASE,
        fontName="Helvetica-Bold",
        fontSize=12,
        leading=15,
        textColor=colors.HexColor("#9b1c1c"),
        alignment=1,
    ),
    "bullet": ParagraphStyle("bullet", parent=BASE, leftIndent=14, bulletIndent=3, spaceAfter=3),
    "hash": ParagraphStyle("hash", parent=BASE, fontName="Courier", fontSize=7.5, leading=10, spaceAfter=0),
    "letter": ParagraphStyle("letter", parent=BASE, fontSize=10, leading=13.2, spaceAfter=5),
    "letter_head": ParagraphStyle(
        "letter_head",
        parent=BASE,
        fontName="Helvetica-Bold",
        fontSize=10,
        leading=13.2,
        spaceBefore=4,
        spaceAfter=3,
    ),
    "letter_bullet": ParagraphStyle(
        "letter_bullet", parent=BASE, fontSize=10, leading=13.2, leftIndent=14, bulletIndent=3, spaceAfter=2
    ),
}
RED = colors.HexColor("#9b1c1c")


class PdfDocument:
    """A short French document: title, sections, facts tables, warnings; a footer on every page."""

    def __init__(self, *, title: str, footer: str, banner: str = "", lang: str = "fr-FR") -> None:
        self.title = title
        self.lang = lang  # the document's language, for readers and screen readers
        self.footer = pdf_text(footer)
        self.banner = pdf_text(banner)
        self.story: list = []

    def add(self, markup: str, style: str = "base") -> None:
        self.story.append(Paragraph(markup, STYLES[style]))

    def text(self, text: object, style: str = "base") -> None:
        self.add(markup(text), style)

    def heading(self, text: str) -> None:
        self.text(text, "h2")

    def bullets(self, items, style: str = "bullet") -> None:
        for item in items:
            self.story.append(Paragraph(markup(item), STYLES[style], bulletText="•"))

    def space(self, height: float = 0.3) -> None:
        self.story.append(Spacer(1, height * cm))

    def page_break(self) -> None:
        self.story.append(PageBreak())

    def facts(self, rows, widths=(6.2 * cm, 10.8 * cm), *, hashes: tuple[str, ...] = ()) -> None:
        """A two-column table; values listed in ``hashes`` are set in a small fixed font, on one line."""
        data = [
            [
                Paragraph(markup(label), STYLES["cell_bold"]),
                Paragraph(markup(value), STYLES["hash" if label in hashes else "cell"]),
            ]
            for label, value in rows
        ]
        table = Table(data, colWidths=list(widths), hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#bbbbbb")),
                    ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f2f2f2")),
                    ("TOPPADDING", (0, 0), (-1, -1), 3),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ]
            )
        )
        self.story.append(table)
        self.space(0.2)

    def alert(self, headline: str, details: list[str]) -> None:
        cells = [[Paragraph(markup(headline), STYLES["alert"])]]
        cells += [[Paragraph(markup(line), STYLES["cell"])] for line in details]
        table = Table(cells, colWidths=[17 * cm], hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("BOX", (0, 0), (-1, -1), 1.6, RED),
                    ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fdecec")),
                    ("LEFTPADDING", (0, 0), (-1, -1), 8),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                ]
            )
        )
        self.story.append(KeepTogether([table, Spacer(1, 0.3 * cm)]))

    def _decorate(self, canvas, document) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(2 * cm, 1.2 * cm, self.footer)
        canvas.drawRightString(A4[0] - 2 * cm, 1.2 * cm, f"page {document.page}")
        if self.banner:
            canvas.setFont("Helvetica-Bold", 9)
            canvas.setFillColor(RED)
            canvas.drawCentredString(A4[0] / 2, A4[1] - 1.1 * cm, self.banner)
        canvas.restoreState()

    def render(self) -> bytes:
        buffer = io.BytesIO()
        document = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=2 * cm,
            rightMargin=2 * cm,
            topMargin=1.8 * cm,
            bottomMargin=1.8 * cm,
            title=pdf_text(self.title),
            author="Rempart",
            creator="Rempart",
            lang=self.lang,
        )
        document.build(self.story, onFirstPage=self._decorate, onLaterPages=self._decorate)
        return buffer.getvalue()


# --- The facts every document of one insurer shares.
