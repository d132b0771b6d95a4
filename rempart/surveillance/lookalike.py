"""Canary families drawn from an insurer's own population, so that nothing in a copy of the registry sets them apart.

An attacker holding a copy compares every contract with the insurer's others: numbering, family shape,
ages, product, dates, how often a birth date is lunar. So a canary family is put together from pieces
of *different* real families of the same insurer (the shape and ages of one, the contract dates of
another, the product of a third, names and birth days of yet others), each piece jittered, and its
adherent number is an unused one inside the insurer's own numbering. No canary copies one family.

Pure: works on plain records (``Family``, ``Person``) that rempart.surveillance.canaries reads from the
registry or from an insurer's file; nothing here touches the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from stdnum import damm, luhn, verhoeff
from stdnum.iso7064 import mod_11_10, mod_97_10

from rempart.registry import synthetic

# ---------------------------------------------------------------------------------------------- records


@dataclass
class Person:
    """One member of a contract, as the rights file describes them (``quality`` in the file's words)."""

    member: int
    quality: str  # ASSURE, CONJOINT, ENFANT, AUTRE
    last_name: str
    first_name: str
    sex: str
    year: int
    month: int | None
    day: int | None
    rank: int
    own_nir: bool
    od_of: (
        int | None
    )  # member number whose NIR is their ouvrant droit's; 0: someone off the contract; None: none
    coverage_start: dt.date
    coverage_end: dt.date | None
    place: str = ""  # the 5 characters of department and commune of their NIR, when known (reference only)
    nir: str = ""  # drawn people only
    od_nir: str = ""

    @property
    def born(self) -> dt.date:
        """The birth date as the generator and the import treat it (unknown month or day: the 1st)."""
        return dt.date(self.year, self.month or 1, self.day or 1)

    @property
    def birth_text(self) -> str:
        return f"{self.year:04d}-{self.month or 0:02d}-{self.day or 0:02d}"


@dataclass
class Family:
    adherent: str
    product: str
    start: dt.date
    end: dt.date | None
    status: str
    people: list[Person] = field(default_factory=list)


def family_rows(family: Family, amc_number: str) -> list[list[str]]:
    """The family as rows of a rights file (format v1)."""
    contract = [
        amc_number, family.adherent, family.product, family.start.isoformat(),
        family.end.isoformat() if family.end else "", family.status,
    ]  # fmt: skip
    return [
        [
            *contract,
            str(p.member),
            p.quality,
            p.last_name,
            p.first_name,
            p.sex,
            p.birth_text,
            str(p.rank),
            p.nir if p.own_nir else "",
            p.od_nir,
            p.coverage_start.isoformat(),
            p.coverage_end.isoformat() if p.coverage_end else "",
        ]  # fmt: skip
        for p in family.people
    ]


# ---------------------------------------------------------------------------------------------- numbering

# Check digits insurers put at the end of their adherent numbers: (length, check function over the digits).
CHECKS: dict[str, tuple[int, Callable[[str], str]]] = {
    "luhn": (1, luhn.calc_check_digit),
    "verhoeff": (1, verhoeff.calc_check_digit),
    "damm": (1, damm.calc_check_digit),
    "mod11-10": (1, mod_11_10.calc_check_digit),
    "mod97-10": (2, mod_97_10.calc_check_digits),
}
CHECK_MIN_NUMBERS = 20  # fewer numbers than this cannot tell a check digit from chance
CHECK_MIN_SHARE = 0.98


def _skeleton(number: str) -> str:
    return re.sub(r"[A-Z]", "A", re.sub(r"\d", "9", number))


@dataclass(frozen=True)
class NumberShape:
    """One way the insurer writes adherent numbers: fixed characters, serial digits, maybe a check digit.

    ``pattern`` has the fixed characters as they are, ``#`` for the serial's digits and ``?`` for the
    check digits (computed over every digit before them, fixed ones included).
    """

    pattern: str
    check: str  # a key of CHECKS, or ""
    weight: int  # how many of the insurer's numbers have this shape

    @property
    def width(self) -> int:
        return self.pattern.count("#")

    def serial(self, number: str) -> int | None:
        """The serial of a number of this shape (None if the number has another shape)."""
        if len(number) != len(self.pattern):
            return None
        digits = []
        for char, slot in zip(number, self.pattern, strict=True):
            if slot == "#":
                if not char.isdigit():
                    return None
                digits.append(char)
            elif slot != "?" and char != slot:
                return None
        if self.check and self.make(int("".join(digits))) != number:
            return None
        return int("".join(digits))

    def make(self, serial: int) -> str:
        digits = iter(f"{serial:0{self.width}d}")
        text = "".join(next(digits) if slot == "#" else slot for slot in self.pattern if slot != "?")
        if self.check:
            size, compute = CHECKS[self.check]
            text += compute("".join(c for c in text if c.isdigit()))
            assert self.pattern.endswith("?" * size)
        return text


def learn_numbering(numbers: Iterable[str]) -> list[NumberShape]:
    """The shapes of the insurer's adherent numbers, each with its weight; shapes too rare to be the
    insurer's habit (under 2 %, e.g. a test contract) and shapes whose letters vary are left out."""
    numbers = [n for n in numbers if n]
    groups: dict[str, list[str]] = defaultdict(list)
    for number in numbers:
        groups[_skeleton(number)].append(number)
    floor = max(1, round(0.02 * len(numbers)))
    shapes = []
    for members in groups.values():
        if len(members) < floor:
            continue
        shape = _shape_of(members)
        if shape is not None:
            shapes.append(shape)
    return sorted(shapes, key=lambda s: -s.weight)


def _shape_of(members: list[str]) -> NumberShape | None:
    length = len(members[0])
    varying = [len({m[i] for m in members}) > 1 for i in range(length)]
    if any(v and not members[0][i].isdigit() for i, v in enumerate(varying)):
        return None  # letters that vary: not something we can continue
    # The serial: every run of digits holding a varying position, taken whole (leading zeros included).
    slots = list(members[0])
    i = 0
    while i < length:
        if members[0][i].isdigit():
            j = i
            while j < length and members[0][j].isdigit():
                j += 1
            if any(varying[i:j]):
                slots[i:j] = "#" * (j - i)
            i = j
        else:
            i += 1
    if "#" not in slots:  # one number, or all alike: its last run of digits is the serial
        runs = list(re.finditer(r"\d+", members[0]))
        if not runs:
            return None
        slots[runs[-1].start() : runs[-1].end()] = "#" * len(runs[-1].group())
    pattern = "".join(slots)
    check = _check_of(members, pattern)
    if check:
        size = CHECKS[check][0]
        last = pattern.rindex("#")
        pattern = pattern[: last - size + 1] + "?" * size + pattern[last + 1 :]
        if not pattern.endswith("?" * size) or "#" not in pattern:
            check, pattern = "", "".join(slots)
    return NumberShape(pattern, check, len(members))


def _check_of(members: list[str], pattern: str) -> str:
    if len(members) < CHECK_MIN_NUMBERS or not pattern.endswith("#"):
        return ""
    for name, (size, compute) in CHECKS.items():
        if pattern[-size:] != "#" * size:
            continue
        valid = 0
        for number in members:
            digits = "".join(c for c in number if c.isdigit())
            with contextlib.suppress(Exception):  # a library refusing odd input: not valid
                valid += compute(digits[:-size]) == digits[-size:]
        if valid >= CHECK_MIN_SHARE * len(members):
            return name
    return ""


def free_serials(shape: NumberShape, used: Iterable[int], rng: random.Random, want: int) -> list[int]:
    """Unused serials inside the range the insurer uses, in the ordinary gaps between its numbers (not in
    the big jumps, e.g. from one year's series to the next), in random order: up to ``want × 4``."""
    values = sorted(set(used))
    if len(values) < 2:
        return []
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    ordinary = max(2, 10 * statistics.median(steps))
    gaps = [(a, b) for a, b in zip(values, values[1:], strict=False) if 1 < b - a <= ordinary]
    room = sum(b - a - 1 for a, b in gaps)
    if room == 0:
        return []
    picked: set[int] = set()
    limit = min(room, 4 * want)
    while len(picked) < limit:
        a, b = rng.choices(gaps, weights=[b - a - 1 for a, b in gaps])[0]
        picked.add(rng.randint(a + 1, b - 1))
    return list(picked)


def serials_past_the_top(shape: NumberShape, used: Iterable[int], want: int) -> list[int]:
    """The next serials after the insurer's highest: the range has no room left inside."""
    values = sorted(set(used))
    top = values[-1] if values else 0
    return [s for s in range(top + 1, top + 1 + 4 * want) if s < 10**shape.width]


# ---------------------------------------------------------------------------------------------- families


class Donors:
    """What canaries borrow from the insurer's people one trait at a time: surnames, first names by sex
    and birth year, birth days, NIR birthplaces.

    Names are picked the Good–Turing way (``good_turing_pick``): a name copied from a donor would make
    the canary's name one person more frequent than the population's own names are, on average, and a
    copy of the registry counts names.
    """

    def __init__(self, families: list[Family]) -> None:
        people = [p for f in families for p in f.people]
        self.surnames = [f.people[0].last_name for f in families if f.people]  # one per family
        self.first_names: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for p in people:
            self.first_names[p.sex].append((p.year, p.first_name))
        self.days = [(p.month, p.day) for p in people if p.month and p.day]
        self.places = [p.place for p in people if p.place]
        seen = set(self.surnames)
        self.unseen_surnames = [name for name in synthetic.SURNAMES if name not in seen]

    def surname(self, rng: random.Random) -> str:
        return good_turing_pick(rng, self.surnames, self.unseen_surnames)

    def first_name(self, rng: random.Random, sex: str, year: int) -> str:
        pool = self.first_names.get(sex) or [n for names in self.first_names.values() for n in names]
        near = [name for born, name in pool if abs(born - year) <= 5]
        return good_turing_pick(rng, near or [name for _born, name in pool])


def good_turing_pick(rng: random.Random, names: list[str], unseen: Sequence[str] = ()) -> str:
    """A name with the probability Good–Turing gives it: a name seen n times weighs (n+1)·N(n+1)/N(n),
    N(k) being how many names are seen k times, and names never seen share the weight of those seen
    once (taken from ``unseen`` when there are any). Done by sampling: a random occurrence's name seen
    m times stands for a random name seen m − 1 times.

    Copying a random donor's name instead would favour names frequent by chance in this very registry.
    """
    counts = Counter(names)
    by_count: dict[int, list[str]] = defaultdict(list)
    for name, count in counts.items():
        by_count[count].append(name)
    for _attempt in range(20):
        m = counts[rng.choice(names)]
        if m == 1:
            if unseen:
                return rng.choice(unseen)
            continue
        lower = max((k for k in by_count if k < m), default=None)
        if lower is not None:
            return rng.choice(by_count[m - 1] if m - 1 in by_count else by_count[lower])
    return rng.choice(names)


def draw_families(
    reference: list[Family], people: int, rng: random.Random, today: dt.date, donors: Donors | None = None
) -> list[Family]:
    """Whole families, drawn until they hold at least ``people`` people. Adherent numbers are left blank."""
    if not reference:
        raise ValueError("no families to learn from")
    donors = donors or Donors(reference)
    drawn: list[Family] = []
    while sum(len(f.people) for f in drawn) < people:
        drawn.append(_draw_family(reference, rng, today, donors))
    return drawn


def _draw_family(reference: list[Family], rng: random.Random, today: dt.date, donors: Donors) -> Family:
    for _shape_attempt in range(20):
        shape = rng.choice(reference)  # who is in the family, and their ages
        product = rng.choice(reference).product
        shift = rng.choice((-2, -1, -1, 0, 0, 0, 1, 1, 2))  # years, the whole family at once
        for _attempt in range(30):
            dates = rng.choice(reference)  # the contract's start, end and status
            family = Family("", product, dates.start, dates.end, dates.status)
            people = _draw_people(shape, family, shift, rng, today, donors)
            if people:
                family.people = people
                return family
    raise ValueError("could not draw a coherent family from this population")


def _draw_people(
    shape: Family, family: Family, shift: int, rng: random.Random, today: dt.date, donors: Donors
) -> list[Person] | None:
    people: list[Person] = []
    surnames: dict[str, str] = {}
    births: dict[tuple, tuple] = {}  # a twin keeps their sibling's drawn birth
    for template in shape.people:
        key = (template.year, template.month, template.day)
        if key in births and template.rank > 1:
            year, month, day = births[key]
        else:
            year = template.year + shift + (rng.choice((-1, 0, 0, 1)) if template.quality != "ENFANT" else 0)
            month, day = template.month, template.day
            if month and day and donors.days:
                month, day = rng.choice(donors.days)
            elif month:
                month = rng.randint(1, 12)
            year, month, day = _not_after(year, month, day, today)
            births[key] = (year, month, day)
        if template.last_name not in surnames:
            surnames[template.last_name] = donors.surname(rng)
        person = replace(
            template, year=year, month=month, day=day, last_name=surnames[template.last_name],
            first_name=donors.first_name(rng, template.sex, year), place="", nir="", od_nir="",
        )  # fmt: skip
        person.coverage_start, person.coverage_end = _coverage(template, shape, person, family)
        if person.coverage_end and person.coverage_end < person.coverage_start:
            return None
        if family.end and person.coverage_start > family.end:
            return None  # never covered by this contract: the generator and insurers leave such rows out
        people.append(person)
    if not _generations_hold(shape.people, people):
        return None
    principal = next((p for p in people if p.quality == "ASSURE"), people[0])
    for person in people:
        if person.own_nir:
            place = rng.choice(donors.places) if donors.places and person.month else None
            person.nir = synthetic.make_nir(rng, person.sex, person.year, person.month, place)
    for person in people:
        if person.od_of is None:
            continue
        holder = next((p for p in people if p.member == person.od_of and p.own_nir), None)
        if holder is not None:
            person.od_nir = holder.nir
        else:  # an ouvrant droit who is not on the contract
            year = principal.year + rng.randint(-3, 3)
            person.od_nir = synthetic.make_nir(rng, rng.choice("MF"), year, rng.randint(1, 12))
    return people


def _generations_hold(templates: list[Person], people: list[Person]) -> bool:
    """Children stay at least as much younger than the principal as in the template (14 years at most)."""
    first = next((i for i, p in enumerate(templates) if p.quality == "ASSURE"), 0)
    for template, person in zip(templates, people, strict=True):
        if template.quality == "ENFANT":
            gap = min(14, template.year - templates[first].year)
            if person.year - people[first].year < gap:
                return False
    return True


def _not_after(year: int, month: int | None, day: int | None, today: dt.date) -> tuple:
    while (year, month or 1, day or 1) > (today.year, today.month, today.day):
        year -= 1
    return year, month, day


def _coverage(template: Person, shape: Family, person: Person, family: Family) -> tuple:
    """The member's coverage dates, following the same rule as the template's relative to its contract."""
    derived = max(shape.start, template.born)
    if template.coverage_start == derived:
        start = max(family.start, person.born)
    elif template.coverage_start == shape.start:
        start = family.start
    elif template.coverage_start == template.born:
        start = person.born
    else:
        start = family.start + (template.coverage_start - shape.start)
    if template.coverage_end == shape.end:  # both may be open-ended
        end = family.end
    elif template.coverage_end is None:
        end = None
    else:
        end = max(start, template.coverage_end - shape.start + family.start)
    return start, end


# ---------------------------------------------------------------------------------------------- file names

_SEPARATED_DATE = re.compile(
    r"(?<!\d)(\d{4})([-_.])(\d{2})\2(\d{2})(?!\d)|(?<!\d)(\d{2})([-_.])(\d{2})\6(\d{4})(?!\d)"
)


def lookalike_file_name(history: list[str], today: dt.date, fallback: str) -> str:
    """A file name like the insurer's latest ones (most recent first): dates in it become today's, a
    counter that grows from file to file takes its next value, the rest (its AMC number …) is kept."""
    if not history:
        return fallback
    dates = [_today_separated(m, today) for m in _SEPARATED_DATE.finditer(history[0])]
    template = _SEPARATED_DATE.sub("\0", history[0])  # kept out of the counters below
    tokens = re.split(r"(\d+)", template)
    others = [re.split(r"(\d+)", _SEPARATED_DATE.sub("\0", name)) for name in history[1:]]
    for index in range(1, len(tokens), 2):
        run = tokens[index]
        values = [t[index] for t in others if len(t) == len(tokens) and t[index].isdigit()]
        form = _date_format(run, today)
        if form and all(_date_format(v, today) == form for v in values):
            tokens[index] = today.strftime(form) + run[len(dt.date(2000, 1, 1).strftime(form)) :]
        elif any(int(v) != int(run) for v in values):
            tokens[index] = f"{max(int(v) for v in [run, *values]) + 1:0{len(run)}d}"
    name = "".join(tokens)
    for date in dates:
        name = name.replace("\0", date, 1)
    return name


def _date_format(run: str, today: dt.date) -> str | None:
    """The date format of a run of digits (a timestamp's date part too), if it reads as a recent date."""
    for form, size in (("%Y%m%d", 8), ("%d%m%Y", 8), ("%y%m%d", 6)):
        if len(run) != size and not (size == 8 and len(run) in (12, 14)):
            continue
        try:
            day = dt.datetime.strptime(run[:size], form).date()
        except ValueError:
            continue
        if today - dt.timedelta(days=5 * 366) <= day <= today + dt.timedelta(days=366):
            return form
    return None


def _today_separated(match: re.Match, today: dt.date) -> str:
    if match.group(1):
        sep = match.group(2)
        return f"{today:%Y}{sep}{today:%m}{sep}{today:%d}"
    sep = match.group(6)
    return f"{today:%d}{sep}{today:%m}{sep}{today:%Y}"


def shape_counts(families: Iterable[Family]) -> Counter:
    """Family compositions (qualities in member order): what the tests compare."""
    return Counter(tuple(p.quality for p in f.people) for f in families)
