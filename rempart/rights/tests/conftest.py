"""A small registry with known people for the rights check: an adult, a child on the parent's NIR, twins, a lunar date."""

import datetime as dt
from dataclasses import dataclass

import pytest

from rempart.lib.identifiers import nir_check_key
from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import import_rights

TODAY = dt.date.today()


def nir(body: str) -> str:
    return body + nir_check_key(body)


@dataclass
class Family:
    amc: str
    adherent: str
    parent_nir: str
    parent_birth: str
    child_birth: str
    twin_birth: str
    lunar_nir: str
    lunar_birth: str


@pytest.fixture
def family(cast, tmp_path) -> Family:
    insurer = cast.insurer.insurer
    products = tmp_path / "products.csv"
    products.write_text(synthetic.products_file_text(insurer.amc_number), encoding="utf-8")
    assert not import_products(products, insurer).errors
    f = Family(
        amc=insurer.amc_number,
        adherent="ADH-0001",
        parent_nir=nir("1850575123456"),
        parent_birth="1985-05-12",
        child_birth="2015-03-04",
        twin_birth="2018-07-09",
        lunar_nir=nir("2750399123045"),
        lunar_birth="1975-00-00",
    )
    start, year_end = f"{TODAY.year - 3}-01-01", f"{TODAY.year}-12-31"
    contract = [f.amc, f.adherent, "ESS", start, year_end, "active"]
    rows = [
        [*contract, "1", "ASSURE", "Testeur", "Paul", "M", f.parent_birth, "1", f.parent_nir, "", start, year_end],
        [*contract, "2", "ENFANT", "Testeur", "Léa", "F", f.child_birth, "1", "", f.parent_nir, start, year_end],
        [*contract, "3", "ENFANT", "Testeur", "Tom", "M", f.twin_birth, "1", "", f.parent_nir, start, year_end],
        [*contract, "4", "ENFANT", "Testeur", "Théo", "M", f.twin_birth, "2", "", f.parent_nir, start, year_end],
        [f.amc, "ADH-0002", "CONF", start, "", "active", "1", "ASSURE", "Lune", "Ada", "F", f.lunar_birth, "1", f.lunar_nir, "", start, ""],
        [f.amc, "ADH-0003", "ESS", start, f"{TODAY.year - 1}-12-31", "terminated", "1", "ASSURE", "Ancien", "Luc", "M", "1960-01-01", "1", nir("1600175123111"), "", start, f"{TODAY.year - 1}-12-31"],
    ]  # fmt: skip
    path = tmp_path / "rights.csv"
    lines = [
        fmt.magic_line(f.amc),
        fmt.header_line(),
        *(";".join(r) for r in rows),
        fmt.trailer_line(len(rows)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run, summary = import_rights(path, insurer, report_dir=tmp_path / "report", show_progress=False)
    assert summary.rejected == 0, (tmp_path / "report" / "errors.csv").read_text()
    return f
