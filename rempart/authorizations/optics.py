"""Lens corrections and the lens complexity classes of the contrat responsable grid.

Pure: no database, no HTTP. A correction is given per eye as sphere, cylinder and addition in dioptres
(``Decimal``, quarter-dioptre steps). The complexity class (simple / complex / very complex) selects
the floor and ceiling of the contrat responsable grid (CSS art. R871-2) and must match the lens's
LPP code.

Classification (CSS art. R871-2, décret 2019-21; the domain reference, §4.2, gives the simple class and
marks the detail beyond it as unverified). The cylinder is read in the **positive-cylinder** form
used by the text: a prescription written with a negative cylinder is transposed first
(sphere + cylinder, −cylinder). A lens is multifocal or progressive when the addition is above 0.

- unifocal, spherical (cylinder 0): simple within −6 … +6, complex outside;
- unifocal, sphero-cylindrical: sphere −6 … 0 and cylinder ≤ +4 → simple, cylinder > +4 → complex;
  sphere below −6 → complex; sphere above 0 → simple when sphere + cylinder ≤ 6, complex above;
- multifocal, spherical: complex within −4 … +4, very complex outside;
- multifocal, sphero-cylindrical: sphere −8 … 0 and cylinder ≤ +4 → complex, cylinder > +4 → very
  complex; sphere below −8 → very complex; sphere above 0 → complex when sphere + cylinder ≤ 8,
  very complex above.

The figures (6, 4, 8 …) are data: :class:`ComplexityThresholds`, read from the rule set
(``data/rules-v1.json``, figure ``lens_complexity``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

QUARTER = Decimal("0.25")
ZERO = Decimal(0)
# Plausibility bounds of a prescription (not regulatory): beyond them the value is a typing error.
SPHERE_RANGE = (Decimal(-30), Decimal(30))
CYLINDER_RANGE = (Decimal(-15), Decimal(15))
ADDITION_RANGE = (Decimal(0), Decimal(4))


class Complexity(enum.StrEnum):
    SIMPLE = "simple"
    COMPLEX = "complex"
    VERY_COMPLEX = "very_complex"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label_fr(self) -> str:
        return _LABEL_FR[self]


_RANK = {Complexity.SIMPLE: 0, Complexity.COMPLEX: 1, Complexity.VERY_COMPLEX: 2}
_LABEL_FR = {
    Complexity.SIMPLE: "simple",
    Complexity.COMPLEX: "complexe",
    Complexity.VERY_COMPLEX: "très complexe",
}


class CorrectionError(ValueError):
    """One bad value of a correction: ``field`` is ``sphere``, ``cylinder`` or ``addition``; French message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Correction:
    """One eye's correction, in dioptres, as written on the prescription (either cylinder sign)."""

    sphere: Decimal
    cylinder: Decimal = ZERO
    addition: Decimal = ZERO

    @classmethod
    def of(cls, sphere: object, cylinder: object = 0, addition: object = 0) -> Correction:
        """Build from numbers or strings such as ``"+1.25"`` or ``"-0,50"``; checked with :func:`validate`."""
        correction = cls(
            _dioptres("sphere", sphere), _dioptres("cylinder", cylinder), _dioptres("addition", addition)
        )
        validate(correction)
        return correction

    def positive_cylinder(self) -> tuple[Decimal, Decimal]:
        """(sphere, cylinder) in the positive-cylinder form (transposed when the cylinder is negative)."""
        if self.cylinder < 0:
            return self.sphere + self.cylinder, -self.cylinder
        return self.sphere, self.cylinder

    @property
    def multifocal(self) -> bool:
        return self.addition > 0

    def as_dict(self) -> dict[str, str]:
        return {
            "sphere": f"{self.sphere:+.2f}",
            "cylinder": f"{self.cylinder:+.2f}",
            "addition": f"{self.addition:+.2f}",
        }


