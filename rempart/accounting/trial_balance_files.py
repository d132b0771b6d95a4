"""The trial balance for the operator's accountant, as text, CSV or PDF, with the float.

Every account (also those without postings) with its debits, credits and balance at a date, the totals
(debits = credits, or the file says NOT BALANCED), and **the float**: money advanced to professionals and not
yet recovered from insurers. From the ledger alone it is

    float = Σ insurer receivables (debit balances)  −  Σ professional payables (credit balances)

i.e. what insurers owe less what of it the operator has not paid out yet. Since claims post D receivable /
C payable, payments D payable / C bank, fees D receivable / C revenue and receipts D bank / C receivable,
the same figure is ``paid out to professionals (net of returns) − received from insurers + fees billed``:
the receipts are taken to pay the billed fees first, the rest recovers advances. The three components are
printed with it (from the kinds of the bank's postings and the revenue's), and the file says whether they add
up (they do unless someone posted outside these flows). Amounts in the CSV are integer cents (no rounding,
no locale) with a euro column beside them for people; the PDF uses ``rempart/lib/pdf.py``.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from django.db.models import Sum

from rempart.accounting import books
from rempart.accounting.models import Posting, Purpose, TransactionKind
from rempart.lib import csv_safe

FORMATS = ("text", "csv", "pdf")


def euros(cents: int) -> str:
    """1234567 → "12 345,67" (French notation, plain spaces)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}".replace(",", " ") + f",{rest:02d}"


@dataclass(frozen=True)
class Float:
    receivables_cents: int  # what insurers owe (debit-positive sum of their receivables)
    payables_cents: int  # what is owed to professionals (credit balances, positive)
    paid_out_cents: int  # bank credits for payments less returned payments
    received_cents: int  # bank debits for receipts
    fees_cents: int  # revenue credits for fees

    @property
    def float_cents(self) -> int:
        return self.receivables_cents - self.payables_cents

    @property
    def reconciled(self) -> bool:
        return self.float_cents == self.paid_out_cents - self.received_cents + self.fees_cents


def _sum(at: dt.date | None, **filters) -> int:
    postings = Posting.objects.filter(**filters)
    if at is not None:
        postings = postings.filter(effective_date__lte=at)
    return postings.aggregate(s=Sum("amount_cents", default=0))["s"]


def float_at(trial: books.TrialBalance) -> Float:
    receivables = sum(r.balance_cents for r in trial.rows if r.account.purpose == Purpose.INSURER_RECEIVABLE)
    payables = -sum(r.balance_cents for r in trial.rows if r.account.purpose == Purpose.PROFESSIONAL_PAYABLE)
    bank = {"account__purpose": Purpose.OPERATOR_BANK}
    paid_out = -_sum(
        trial.at, transaction__kind__in=(TransactionKind.PAYMENT, TransactionKind.PAYMENT_RETURNED), **bank
    )
    received = _sum(trial.at, transaction__kind=TransactionKind.RECEIPT, **bank)
    fees = -_sum(trial.at, transaction__kind=TransactionKind.FEE, account__purpose=Purpose.OPERATOR_REVENUE)
    return Float(receivables, payables, paid_out, received, fees)


def _when(at: dt.date | None) -> str:
    return at.isoformat() if at else "today"


def as_text(trial: books.TrialBalance, money_float: Float) -> str:
    lines = [f"Trial balance at {_when(trial.at)}, in euros (D: debit balance, C: credit balance)"]
    header = f"{'account':<16} {'name':<56} {'kind':<9} {'debits':>16} {'credits':>16} {'balance':>18}"
    lines += [header, "-" * len(header)]
    for row in trial.rows:
        side = "D" if row.balance_cents > 0 else "C" if row.balance_cents < 0 else " "
        lines.append(
            f"{row.account.code:<16} {row.account.name[:56]:<56} {row.account.kind:<9} "
            f"{euros(row.debits_cents):>16} {euros(row.credits_cents):>16} {euros(abs(row.balance_cents)):>16} {side}"
        )
    state = "balanced" if trial.balanced else "NOT BALANCED"
    lines.append(f"Total debits {euros(trial.debits_cents)}  credits {euros(trial.credits_cents)}: {state}")
    lines += _float_lines(money_float)
    return "\n".join(lines) + "\n"


