"""An insurer with a history, for the canary tests: a first full load, then its ordinary daily deltas.

The insurer numbers its adherents ``MT`` + 7 digits + a Luhn check digit, in increasing order, and skips
a number now and then (as real insurers do: contracts never sent, other lines of business). Its deltas
bring new adherents (numbers after the last, recent start dates, listed in number order) and changes
to existing contracts. Every person is synthetic (rempart.registry.synthetic).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

from stdnum import luhn

from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.models import ImportRun, Insurer
from rempart.registry.products_import import import_products
from rempart.registry.rights_import import import_rights

COL = {name: index for index, name in enumerate(fmt.COLUMNS)}
TODAY = dt.date(2026, 11, 25)


def adherent_number(serial: int) -> str:
    body = f"{serial:07d}"
    return f"MT{body}{luhn.calc_check_digit(body)}"


def make_insurer(tmp_path: Path, amc: str = "372518460", name: str = "Mutuelle des Tilleuls") -> Insurer:
    insurer = Insurer.objects.create(amc_number=amc, name=name, kind="mutuelle")
    products = tmp_path / f"products-{amc}.csv"
    products.write_text(synthetic.products_file_text(amc), encoding="utf-8")
    assert not import_products(products, insurer).errors
    return insurer


@dataclass
class World:
    insurer: Insurer
    tmp: Path
    seed: int
    today: dt.date = TODAY
    serial: int = 1200
    contracts: dict[str, list[list[str]]] = field(default_factory=dict)  # number → its rows, as last sent
    runs: list[ImportRun] = field(default_factory=list)
    files: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(f"world-{self.seed}")

    def next_number(self) -> str:
        self.serial += 1
        while self.rng.random() < 0.12:  # a skipped number
            self.serial += 1
        return adherent_number(self.serial)

    def families(self, beneficiaries: int, stream: str, recent: bool) -> list[list[list[str]]]:
        """Synthetic families renumbered in the insurer's numbering; ``recent``: new adherents of the
        last months (active, starting on the 1st of a recent month)."""
        spec = synthetic.InsurerSpec(
            0, self.insurer.amc_number, self.insurer.name, "mutuelle", "", beneficiaries
        )
        grouped: dict[str, list[list[str]]] = {}
        for row in synthetic.beneficiary_rows(spec, f"{self.seed}-{stream}", self.today):
            if row[COL["birth_date"]] > self.today.isoformat():
                continue
            grouped.setdefault(row[COL["adherent_number"]], []).append(list(row))
        families = []
        for rows in grouped.values():
            number = self.next_number()
            if recent:
                months_ago = self.rng.randint(0, 5)
                month = (self.today.month - 1 - months_ago) % 12 + 1
                year = self.today.year - (1 if month > self.today.month else 0)
                start = dt.date(year, month, 1)
                end = dt.date(self.today.year, 12, 31) if self.rng.random() < 0.5 else None
            for row in rows:
                row[COL["adherent_number"]] = number
                if recent:
                    birth = dt.date.fromisoformat(row[COL["birth_date"]].replace("-00", "-01"))
                    row[COL["contract_start"]] = start.isoformat()
                    row[COL["contract_end"]] = end.isoformat() if end else ""
                    row[COL["contract_status"]] = "active"
                    row[COL["coverage_start"]] = max(start, birth).isoformat()
                    row[COL["coverage_end"]] = end.isoformat() if end else ""
            families.append(rows)
        return families

    def write(self, name: str, families: list[list[list[str]]]) -> Path:
        self.files += 1
        folder = self.tmp / f"sent-{self.files}"
        folder.mkdir(parents=True)
        rows = [row for family in families for row in family]
        path = folder / name
        lines = [fmt.magic_line(self.insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
        path.write_text("\n".join([*lines, fmt.trailer_line(len(rows))]) + "\n", encoding="utf-8")
        return path

    def first_load(self, beneficiaries: int) -> None:
        families = self.families(beneficiaries, "first", recent=False)
        self._import(self.write("MT_full_20260105.csv", families), families, mode="full")

    def delta(self, day: int, new: int) -> tuple[Path, list[list[list[str]]]]:
        """The insurer's delta of one day (written, not imported): new adherents, then changed contracts."""
        families = self.families(new, f"delta-{day}", recent=True)
        changed = []
        for number in self.rng.sample(sorted(self.contracts), min(len(self.contracts), new // 10)):
            rows = [list(r) for r in self.contracts[number]]
            product = self.rng.choice(
                [p for p in ("ESS", "CONF", "PREM") if p != rows[0][COL["product_code"]]]
            )
            for row in rows:
                row[COL["product_code"]] = product
            changed.append(rows)
        date = self.today - dt.timedelta(days=40 - day)
        return self.write(f"MT_delta_{date:%Y%m%d}.csv", families + changed), families + changed

    def import_delta(self, path: Path, families: list[list[list[str]]]) -> ImportRun:
        return self._import(path, families, mode="delta")

    def _import(self, path: Path, families, mode: str) -> ImportRun:
        run, summary = import_rights(
            path, self.insurer, mode=mode, force=True, show_progress=False, today=self.today
        )
        assert summary.rejected == 0, run.report_dir
        self.remember(run, families)
        return run

    def remember(self, run: ImportRun, families) -> None:
        for rows in families:
            self.contracts[rows[0][COL["adherent_number"]]] = rows
        self.runs.append(run)
