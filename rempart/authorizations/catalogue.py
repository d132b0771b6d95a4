"""The LPP catalogue: the optics and audiology codes a prise en charge may name, as a versioned data file.

Pure: no database. ``load_catalogue(path)`` reads and checks a file (format below) and returns an
in-memory :class:`Catalogue`; its ``data_version`` is the SHA-256 of the file's bytes, stored with each
decision so that it can be reproduced. ``default_catalogue()`` is the file shipped in
``rempart/authorizations/data/``.

File format (``lpp-catalogue-v1.csv``), same conventions as the rights and products files (UTF-8, BOM
tolerated, ``;`` separator, standard CSV quotes, values trimmed, blank lines ignored):

- line 1: ``#rempart-lpp;1``
- line 2: the header (:data:`COLUMNS`, in this order)
- one row per code and validity period
- last non-blank line: ``#end;<number of data rows>``

Amounts are in euros with ``.`` or ``,`` and at most 2 decimals, stored in cents. A code may have
several rows (versions) whose validity periods must not overlap. Every problem is reported with its
line and column (:class:`CatalogueError`), in English like the other import formats.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

MAGIC = "#rempart-lpp"
VERSION = "1"
TRAILER = "#end"
COLUMNS = (
    "lpp_code",
    "label",
    "domain",
    "item",
    "class",
    "complexity",
    "base_remboursement_eur",
    "price_limit_eur",
    "age_min",
    "age_max",
    "effective_from",
    "effective_to",
    "source",
)
DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "lpp-catalogue-v1.csv"

DOMAINS = ("OPTI", "AUDI")
ITEMS = {"OPTI": ("lens", "frame"), "AUDI": ("device",)}
CLASSES = {"OPTI": ("A", "B"), "AUDI": ("I", "II")}
FULL_COVER_CLASSES = frozenset({"A", "I"})  # 100 % santé: a price limit (PLV) applies
COMPLEXITIES = ("simple", "complex", "very_complex")
MAX_EUROS = Decimal(100_000)
MAX_AGE = 150
_CODE = re.compile(r"^[0-9]{7}$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass(frozen=True)
class CatalogueEntry:
    """One version of one LPP code."""

    code: str
    label: str
    domain: str  # OPTI | AUDI
    item: str  # lens | frame | device
    lpp_class: str  # A | B | I | II
    complexity: str | None  # lenses: simple | complex | very_complex
    base_cents: int  # base de remboursement (BR), per unit
    price_limit_cents: int | None  # prix limite de vente (PLV), classes A and I only
    age_min: int
    age_max: int | None  # None: no upper bound
    effective_from: dt.date
    effective_to: dt.date | None  # last day of validity, None: open
    source: str
    line: int  # line in the file, for messages

    @property
    def full_cover(self) -> bool:
        """100 % santé (class A or I): the insurer covers the remainder up to the PLV."""
        return self.lpp_class in FULL_COVER_CLASSES

    def valid_on(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    def fits_age(self, youngest: int, oldest: int) -> bool:
        """True when some age in [youngest, oldest] is within the code's age band."""
        return oldest >= self.age_min and (self.age_max is None or youngest <= self.age_max)


class CatalogueError(ValueError):
    """The file is refused. ``problems`` lists (line, column, reason); line 0 is the file as a whole."""

    def __init__(self, problems: list[tuple[int, str, str]], name: str = "") -> None:
        self.problems = problems
        self.name = name
        shown = "; ".join(f"line {line}, {column}: {reason}" for line, column, reason in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"LPP catalogue{' ' + name if name else ''} refused: {shown}{more}")


class _RowError(ValueError):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"{column}: {reason}")
        self.column = column
        self.reason = reason


