"""Helpers shared by the registry tests (not a test module)."""

from __future__ import annotations

import csv
import hashlib
import itertools
from pathlib import Path

from rempart.conftest import TODAY
from rempart.registry.import_messages import describe, from_csv
from rempart.registry.models import Beneficiary, Contract, Guarantee, ImportRun, Product
from rempart.registry.rights_import import import_rights

_report_numbers = itertools.count(1)

# Column positions in a rights row (format v1).
AMC, ADHERENT, PRODUCT, C_START, C_END, C_STATUS, MEMBER, QUALITY = range(8)
LAST, FIRST, SEX, BIRTH, RANK, NIR, OD_NIR, COV_START, COV_END = range(8, 17)


def run_import(path: Path, insurer, tmp_path: Path, **kwargs):
    """Import a rights file with a fresh report directory and the tests' fixed `today`."""
    kwargs.setdefault("today", TODAY)
    kwargs.setdefault("show_progress", False)
    report_dir = tmp_path / f"report-{next(_report_numbers)}"
    return import_rights(path, insurer, report_dir=report_dir, **kwargs)


def read_errors(run: ImportRun) -> list[tuple[int, str, str]]:
    """The rows of a run's errors.csv as (line, column, reason in English, worded again from the stored code)."""
    with (Path(run.report_dir) / "errors.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0] == ["line", "column", "reason", "code", "params"]
    return [
        (int(line), column, describe(from_csv(code, params), "en"))
        for line, column, _reason, code, params in rows[1:]
    ]


def read_error_codes(run: ImportRun) -> list[tuple[int, str, str]]:
    """The rows of a run's errors.csv as (line, column, code)."""
    with (Path(run.report_dir) / "errors.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    return [(int(row[0]), row[1], row[3]) for row in rows[1:]]


def report_text(run: ImportRun) -> str:
    report = Path(run.report_dir)
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(report.iterdir()) if p.is_file())


def _plain(value):
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _rows(model) -> list[tuple]:
    names = [f.attname for f in model._meta.concrete_fields]
    return [tuple(_plain(v) for v in row) for row in model.objects.order_by("pk").values_list(*names)]


def registry_state() -> tuple[dict[str, int], str]:
    """Row counts and a digest of every column of the registry's tables, to prove nothing changed."""
    tables = {model.__name__: _rows(model) for model in (Product, Guarantee, Contract, Beneficiary)}
    digest = hashlib.sha256(repr(sorted(tables.items())).encode()).hexdigest()
    return {name: len(rows) for name, rows in tables.items()}, digest


def beneficiary_by_key(insurer) -> dict[tuple[str, int], Beneficiary]:
    return {
        (b.contract.adherent_number, b.member_number): b
        for b in Beneficiary.objects.filter(contract__insurer=insurer).select_related("contract")
    }


def nirs_of(rows: list[list[str]]) -> set[str]:
    return {value for row in rows for value in (row[NIR], row[OD_NIR]) if value}


def card_nir_matches(beneficiary, presented_nir: str) -> bool:
    """Test helper: whether a carte Vitale NIR is the beneficiary's own or their ouvrant droit's."""
    from rempart.lib.crypto import field_cipher

    index = field_cipher().blind_index("nir", presented_nir)
    return index in (bytes(beneficiary.nir_index or b""), bytes(beneficiary.od_nir_index or b""))


def birth_date_of(beneficiary):
    from rempart.lib.identifiers import LunarDate

    return LunarDate(beneficiary.birth_year, beneficiary.birth_month, beneficiary.birth_day)