def _float_lines(f: Float) -> list[str]:
    check = "consistent" if f.reconciled else "INCONSISTENT (postings outside the usual flows)"
    return [
        f"Float (advanced to professionals, not yet recovered from insurers): {euros(f.float_cents)}",
        f"  = insurer receivables {euros(f.receivables_cents)} - professional payables {euros(f.payables_cents)}",
        f"  = paid out {euros(f.paid_out_cents)} - received {euros(f.received_cents)} + fees billed "
        f"{euros(f.fees_cents)}: {check}",
    ]


def as_csv(trial: books.TrialBalance, money_float: Float) -> bytes:
    buffer = io.StringIO()
    out = csv_safe.writer(buffer)
    out.writerow(
        ["code", "name", "kind", "purpose", "debits_cents", "credits_cents", "balance_cents", "balance_eur"]
    )
    for row in trial.rows:
        a = row.account
        out.writerow([a.code, a.name, a.kind, a.purpose, row.debits_cents, row.credits_cents, row.balance_cents,
                      euros(row.balance_cents)])  # fmt: skip
    out.writerow(["TOTAL", "balanced" if trial.balanced else "NOT BALANCED", "", "", trial.debits_cents,
                  trial.credits_cents, trial.debits_cents - trial.credits_cents, ""])  # fmt: skip
    f = money_float
    for code, name, cents in [
        ("FLOAT", "float: receivables - payables", f.float_cents),
        ("FLOAT_RECEIVABLES", "insurer receivables", f.receivables_cents),
        ("FLOAT_PAYABLES", "professional payables", f.payables_cents),
        ("FLOAT_PAID_OUT", "paid out to professionals, net of returns", f.paid_out_cents),
        ("FLOAT_RECEIVED", "received from insurers", f.received_cents),
        ("FLOAT_FEES", "fees billed", f.fees_cents),
    ]:
        out.writerow([code, name, "", "", "", "", cents, euros(cents)])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: spreadsheets read UTF-8 correctly


def as_pdf(trial: books.TrialBalance, money_float: Float) -> bytes:
    from reportlab.lib.units import cm
    from reportlab.platypus import Table, TableStyle

    from rempart.lib.pdf import PdfDocument, pdf_text

    pdf = PdfDocument(
        title=f"Balance générale au {_when(trial.at)}", footer=f"Rempart — balance au {_when(trial.at)}"
    )
    pdf.text(f"Balance générale au {_when(trial.at)} (montants en euros)", "title")
    data = [["Compte", "Libellé", "Débits", "Crédits", "Solde"]]
    for row in trial.rows:
        side = " D" if row.balance_cents > 0 else " C" if row.balance_cents < 0 else ""
        data.append([pdf_text(row.account.code), pdf_text(row.account.name[:48]), euros(row.debits_cents),
                     euros(row.credits_cents), euros(abs(row.balance_cents)) + side])  # fmt: skip
    data.append(["Total", "équilibrée" if trial.balanced else "NON ÉQUILIBRÉE", euros(trial.debits_cents),
                 euros(trial.credits_cents), ""])  # fmt: skip
    table = Table(
        data, colWidths=[2.6 * cm, 6.4 * cm, 2.7 * cm, 2.7 * cm, 2.6 * cm], repeatRows=1, hAlign="LEFT"
    )
    table.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 7.5), ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
                               ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                               ("FONTNAME", (0, -1), (-1, -1), "Helvetica-Bold"),
                               ("LINEBELOW", (0, 0), (-1, 0), 0.6, "#888888")]))  # fmt: skip
    pdf.story.append(table)
    pdf.space()
    f = money_float
    pdf.heading("Encours avancé (float)")
    pdf.facts([
        ("Avancé aux professionnels, non recouvré", euros(f.float_cents)),
        ("Créances sur les assureurs", euros(f.receivables_cents)),
        ("Dettes envers les professionnels", euros(f.payables_cents)),
        ("Payé aux professionnels (net des rejets)", euros(f.paid_out_cents)),
        ("Reçu des assureurs", euros(f.received_cents)),
        ("Frais facturés", euros(f.fees_cents)),
        ("Contrôle", "cohérent" if f.reconciled else "INCOHÉRENT"),
    ])  # fmt: skip
    return pdf.render()


def render(at: dt.date | None, fmt: str) -> tuple[books.TrialBalance, bytes]:
    trial = books.trial_balance(at)
    money_float = float_at(trial)
    if fmt == "csv":
        return trial, as_csv(trial, money_float)
    if fmt == "pdf":
        return trial, as_pdf(trial, money_float)
    return trial, as_text(trial, money_float).encode("utf-8")
