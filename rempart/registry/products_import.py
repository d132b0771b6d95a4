"""Import of an insurer's products file (docs/formats/products-v1.md): offers and their per-domain guarantees.

Small files (tens to hundreds of rows): read whole, checked row by row, good rows applied in one
transaction, bad rows reported with line, column and reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext as _

from rempart.registry.import_messages import describe, entry
from rempart.registry.models import CEILING_DOMAINS, CareDomain, Guarantee, Insurer, Product
from rempart.registry.rights_format import RowError
from rempart.registry.rights_import import FileRefused

PRODUCT_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,19}$")
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MAGIC = "#rempart-products"
VERSION = "1"
COLUMNS = (
    "product_code",
    "label",
    "responsible",
    "domain",
    "effective_from",
    "tp_code",
    "rate_percent",
    "amount_eur",
    "pec_required",
    "ceilings",
    "source",
)
CEILING_KEYS = {
    CareDomain.OPTI: {
        "frame_max", "simple_simple_min", "simple_simple_max", "simple_complex_min", "simple_complex_max",
        "simple_very_complex_min", "simple_very_complex_max", "complex_complex_min", "complex_complex_max",
        "complex_very_complex_min", "complex_very_complex_max", "very_complex_very_complex_min",
        "very_complex_very_complex_max",
    },
    CareDomain.AUDI: {"per_ear_max", "per_ear_max_with_amo"},
    CareDomain.DENT: {"prosthesis_max", "yearly_max"},
}  # fmt: skip
_YES = {
    "O": True,
    "OUI": True,
    "Y": True,
    "YES": True,
    "1": True,
    "N": False,
    "NON": False,
    "NO": False,
    "0": False,
}


@dataclass
class ProductsSummary:
    rows_read: int = 0
    products_created: int = 0
    guarantees_written: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str, dict]] = field(default_factory=list)  # (line, column, message)

    def as_text(self) -> str:
        """The summary in the active language (the command's ``--language``)."""
        rows = [
            (_("lignes lues"), self.rows_read),
            (_("produits créés"), self.products_created),
            (_("garanties écrites"), self.guarantees_written),
            (_("inchangées"), self.unchanged),
            (_("rejetées"), len(self.errors)),
        ]
        lines = [f"{label:<20}{value}" for label, value in rows]
        lines += [
            "  "
            + _("ligne %(line)s, %(column)s : %(reason)s")
            % {"line": line, "column": column, "reason": describe(message)}
            for line, column, message in self.errors
        ]
        return "\n".join(lines)


MAX_EUROS = 10_000_000  # amounts are stored in cents in 32-bit integer columns


def _cents(column: str, text: str) -> int | None:
    if not text:
        return None
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise RowError(column, "amount_format") from None
    if not amount.is_finite():  # NaN and Infinity are Decimals too, and break the checks below
        raise RowError(column, "amount_format")
    if amount > MAX_EUROS:  # also keeps quantize() within Decimal's precision
        raise RowError(column, "amount_max", max=MAX_EUROS)
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise RowError(column, "amount_precision")
    return int(amount * 100)


def _parse_ceilings(domain: str, text: str) -> dict[str, int]:
    if not text:
        return {}
    allowed = CEILING_KEYS.get(domain)
    if allowed is None:
        raise RowError("ceilings", "ceilings_domain", domains=", ".join(sorted(CEILING_DOMAINS)))
    result = {}
    for item in text.split("|"):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise RowError("ceilings", "ceilings_format", domain=domain, keys=", ".join(sorted(allowed)))
        result[key] = _cents("ceilings", value.strip())
    return result


def parse_product_row(values: dict[str, str]) -> dict:
    code = values["product_code"].upper()
    if not PRODUCT_CODE.match(code):
        raise RowError("product_code", "product_format_products")
    if not values["label"]:
        raise RowError("label", "missing")
    responsible = _YES.get(values["responsible"].upper())
    if responsible is None:
        raise RowError("responsible", "yes_no")
    domain = values["domain"].upper()
    if domain not in CareDomain.values:
        raise RowError("domain", "domain_choice", domains=", ".join(CareDomain.values))
    if not ISO_DATE.match(values["effective_from"]):
        raise RowError("effective_from", "date_format")
    try:
        effective_from = dt.date.fromisoformat(values["effective_from"])
    except ValueError:
        raise RowError("effective_from", "date_impossible") from None
    tp_code = values["tp_code"].upper()
    if not tp_code or len(tp_code) > 8:
        raise RowError("tp_code", "tp_code_format")
    rate = values["rate_percent"]
    if rate and (not (rate.isascii() and rate.isdigit()) or int(rate) > 1000):
        raise RowError("rate_percent", "rate_range")
    pec = _YES.get(values["pec_required"].upper() or "N")
    if pec is None:
        raise RowError("pec_required", "yes_no")
    return {
        "code": code,
        "label": values["label"][:200],
        "responsible": responsible,
        "domain": domain,
        "effective_from": effective_from,
        "tp_code": tp_code,
        "rate_percent": int(rate) if rate else None,
        "amount_cents": _cents("amount_eur", values["amount_eur"]),
        "pec_required": pec,
        "ceilings": _parse_ceilings(domain, values["ceilings"]),
        "source": values["source"][:200],
    }


def import_products(path: Path, insurer: Insurer, *, dry_run: bool = False) -> ProductsSummary:
    """Check a products file and apply its good rows in one transaction (none with ``dry_run``)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FileRefused("not_utf8_file") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    except csv.Error:  # e.g. a field over the csv module's size limit
        raise FileRefused("unreadable_csv_file") from None
    if not rows or rows[0][:1] != [MAGIC] or rows[0][1:2] != [VERSION]:
        raise FileRefused("not_products_file", expected=f"{MAGIC};{VERSION};{insurer.amc_number}")
    if rows[0][2:3] != [insurer.amc_number]:
        raise FileRefused("other_insurer")
    if len(rows) < 2 or [c.strip() for c in rows[1]] != list(COLUMNS):
        raise FileRefused("wrong_header", expected=";".join(COLUMNS))
    body = [(n, r) for n, r in enumerate(rows[2:], start=3) if any(f.strip() for f in r)]
    if not body or body[-1][1][0] != "#end":
        raise FileRefused("no_trailer", trailer="#end")
    *body, (_line, trailer) = body
    if trailer[1:2] != [str(len(body))]:
        announced = trailer[1].strip() if len(trailer) > 1 else ""
        raise FileRefused(
            "trailer_count",
            trailer="#end",
            announced=announced[:12] if announced.isascii() and announced.isdigit() else "?",
            found=len(body),
        )

    summary = ProductsSummary(rows_read=len(body))
    parsed = []
    seen: dict[tuple, int] = {}
    for line, fields in body:
        if len(fields) != len(COLUMNS):
            summary.errors.append(
                (line, "(row)", entry("field_count", count=len(fields), expected=len(COLUMNS)))
            )
            continue
        try:
            row = parse_product_row(dict(zip(COLUMNS, (f.strip() for f in fields), strict=True)))
        except RowError as exc:
            summary.errors.append((line, exc.column, exc.message))
            continue
        key = (row["code"], row["domain"], row["effective_from"])
        if key in seen:
            summary.errors.append((line, "effective_from", entry("duplicate_guarantee", first=seen[key])))
            continue
        seen[key] = line
        parsed.append(row)
    with transaction.atomic():
        _apply(parsed, insurer, summary)
        if dry_run:
            transaction.set_rollback(True)
    return summary


def _apply(parsed: list[dict], insurer: Insurer, summary: ProductsSummary) -> None:
    """Write the good rows (inside the caller's transaction), counting what they change."""
    for values in parsed:
        product, created = Product.objects.update_or_create(
            insurer=insurer,
            code=values["code"],
            defaults={"label": values["label"], "responsible": values["responsible"]},
        )
        summary.products_created += created
        terms = {
            k: values[k] for k in ("tp_code", "rate_percent", "amount_cents", "pec_required", "ceilings")
        }
        terms["source"] = values["source"]
        current = (
            Guarantee.objects.filter(
                product=product, domain=values["domain"], effective_from=values["effective_from"]
            )
            .values(*terms)
            .first()
        )
        if current == terms:
            summary.unchanged += 1
            continue
        Guarantee.objects.update_or_create(
            product=product,
            domain=values["domain"],
            effective_from=values["effective_from"],
            defaults=terms,
        )
        summary.guarantees_written += 1
