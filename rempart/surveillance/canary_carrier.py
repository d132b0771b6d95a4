"""An insurer's own rights file with canary families put among its rows (rempart.surveillance.canaries).

The file is read line by line and written back with the canaries' rows inserted where the insurer's
new contracts of neighbouring numbers are: contracts are created in file order, so their ids follow
the file's own order. The error report is renumbered to the insurer's own lines afterwards.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rempart.lib import csv_safe
from rempart.lib.identifiers import LunarDate
from rempart.registry import rights_format as fmt
from rempart.registry.models import Contract, Insurer
from rempart.registry.rights_import import FileRefused, RightsFileReader
from rempart.surveillance.lookalike import Family, Person


class CarrierRefused(Exception):
    """The file is wrong as a whole (the import would refuse it): nothing was changed."""


def family_from_rows(rows: list[list[str]]) -> Family | None:
    """A family from an insurer's file rows (None if a row would not pass the import)."""
    try:
        first = [f.strip() for f in rows[0]]
        family = Family(
            first[1].upper(), first[2].upper(), dt.date.fromisoformat(first[3]),
            dt.date.fromisoformat(first[4]) if first[4] else None, first[5].lower(),
        )  # fmt: skip
        nirs = {}
        for fields in rows:
            f = [x.strip() for x in fields]
            birth = LunarDate.parse(f[11])
            nir = f[13].replace(" ", "").upper()
            if nir:
                nirs[nir] = int(f[6])
            family.people.append(
                Person(int(f[6]), f[7].upper(), f[8], f[9], f[10].upper(), birth.year, birth.month, birth.day,
                       int(f[12] or 1), bool(nir), None, dt.date.fromisoformat(f[15]),
                       dt.date.fromisoformat(f[16]) if f[16] else None, nir[5:10] if nir and birth.month else "")
            )  # fmt: skip
        for person, fields in zip(family.people, rows, strict=True):
            od = fields[14].strip().replace(" ", "").upper()
            person.od_of = nirs.get(od, 0) if od else None
    except (ValueError, IndexError, KeyError):
        return None
    if not family.people or family.people[0].quality not in fmt.QUALITIES:
        return None
    return family


@dataclass
class Carrier:
    """One of the insurer's own files, read line by line so canaries can be put among its rows."""

    lines: list[str]
    newline: str
    records: list[tuple[int, int, list[str]]]  # (first line, last line) 0-based, fields: its data rows
    trailer: int  # index of the trailer line
    numbers: list[str]
    new_families: list[Family]
    new_groups: list[tuple[int, str]]  # (first line of a new contract's rows, its number), file order
    group_starts: list[int]  # first line of every contract's rows

    @classmethod
    def read(cls, path: Path, insurer: Insurer) -> Carrier:
        try:
            with path.open("rb") as handle:
                for _row in RightsFileReader(handle, insurer.amc_number).rows():
                    pass
        except FileRefused as exc:
            raise CarrierRefused(str(exc)) from None
        text = path.read_text(encoding="utf-8-sig")
        lines = list(io.StringIO(text, newline=""))
        newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
        reader = csv.reader(iter(lines), delimiter=fmt.DELIMITER)
        records, trailer, previous = [], None, 0
        for fields in reader:
            first, last = previous, reader.line_num - 1
            previous = reader.line_num
            if first < 2 or trailer is not None or not any(f.strip() for f in fields):
                continue
            if fields[0] == fmt.TRAILER:
                trailer = first
                continue
            records.append((first, last, fields))
        groups: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
        for first, _last, fields in records:
            groups[fmt.row_key(fields)[0]].append((first, fields))
        numbers = [n for n in groups if n]
        existing = set(existing_numbers(insurer, numbers))
        new_groups = sorted((rows[0][0], n) for n, rows in groups.items() if n and n not in existing)
        new_families = [f for _line, n in new_groups if (f := family_from_rows([r for _l, r in groups[n]]))]
        starts = sorted(rows[0][0] for rows in groups.values())
        return cls(lines, newline, records, trailer, numbers, new_families, new_groups, starts)

    def write_with(
        self,
        path: Path,
        families: list[Family],
        rows_of: list[list[list[str]]],
        rng: random.Random,
        kept: list[list[list[str]]] = (),
    ) -> list[int]:
        """Write the file with the canaries' rows among its own (``kept``: rows of earlier canaries, which a
        full file must list to keep them, at random places); returns the merged file's line numbers
        (1-based) of the inserted lines, so the error report can speak of the insurer's own lines."""
        points = self._points(families, rng) + [rng.choice(self.group_starts or [self.trailer]) for _ in kept]
        insert: dict[int, list[str]] = defaultdict(list)
        placed = sorted(
            zip(points, [*rows_of, *kept], strict=True), key=lambda p: (p[0], len(p[1][0][1]), p[1][0][1])
        )
        for point, rows in placed:  # families going to the same place: in number order
            insert[point].extend(";".join(r) + self.newline for r in rows)
        out, inserted = [], []
        data_rows = len(self.records) + sum(len(rows) for rows in [*rows_of, *kept])
        for index, line in enumerate(self.lines):
            for extra in insert.get(index, ()):
                out.append(extra)
                inserted.append(len(out))
            out.append(fmt.trailer_line(data_rows) + self.newline if index == self.trailer else line)
        path.write_text("".join(out), encoding="utf-8", newline="")
        return inserted

    def _points(self, families: list[Family], rng) -> list[int]:
        """Where each family goes: before the first of the file's new contracts with a higher number
        when the file lists them in order (they are created in file order: ids follow numbers), else
        before a random one of its contracts."""
        starts = [g[0] for g in self.new_groups] or self.group_starts or [self.trailer]
        numbers = [n for _line, n in self.new_groups]
        ordered = len(numbers) >= 2 and sum(
            a < b for a, b in zip(numbers, numbers[1:], strict=False)
        ) >= 0.9 * (len(numbers) - 1)
        points = []
        for family in families:
            if ordered:
                after = [
                    line
                    for line, n in self.new_groups
                    if (len(n), n) > (len(family.adherent), family.adherent)
                ]
                points.append(after[0] if after else self._end_of_new())
            else:
                points.append(rng.choice(starts))
        return points

    def _end_of_new(self) -> int:
        """Just after the rows of the file's last new contract."""
        last_number = self.new_groups[-1][1]
        ends = [last for _first, last, fields in self.records if fmt.row_key(fields)[0] == last_number]
        return max(ends) + 1


def existing_numbers(insurer: Insurer, numbers: list[str]) -> list[str]:
    found = []
    for start in range(0, len(numbers), 500):
        found += Contract.objects.filter(
            insurer=insurer, adherent_number__in=numbers[start : start + 500]
        ).values_list("adherent_number", flat=True)
    return found


def renumber_error_lines(path: Path, inserted: list[int]) -> None:
    """The error report names the lines of the insurer's own file, not of the file with the canaries."""
    if not path.exists():
        return
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    marks = sorted(inserted)
    for row in rows[1:]:
        if row and row[0].isdigit():
            line = int(row[0])
            row[0] = str(line - sum(1 for m in marks if m < line))
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv_safe.writer(handle).writerows(rows)  # errors.csv is opened in spreadsheets
