"""Lens complexity from the corrections (CSS art. R871-2) and the checks of a correction."""

from decimal import Decimal

import pytest

from rempart.authorizations.optics import (
    Complexity,
    Correction,
    CorrectionError,
    correction_change,
    equipment_key,
    lens_complexity,
    validate,
)
from rempart.authorizations.rules import default_rules

S, C, V = Complexity.SIMPLE, Complexity.COMPLEX, Complexity.VERY_COMPLEX


def complexity(sphere, cylinder="0", addition="0"):
    return lens_complexity(Correction.of(sphere, cylinder, addition), default_rules().lens_complexity)


@pytest.mark.parametrize(
    ("sphere", "cylinder", "expected"),
    [
        ("0", "0", S),  # plano
        ("-6.00", "0", S),
        ("+6.00", "0", S),
        ("-6.25", "0", C),
        ("+6.25", "0", C),
        ("-2.00", "+4.00", S),
        ("-2.00", "+4.25", C),
        ("-6.00", "+4.00", S),
        ("0", "+4.25", C),  # sphere 0 is in the −6 … 0 band
        ("-6.25", "+0.25", C),  # below −6 with any cylinder
        ("+2.00", "+4.00", S),  # positive sphere: sphere + cylinder = 6
        ("+2.25", "+4.00", C),  # 6.25
        ("-5.00", "-2.00", C),  # negative cylinder: read as −7.00 (+2.00)
        ("+3.00", "-2.00", S),  # read as +1.00 (+2.00)
        ("+6.00", "-1.00", S),  # read as +5.00 (+1.00): sum 6
        ("+7.00", "-0.75", C),  # read as +6.25 (+0.75): positive sphere, sum 7.00 > 6
    ],
)
def test_unifocal_lenses(sphere, cylinder, expected):
    assert complexity(sphere, cylinder) == expected


@pytest.mark.parametrize(
    ("sphere", "cylinder", "expected"),
    [
        ("+4.00", "0", C),
        ("-4.00", "0", C),
        ("-4.25", "0", V),
        ("+4.25", "0", V),
        ("-5.00", "0", V),  # spherical multifocal beyond ±4 …
        (
            "-5.00",
            "+0.25",
            C,
        ),  # … but sphero-cylindrical within −8 … 0 and cylinder ≤ 4 is complex (as the text reads)
        ("-8.00", "+4.00", C),
        ("-8.00", "+4.25", V),
        ("-8.25", "+0.25", V),
        ("+4.00", "+4.00", C),  # positive sphere: sum 8
        ("+4.25", "+4.00", V),
        ("-1.00", "-1.00", C),  # read as −2.00 (+1.00)
    ],
)
def test_multifocal_lenses(sphere, cylinder, expected):
    assert complexity(sphere, cylinder, "+2.00") == expected


def test_a_small_addition_makes_a_lens_multifocal():
    assert complexity("-1.00", "0", "0.25") == C
    assert complexity("-1.00", "0", "0") == S


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("+1.25", "-0,50", "0"), (Decimal("1.25"), Decimal("-0.50"), Decimal(0))),
        (("\u22122.00", "0", "+2.50"), (Decimal("-2.00"), Decimal(0), Decimal("2.50"))),
        ((-3, 1, 0), (Decimal(-3), Decimal(1), Decimal(0))),
        ((" -0.25 ",), (Decimal("-0.25"), Decimal(0), Decimal(0))),
        ((1.75, -0.5, 1.0), (Decimal("1.75"), Decimal("-0.5"), Decimal(1))),
    ],
)
def test_corrections_are_read_from_numbers_and_french_text(values, expected):
    correction = Correction.of(*values)
    assert (correction.sphere, correction.cylinder, correction.addition) == expected


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        (("-30.25",), "sphere", "entre -30,00 et +30,00"),
        (("+30.25",), "sphere", "entre -30,00 et +30,00"),
        (("-1.10",), "sphere", "par pas de 0,25"),
        (("-1", "-15.25"), "cylinder", "entre -15,00 et +15,00"),
        (("-1", "+0.3"), "cylinder", "par pas de 0,25"),
        (("-1", "0", "-0.25"), "addition", "entre +0,00 et +4,00"),
        (("-1", "0", "4.25"), "addition", "entre +0,00 et +4,00"),
        (("abc",), "sphere", "dioptries attendue"),
        (("NaN",), "sphere", "dioptries attendue"),
        (("-1", "Infinity"), "cylinder", "dioptries attendue"),
        ((None,), "sphere", "dioptries attendue"),
        ((True,), "sphere", "dioptries attendue"),
    ],
)
def test_bad_corrections_are_refused_with_a_french_message(values, field, words):
    with pytest.raises(CorrectionError) as caught:
        Correction.of(*values)
    assert caught.value.field == field and words in caught.value.message


@pytest.mark.parametrize("sphere", ["-30", "30", "0", "-12.75"])
def test_limits_are_included(sphere):
    validate(Correction(Decimal(sphere), Decimal("-15"), Decimal("4")))


def test_validate_refuses_a_correction_built_without_decimals():
    with pytest.raises(CorrectionError) as caught:
        validate(Correction(-1.0, Decimal(0)))  # type: ignore[arg-type]
    assert caught.value.field == "sphere"


def test_equipment_keys_put_the_lower_class_first():
    assert equipment_key(S, S) == "simple_simple"
    assert equipment_key(C, S) == "simple_complex"
    assert equipment_key(V, S) == "simple_very_complex"
    assert equipment_key(V, C) == "complex_very_complex"
    assert equipment_key("very_complex", "very_complex") == "very_complex_very_complex"  # type: ignore[arg-type]


def test_every_equipment_key_is_in_the_contrat_responsable_grid():
    grid = default_rules().responsible_optics
    for first in Complexity:
        for second in Complexity:
            key = equipment_key(first, second)
            assert f"{key}_min" in grid and f"{key}_max" in grid


def test_a_change_of_sight_ignores_the_cylinder_notation():
    assert correction_change(Correction.of("-2", "-1"), Correction.of("-3", "+1")) == 0
    assert correction_change(Correction.of("-1"), Correction.of("-1.75")) == Decimal("0.75")
    assert correction_change(Correction.of("-1", "0", "1.5"), Correction.of("-1", "0", "2")) == Decimal("0.5")
    assert correction_change(Correction.of("-1", "-0.5"), Correction.of("-1", "-1")) == Decimal("0.5")


def test_a_correction_is_stored_as_signed_text():
    assert Correction.of("-1.5", "0.25", "2").as_dict() == {
        "sphere": "-1.50",
        "cylinder": "+0.25",
        "addition": "+2.00",
    }