class Catalogue:
    """The codes in memory, by code then by validity period."""

    def __init__(self, entries: list[CatalogueEntry], data_version: str, name: str = "") -> None:
        by_code: dict[str, list[CatalogueEntry]] = {}
        for entry in entries:
            by_code.setdefault(entry.code, []).append(entry)
        self._by_code = {
            code: tuple(sorted(versions, key=lambda e: e.effective_from))
            for code, versions in by_code.items()
        }
        self.data_version = data_version
        self.name = name

    def lookup(self, code: str, on: dt.date) -> CatalogueEntry | None:
        """The version of ``code`` valid on the day, or None (unknown code, not yet or no longer valid)."""
        for entry in self._by_code.get(code, ()):
            if entry.valid_on(on):
                return entry
        return None

    def versions(self, code: str) -> tuple[CatalogueEntry, ...]:
        """Every version of a code, oldest first (empty when unknown): tells unknown from expired."""
        return self._by_code.get(code, ())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[CatalogueEntry]:
        for versions in self._by_code.values():
            yield from versions

    def __len__(self) -> int:
        return sum(len(versions) for versions in self._by_code.values())


# ---------------------------------------------------------------------------------------------- parsing


def _cents(column: str, text: str, *, required: bool) -> int | None:
    if not text:
        if required:
            raise _RowError(column, "missing")
        return None
    try:
        amount = Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise _RowError(column, "amount in euros expected, e.g. 32.50") from None
    if not amount.is_finite() or amount > MAX_EUROS:
        raise _RowError(column, "amount in euros expected, e.g. 32.50")
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise _RowError(column, "positive amount with at most 2 decimals expected")
    return int(amount * 100)


def _age(column: str, text: str, *, required: bool) -> int | None:
    if not text:
        if required:
            raise _RowError(column, "missing")
        return None
    if not text.isdigit() or int(text) > MAX_AGE:
        raise _RowError(column, f"whole number of years from 0 to {MAX_AGE} expected")
    return int(text)


def _date(column: str, text: str, *, required: bool) -> dt.date | None:
    if not text:
        if required:
            raise _RowError(column, "missing")
        return None
    if not _DATE.match(text):
        raise _RowError(column, "YYYY-MM-DD expected")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _RowError(column, "YYYY-MM-DD expected (impossible date)") from None


def parse_row(values: dict[str, str], line: int) -> CatalogueEntry:
    """One data row (column name → trimmed value) → entry; raises _RowError on the first problem."""
    code = values["lpp_code"]
    if not _CODE.match(code):
        raise _RowError("lpp_code", "7 digits expected")
    label = values["label"]
    if not label:
        raise _RowError("label", "missing")
    if len(label) > 200:
        raise _RowError("label", "at most 200 characters")
    domain = values["domain"].upper()
    if domain not in DOMAINS:
        raise _RowError("domain", "OPTI or AUDI expected")
    item = values["item"].lower()
    if item not in ITEMS[domain]:
        raise _RowError("item", f"one of {', '.join(ITEMS[domain])} expected for {domain}")
    lpp_class = values["class"].upper()
    if lpp_class not in CLASSES[domain]:
        raise _RowError("class", f"{' or '.join(CLASSES[domain])} expected for {domain}")
    complexity = values["complexity"].lower() or None
    if item == "lens" and complexity not in COMPLEXITIES:
        raise _RowError("complexity", f"one of {', '.join(COMPLEXITIES)} expected for a lens")
    if item != "lens" and complexity is not None:
        raise _RowError("complexity", "only for lenses: leave empty")
    base = _cents("base_remboursement_eur", values["base_remboursement_eur"], required=True)
    plv = _cents("price_limit_eur", values["price_limit_eur"], required=False)
    if lpp_class in FULL_COVER_CLASSES:
        if plv is None:
            raise _RowError("price_limit_eur", f"required for class {lpp_class} (100 % santé)")
        if plv < base:
            raise _RowError("price_limit_eur", "lower than the base de remboursement")
    elif plv is not None:
        raise _RowError("price_limit_eur", f"only for classes A and I: leave empty for class {lpp_class}")
    age_min = _age("age_min", values["age_min"], required=True)
    age_max = _age("age_max", values["age_max"], required=False)
    if age_max is not None and age_max < age_min:
        raise _RowError("age_max", "lower than age_min")
    start = _date("effective_from", values["effective_from"], required=True)
    end = _date("effective_to", values["effective_to"], required=False)
    if end is not None and end < start:
        raise _RowError("effective_to", "before effective_from")
    source = values["source"]
    if not source:
        raise _RowError("source", "missing: say where the figures come from")
    return CatalogueEntry(
        code=code,
        label=label,
        domain=domain,
        item=item,
        lpp_class=lpp_class,
        complexity=complexity,
        base_cents=base,
        price_limit_cents=plv,
        age_min=age_min,
        age_max=age_max,
        effective_from=start,
        effective_to=end,
        source=source[:300],
        line=line,
    )