@dataclass(frozen=True)
class ComplexityThresholds:
    """The dioptre limits of CSS art. R871-2 (see the module docstring for how they are used)."""

    unifocal_sphere: Decimal  # 6: spherical and sphero-cylindrical unifocal lenses, sphere −6 … +6
    unifocal_cylinder: Decimal  # 4: cylinder up to +4 for a simple sphero-cylindrical lens
    unifocal_positive_sum: Decimal  # 6: sphere + cylinder for a positive sphere
    multifocal_spherical_sphere: Decimal  # 4: spherical multifocal, sphere −4 … +4
    multifocal_sphere: Decimal  # 8: sphero-cylindrical multifocal, sphere −8 … 0
    multifocal_cylinder: Decimal  # 4
    multifocal_positive_sum: Decimal  # 8


def _dioptres(field: str, value: object) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool) or value is None:
        raise CorrectionError(field, "valeur en dioptries attendue, par exemple -1,25")
    else:
        text = str(value).strip().replace(",", ".").replace("\u2212", "-")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CorrectionError(field, "valeur en dioptries attendue, par exemple -1,25") from None
    if not number.is_finite():
        raise CorrectionError(field, "valeur en dioptries attendue, par exemple -1,25")
    return number


_FIELDS_FR = {"sphere": "Sphère", "cylinder": "Cylindre", "addition": "Addition"}


def _fr(value: Decimal) -> str:
    return f"{value:+.2f}".replace(".", ",")


def validate(correction: Correction) -> None:
    """Raise :class:`CorrectionError` for a value out of range or not a multiple of 0.25 dioptre."""
    for field, value, (low, high) in (
        ("sphere", correction.sphere, SPHERE_RANGE),
        ("cylinder", correction.cylinder, CYLINDER_RANGE),
        ("addition", correction.addition, ADDITION_RANGE),
    ):
        if not isinstance(value, Decimal) or not value.is_finite():
            raise CorrectionError(field, "valeur en dioptries attendue, par exemple -1,25")
        if not low <= value <= high or value % QUARTER != 0:
            raise CorrectionError(
                field,
                f"{_FIELDS_FR[field]} hors plage : entre {_fr(low)} et {_fr(high)} dioptries, par pas de 0,25",
            )


def lens_complexity(correction: Correction, thresholds: ComplexityThresholds) -> Complexity:
    """The R871-2 class of the lens that corrects this eye (the correction must be valid)."""
    t = thresholds
    sphere, cylinder = correction.positive_cylinder()
    if not correction.multifocal:
        if cylinder == 0:
            return Complexity.SIMPLE if abs(sphere) <= t.unifocal_sphere else Complexity.COMPLEX
        if sphere > 0:
            return Complexity.SIMPLE if sphere + cylinder <= t.unifocal_positive_sum else Complexity.COMPLEX
        if sphere >= -t.unifocal_sphere:
            return Complexity.SIMPLE if cylinder <= t.unifocal_cylinder else Complexity.COMPLEX
        return Complexity.COMPLEX
    if cylinder == 0:
        return Complexity.COMPLEX if abs(sphere) <= t.multifocal_spherical_sphere else Complexity.VERY_COMPLEX
    if sphere > 0:
        return (
            Complexity.COMPLEX if sphere + cylinder <= t.multifocal_positive_sum else Complexity.VERY_COMPLEX
        )
    if sphere >= -t.multifocal_sphere:
        return Complexity.COMPLEX if cylinder <= t.multifocal_cylinder else Complexity.VERY_COMPLEX
    return Complexity.VERY_COMPLEX


def equipment_key(first: Complexity, second: Complexity) -> str:
    """The grid key of a pair of lenses, lower class first: ``simple_complex``, ``complex_complex`` …"""
    low, high = sorted((Complexity(first), Complexity(second)), key=lambda c: c.rank)
    return f"{low.value}_{high.value}"


def correction_change(before: Correction, after: Correction) -> Decimal:
    """The largest change of sphere, cylinder or addition between two corrections of one eye (dioptres).

    Both are compared in the positive-cylinder form, so a prescription rewritten with the other
    cylinder sign is not a change. The cylinder axis is not compared (it is not captured).
    """
    s0, c0 = before.positive_cylinder()
    s1, c1 = after.positive_cylinder()
    return max(abs(s1 - s0), abs(c1 - c0), abs(after.addition - before.addition))
