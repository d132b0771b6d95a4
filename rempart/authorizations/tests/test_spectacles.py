"""The prescription table as opticians write it (OD / OG: sphère, cylindre, axe, addition), read for the rules."""

from decimal import Decimal

import pytest

from rempart.authorizations.optics import Correction
from rempart.authorizations.spectacles import EyeRow, PrescriptionErrors, read_eye


def errors_of(**row) -> dict[str, str]:
    with pytest.raises(PrescriptionErrors) as caught:
        read_eye(EyeRow(**row))
    return caught.value.errors


def test_an_empty_row_is_no_lens_and_a_written_one_maps_onto_the_rules_correction():
    assert read_eye(EyeRow()) is None
    assert read_eye(EyeRow(sphere="-1,25", cylinder="-0,50", axis="90", addition="+2,00")) == Correction(
        Decimal("-1.25"), Decimal("-0.50"), Decimal("2.00")
    )
    assert read_eye(EyeRow(sphere="plan", cylinder="+0.75", axis="180°")) == Correction(
        Decimal(0), Decimal("0.75"), Decimal(0)
    )
    assert read_eye(EyeRow(cylinder="-1", axis="0")).sphere == 0  # an empty sphere beside a cylinder: plano
    assert read_eye(EyeRow(sphere="\u22122,00")).sphere == Decimal("-2.00")  # the typographic minus


@pytest.mark.parametrize(
    ("row", "part", "words"),
    [
        ({"sphere": "-1,30"}, "sphere", "pas de 0,25"),
        ({"sphere": "-31"}, "sphere", "entre -30,00 et +30,00"),
        ({"sphere": "abc"}, "sphere", "valeur en dioptries"),
        ({"sphere": "1", "cylinder": "-16", "axis": "10"}, "cylinder", "entre -15,00 et +15,00"),
        ({"sphere": "1", "cylinder": "-0,10", "axis": "10"}, "cylinder", "pas de 0,25"),
        ({"sphere": "1", "cylinder": "-0,50"}, "axis", "axe requis"),
        ({"sphere": "1", "cylinder": "-0,50", "axis": "181"}, "axis", "0 à 180"),
        ({"sphere": "1", "cylinder": "-0,50", "axis": "45,5"}, "axis", "nombre entier"),
        ({"sphere": "1", "cylinder": "-0,50", "axis": "-5"}, "axis", "0 à 180"),
        ({"sphere": "1", "axis": "90"}, "axis", "qu'avec un cylindre"),
        ({"sphere": "1", "addition": "4,25"}, "addition", "entre +0,25 et +4,00"),
        ({"sphere": "1", "addition": "-1"}, "addition", "entre +0,25 et +4,00"),
        ({"sphere": "1", "addition": "1,10"}, "addition", "pas de 0,25"),
    ],
)
def test_each_bad_cell_is_named(row, part, words):
    errors = errors_of(**row)
    assert part in errors and words in errors[part], errors


def test_every_bad_cell_of_a_row_is_reported_together():
    errors = errors_of(sphere="-1,30", cylinder="-0,50", axis="", addition="5")
    assert set(errors) == {"sphere", "axis", "addition"}


def test_the_bounds_themselves_are_accepted():
    assert read_eye(EyeRow(sphere="+30", cylinder="-15", axis="180", addition="4")).addition == 4
    assert read_eye(EyeRow(sphere="-30", addition="0,25")).addition == Decimal("0.25")
    assert read_eye(EyeRow(sphere="0", addition="0")).multifocal is False  # an addition of 0 is none