def parse_catalogue(data: bytes, name: str = "") -> Catalogue:
    """Check a whole file and build the catalogue; raise :class:`CatalogueError` listing every problem."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogueError([(0, "(file)", "not valid UTF-8")], name) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True))
    except csv.Error as exc:
        raise CatalogueError([(0, "(file)", f"bad CSV quoting ({exc})")], name) from None
    numbered = [(number, [v.strip() for v in row]) for number, row in enumerate(rows, start=1)]
    if not numbered or numbered[0][1][:2] != [MAGIC, VERSION]:
        raise CatalogueError([(1, "(file)", f"not an LPP catalogue (expected '{MAGIC};{VERSION}')")], name)
    if len(numbered) < 2 or tuple(numbered[1][1]) != COLUMNS:
        raise CatalogueError([(2, "(file)", f"wrong header (expected '{';'.join(COLUMNS)}')")], name)
    body = [(number, row) for number, row in numbered[2:] if any(row)]
    if not body or body[-1][1][0] != TRAILER:
        raise CatalogueError([(0, "(file)", f"truncated: no '{TRAILER}' line at the end of the file")], name)
    trailer, body = body[-1], body[:-1]
    if len(trailer[1]) < 2 or trailer[1][1] != str(len(body)):
        raise CatalogueError(
            [
                (
                    trailer[0],
                    "(file)",
                    f"truncated or altered: the '{TRAILER}' line does not announce {len(body)} rows",
                )
            ],
            name,
        )
    problems: list[tuple[int, str, str]] = []
    entries: list[CatalogueEntry] = []
    for number, row in body:
        if len(row) != len(COLUMNS):
            problems.append((number, "(row)", f"{len(row)} fields instead of {len(COLUMNS)}"))
            continue
        try:
            entries.append(parse_row(dict(zip(COLUMNS, row, strict=True)), number))
        except _RowError as exc:
            problems.append((number, exc.column, exc.reason))
    problems += _overlaps(entries)
    if problems:
        raise CatalogueError(sorted(problems), name)
    return Catalogue(entries, digest, name)


def _overlaps(entries: list[CatalogueEntry]) -> list[tuple[int, str, str]]:
    problems = []
    by_code: dict[str, list[CatalogueEntry]] = {}
    for entry in entries:
        by_code.setdefault(entry.code, []).append(entry)
    for versions in by_code.values():
        versions.sort(key=lambda e: e.effective_from)
        for before, after in zip(versions, versions[1:], strict=False):
            if before.effective_to is None or before.effective_to >= after.effective_from:
                problems.append(
                    (
                        after.line,
                        "effective_from",
                        f"overlaps the period of line {before.line} for the same code",
                    )
                )
    return problems


def load_catalogue(path: str | Path) -> Catalogue:
    """Read, check and load a catalogue file (see the module docstring); :class:`CatalogueError` if refused."""
    path = Path(path)
    return parse_catalogue(path.read_bytes(), path.name)


def installed_path() -> Path:
    """Where ``rempart import-lpp`` installs a newer catalogue (it then wins over the shipped one)."""
    from django.conf import settings

    return Path(settings.VAR_DIR) / "lpp" / "lpp-catalogue.csv"


@functools.cache
def default_catalogue() -> Catalogue:
    """The catalogue in force, loaded once per process: the one installed by ``rempart import-lpp`` if any,
    else the one shipped with Rempart (``data/lpp-catalogue-v1.csv``)."""
    installed = installed_path()
    return load_catalogue(installed if installed.exists() else DEFAULT_PATH)
