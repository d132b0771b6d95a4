"""What the invoice pages need between the form and the rules: a PEC's lines to invoice, whether a PEC can
still be invoiced, the invoice built from the form, and the rules' errors put back on the form's fields.

No HTTP and no database writes here; the views stay short.
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from rempart.authorizations.models import Pec
from rempart.claims import rules
from rempart.claims.forms import LINE_FIELDS, InvoiceForm
from rempart.claims.reasons import label

GRANTED = frozenset({Pec.Status.ACCEPTED, Pec.Status.PARTIAL})
_FORM_FIELD = {invoice_field: name for name, invoice_field in LINE_FIELDS.items()}


def invoiceable(pec: Pec, today: dt.date) -> bool:
    """Granted, still valid, neither cancelled nor already invoiced: *Facturer cette prise en charge*."""
    return (
        pec.status in GRANTED
        and pec.cancelled_at is None
        and pec.consumed_at is None
        and pec.valid_until is not None
        and pec.valid_until >= today
    )


def pec_invoice_lines(pec: Pec) -> list[dict]:
    """The PEC's accepted lines as the invoice carries them: code, class, side, quantity and unit price from
    the quote; BR, the AMO estimate and the insurer's commitment from the decision (integer cents)."""
    quoted = pec.quote.get("lines") or []
    lines = []
    for decided in pec.decision.get("lines") or []:
        if decided.get("status") != "accepted":
            continue
        index = int(decided["line"]) - 1
        quote = quoted[index] if 0 <= index < len(quoted) else {}
        quantity = int(quote.get("quantity") or 1)
        lines.append(
            {
                "code": str(decided["lpp_code"]),
                "label": decided.get("label", ""),
                "lpp_class": str(decided["class"]),
                "side": decided.get("side") or None,
                "quantity": quantity,
                "unit_price_cents": int(
                    quote.get("unit_price_cents") or int(decided["price_cents"]) // quantity
                ),
                "base_cents": int(decided["base_cents"]),
                "amo_cents": int(decided["amo_cents"]),
                "amc_cents": int(decided["amc_cents"]),
            }
        )
    return lines


def pec_prescriber(pec: Pec) -> str:
    """The prescriber of the PEC's prescription, when it is an RPPS number (it may be an AM number)."""
    from rempart.lib.identifiers import InvalidIdentifier, validate_rpps

    prescriber = str((pec.quote.get("prescription") or {}).get("prescriber_id") or "")
    try:
        return validate_rpps(prescriber)
    except InvalidIdentifier:
        return ""


def build_invoice(form: InvoiceForm, *, domain: str, pec: Pec | None) -> tuple[rules.Invoice, list[int]]:
    """The invoice from what the form could read (None where a field is bad: the rules then report nothing
    more on it), and the form row of each invoice line. A PEC's lines come from the PEC, not from the page."""
    data = form.cleaned_data
    rows = form.line_numbers()
    lines = []
    for number, n in enumerate(rows, start=1):
        if pec is not None:
            source = form.pec_lines[n - 1]
            line = rules.InvoiceLine(
                number=number, code_system="LPP", code=source["code"], quantity=source["quantity"],
                unit_price_cents=source["unit_price_cents"], base_cents=source["base_cents"],
                amo_paid_cents=data.get(f"line{n}_amo_paid"), amc_claimed_cents=data.get(f"line{n}_amc_claimed"),
                lpp_class=source["lpp_class"], side=source["side"],
            )  # fmt: skip
        else:
            line = rules.InvoiceLine(
                number=number, code_system=data.get(f"line{n}_code_system") or "",
                code=(data.get(f"line{n}_code") or "").strip().upper(), quantity=data.get(f"line{n}_quantity"),
                unit_price_cents=data.get(f"line{n}_unit_price"), base_cents=data.get(f"line{n}_base"),
                amo_paid_cents=data.get(f"line{n}_amo_paid"), amc_claimed_cents=data.get(f"line{n}_amc_claimed"),
                lpp_class=data.get(f"line{n}_lpp_class") or None, side=data.get(f"line{n}_side") or None,
            )  # fmt: skip
        lines.append(line)
    invoice = rules.Invoice(
        invoice_number=(data.get("invoice_number") or "").strip(),
        invoice_date=data.get("invoice_date"),
        care_date=data.get("care_date"),
        domain=domain,
        prescriber_rpps=(data.get("prescriber_rpps") or "").strip() or None,
        pec_number=pec.number if pec is not None else None,
        lines=tuple(lines),
        # The page has no totals to type: they are the lines' sums (the rules check each line).
        total_price_cents=_sum(
            line.unit_price_cents * line.quantity if _cents(line.unit_price_cents, line.quantity) else None
            for line in lines
        ),
        total_amo_cents=_sum(line.amo_paid_cents for line in lines),
        total_amc_cents=_sum(line.amc_claimed_cents for line in lines),
    )
    return invoice, rows


def _cents(*values) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _sum(values) -> int:
    """The sum of what could be read (a bad amount is reported on its own field, not again as a total)."""
    return sum(v for v in values if _cents(v))


def add_rule_errors(form: InvoiceForm, error: rules.ClaimInputError, rows: list[int]) -> None:
    """Each of the rules' errors on its field (or above the form), unless that field already shows one."""
    english = (get_language() or "fr").startswith("en")
    for problem in error.errors:
        if problem.field == "lines" and problem.line is None and form.non_field_errors():
            continue  # the form already said the lines are missing
        message = label(problem.code, "en") if english else problem.message
        name = problem.field
        if problem.line is not None:
            n = rows[problem.line - 1] if 0 < problem.line <= len(rows) else None
            name = f"line{n}_{_FORM_FIELD.get(problem.field, '')}" if n else ""
        if name in form.fields:
            if not form.has_error(name):
                form.add_error(name, message)
        else:
            prefix = _("Ligne %(n)s") % {"n": problem.line} + " — " if problem.line else ""
            form.add_error(None, prefix + message)


def error_summary(form: InvoiceForm) -> list[tuple[str, str]]:
    """(the bad field's id or "", "its label: the message") for the box above the form, in the page's order."""
    summary = [("", str(message)) for message in form.non_field_errors()]
    for name, field in form.fields.items():
        if not form.has_error(name):
            continue
        title = str(field.label)
        if name.startswith("line"):
            title = _("Ligne %(n)s") % {"n": name[4:].split("_", 1)[0]} + " — " + title
        for message in form.errors[name]:
            summary.append((form[name].id_for_label, f"{title} : {message}"))
    return summary
