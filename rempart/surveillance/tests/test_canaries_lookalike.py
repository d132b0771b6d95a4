"""The pure half of the canaries: learning an insurer's numbering and file names, drawing families like its own."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import Counter

from stdnum import luhn
from stdnum.iso7064 import mod_97_10

from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import validate_nir
from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.surveillance import lookalike
from rempart.surveillance.lookalike import Family, Person

TODAY = dt.date(2026, 11, 25)


def _luhn(serial: int) -> str:
    return f"MT{serial:07d}{luhn.calc_check_digit(f'{serial:07d}')}"


# --- numbering -------------------------------------------------------------------------------------------


def test_a_check_digit_and_a_prefix_are_learned_and_continued():
    numbers = [_luhn(s) for s in range(1000, 1400) if s % 9]
    [shape] = lookalike.learn_numbering(numbers)
    assert (shape.pattern, shape.check, shape.weight) == ("MT#######?", "luhn", len(numbers))
    assert shape.make(1404) == _luhn(1404) and shape.serial(_luhn(1404)) == 1404
    assert shape.serial("MT00014049") is None  # a wrong check digit is not the insurer's number
    free = lookalike.free_serials(shape, [shape.serial(n) for n in numbers], random.Random(1), 5)
    assert free and all(1000 < s < 1400 and s % 9 == 0 for s in free)  # the gaps inside the range, only


def test_two_digit_keys_and_plain_numbers():
    keyed = [f"{s:08d}{mod_97_10.calc_check_digits(f'{s:08d}')}" for s in range(5000, 5100)]
    assert lookalike.learn_numbering(keyed)[0].check == "mod97-10"
    [plain] = lookalike.learn_numbering([f"{s:010d}" for s in range(1, 200)])
    assert (plain.pattern, plain.check) == ("#" * 10, "")
    assert lookalike.free_serials(plain, range(1, 200), random.Random(2), 3) == []  # no room inside
    assert lookalike.serials_past_the_top(plain, range(1, 200), 2)[:2] == [200, 201]


def test_shapes_keep_their_proportions_and_a_stray_number_is_not_a_habit():
    numbers = [f"2019-{s:06d}" for s in range(1, 301)] + [f"A{s:06d}" for s in range(1, 101)] + ["DEMO-0001"]
    shapes = lookalike.learn_numbering(numbers)
    assert [(s.pattern, s.weight) for s in shapes] == [("2019-######", 300), ("A######", 100)]
    series = [f"2019-{s:06d}" for s in range(1, 50, 2)] + [f"2020-{s:06d}" for s in range(1, 50, 2)]
    [shape] = lookalike.learn_numbering(series)
    free = lookalike.free_serials(shape, [shape.serial(n) for n in series], random.Random(3), 40)
    made = [shape.make(s) for s in free]
    assert made and all(int(n[-6:]) < 50 for n in made)  # in the series' gaps, not in the jump between years


def test_letters_that_vary_are_not_continued():
    assert lookalike.learn_numbering([f"{s:05d}{'ABCDEFGH'[s % 8]}" for s in range(100)]) == []


# --- file names ------------------------------------------------------------------------------------------


def test_file_names_follow_the_insurers_own():
    name = lookalike.lookalike_file_name
    assert name(["MT_delta_20261124.csv", "MT_delta_20261123.csv"], TODAY, "x") == "MT_delta_20261125.csv"
    assert (
        name(["DELTA_0042_2026-11-20.csv", "DELTA_0041_2026-11-19.csv"], TODAY, "x")
        == "DELTA_0043_2026-11-25.csv"
    )
    assert name(["amc372518460_20261124T0200.csv"], TODAY, "x") == "amc372518460_20261125T0200.csv"
    assert name(["rights-372518460.csv"], TODAY, "x") == "rights-372518460.csv"  # an AMC number is kept
    assert name(["lot000123.csv", "lot000122.csv"], TODAY, "x") == "lot000124.csv"  # a counter, not a date
    assert name([], TODAY, "rights-372518460.csv") == "rights-372518460.csv"


# --- families --------------------------------------------------------------------------------------------


def _reference(count: int, seed: int = 4) -> list[Family]:
    """Synthetic families as the registry holds them."""
    spec = synthetic.InsurerSpec(0, "372518460", "Mutuelle", "mutuelle", "", count)
    grouped: dict[str, list[list[str]]] = {}
    for row in synthetic.beneficiary_rows(spec, seed, TODAY):
        grouped.setdefault(row[1], []).append(row)
    families = []
    for rows in grouped.values():
        first = rows[0]
        family = Family(first[1], first[2], dt.date.fromisoformat(first[3]),
                        dt.date.fromisoformat(first[4]) if first[4] else None, first[5])  # fmt: skip
        nirs = {r[13]: int(r[6]) for r in rows if r[13]}
        for r in rows:
            y, m, d = (int(x) for x in r[11].split("-"))
            family.people.append(
                Person(int(r[6]), r[7], r[8], r[9], r[10], y, m or None, d or None, int(r[12]), bool(r[13]),
                       nirs.get(r[14], 0) if r[14] else None, dt.date.fromisoformat(r[15]),
                       dt.date.fromisoformat(r[16]) if r[16] else None)
            )  # fmt: skip
        families.append(family)
    return families


def test_drawn_families_have_the_populations_shapes_and_valid_consistent_rows():
    reference = _reference(6000)
    drawn = lookalike.draw_families(reference, 4000, random.Random(5), TODAY)
    real_shapes, drawn_shapes = lookalike.shape_counts(reference), lookalike.shape_counts(drawn)
    for shape, count in real_shapes.most_common(6):  # couples, children, single people in proportion
        assert abs(drawn_shapes[shape] / len(drawn) - count / len(reference)) < 0.03, shape
    for attribute in ("product", "status"):
        real = Counter(getattr(f, attribute) for f in reference)
        mine = Counter(getattr(f, attribute) for f in drawn)
        for key, count in real.items():
            assert abs(mine[key] / len(drawn) - count / len(reference)) < 0.03, (attribute, key)
    real_ages = [TODAY.year - f.people[0].year for f in reference]
    ages = [TODAY.year - f.people[0].year for f in drawn]
    assert abs(statistics.median(ages) - statistics.median(real_ages)) <= 2
    lunar = sum(p.month is None for f in drawn for p in f.people) / sum(len(f.people) for f in drawn)
    real_lunar = sum(p.month is None for f in reference for p in f.people) / sum(
        len(f.people) for f in reference
    )
    assert abs(lunar - real_lunar) < 0.004
    # No canary copies a family: its contract dates, product and births are never all one family's.
    signatures = {(f.start, f.end, f.product, tuple(p.birth_text for p in f.people)) for f in reference}
    assert not any(
        (f.start, f.end, f.product, tuple(p.birth_text for p in f.people)) in signatures for f in drawn
    )
    cipher = field_cipher()
    for n, family in enumerate(drawn[:300]):
        family.adherent = _luhn(n)
        for row in lookalike.family_rows(family, "372518460"):
            fmt.check_row(row, "372518460", cipher)  # passes the import's own checks
        for person in family.people:
            if person.own_nir:
                nir = validate_nir(person.nir)
                assert (
                    nir[0] == ("1" if person.sex == "M" else "2") and nir[1:3] == f"{person.year % 100:02d}"
                )
                assert nir[3:5] == (f"{person.month:02d}" if person.month else "20")
            assert person.born <= TODAY


def test_good_turing_names_are_not_more_frequent_than_the_populations_own():
    """Copying a donor's name favours names frequent by chance in the registry; Good–Turing does not."""
    rng = random.Random(6)
    population = [rng.choice(synthetic.SURNAMES) for _ in range(2000)]
    counts = Counter(population)
    own = statistics.fmean(counts[name] for name in population)  # a real person's name: this frequent
    copied = statistics.fmean(counts[rng.choice(population)] + 1 for _ in range(20000))
    picked = statistics.fmean(counts[lookalike.good_turing_pick(rng, population)] + 1 for _ in range(20000))
    assert copied - own > 0.8  # the bias a copy of the registry shows
    assert abs(picked - own) < 0.4
