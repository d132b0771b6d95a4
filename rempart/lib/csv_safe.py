"""Every CSV Rempart writes for people goes through here, so that no cell runs as a spreadsheet formula.

A cell that a spreadsheet would read as a formula (OWASP, "CSV injection") starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return, or their full-width forms (``＝ ＋ － ＠``, which some
spreadsheets fold to the ASCII ones). Such a cell gets a leading ``'``: spreadsheets show the text
as written, and a tool reading the file sees the quote. An organisation named ``=HYPERLINK(…)`` in a
scope export is then just a strange name.

Numbers stay numbers: an ``int``, ``float`` or ``Decimal``, and a text that is only a signed decimal
number (``-12.50``, ``-12,50``, ``+3``), are written as they are, since a spreadsheet reads them as the
number and runs nothing. Only the other cells are changed.

A test (rempart/registry/tests/test_lib_csv_safe.py) fails if a module writes CSV with
the csv module directly. The files Rempart writes for its own import formats (synthetic rights and
products files) are the one exception: they are data for a machine, and must round-trip unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

# ASCII and full-width (U+FF1D, U+FF0B, U+FF0D, U+FF20) formula leaders, tab and carriage return.
FORMULA_LEADS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+)"
)  # ASCII digits only, as in SQL (gate.billing)


def neutralise(value: Any) -> Any:
    """The cell as it may be written: numbers as they are, formula-looking text with a leading ``'``."""
    if value is None or isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    if text[:1] in FORMULA_LEADS and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` with every cell neutralised (same ``writerow`` and ``writerows``)."""

    def __init__(self, handle, **fmtparams) -> None:
        self._writer = csv.writer(handle, **fmtparams)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle, *, delimiter: str = ";", **fmtparams) -> SafeWriter:
    """A CSV writer for people's spreadsheets: « ; » separated (French spreadsheets), cells neutralised."""
    return SafeWriter(handle, delimiter=delimiter, **fmtparams)
