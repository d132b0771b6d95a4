"""A spectacle prescription as opticians write it: one row per eye (OD, OG), four columns (sphère, cylindre,
axe, addition), read into what the PEC rules need today (``optics.Correction``: sphere, cylinder, addition).

Pure: no database, no HTTP. The figures are checked here, field by field, so that the counter form shows
every bad cell at once: sphere and cylinder in quarter-dioptre steps within the plausibility bounds of
``optics`` (beyond them the value is a typing error), the axis a whole number of degrees from 0 to 180 (given
with a cylinder, and only then), the addition from +0.25 to +4.00. The axis is checked but not passed on: the
rules do not use it (``optics.correction_change`` says so). ``plan`` (or ``pl``) is a sphere of 0, as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from rempart.authorizations.optics import CYLINDER_RANGE, QUARTER, SPHERE_RANGE, ZERO, Correction

EYES = ("right", "left")
PARTS = ("sphere", "cylinder", "axis", "addition")
ADDITION_RANGE = (Decimal("0.25"), Decimal(4))
AXIS_RANGE = (0, 180)
_PLANO = {"plan", "pl", "plano"}


@dataclass(frozen=True)
class EyeRow:
    """One row of the table as typed (strings; empty: not written)."""

    sphere: str = ""
    cylinder: str = ""
    axis: str = ""
    addition: str = ""

    @property
    def empty(self) -> bool:
        return not any(v.strip() for v in (self.sphere, self.cylinder, self.axis, self.addition))


class PrescriptionErrors(ValueError):
    """Every bad cell of one eye's row: ``errors`` maps a part (``sphere`` …) to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _fr(value: Decimal) -> str:
    return f"{value:+.2f}".replace(".", ",")


def _dioptres(text: str, *, plano: bool = False) -> Decimal | None:
    """None when the text is not a number (the caller names the cell)."""
    cleaned = text.strip().lower().replace(",", ".").replace("\u2212", "-").replace(" ", "")
    if plano and cleaned in _PLANO:
        return ZERO
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _in_steps(errors: dict, part: str, value: Decimal | None, bounds: tuple[Decimal, Decimal]) -> None:
    low, high = bounds
    if value is None:
        errors[part] = _("valeur en dioptries attendue, par exemple -1,25")
    elif not low <= value <= high:
        errors[part] = _("entre %(low)s et %(high)s dioptries") % {"low": _fr(low), "high": _fr(high)}
    elif value % QUARTER != 0:
        errors[part] = _("par pas de 0,25 dioptrie (par exemple -1,25 ou +0,75)")


def read_eye(row: EyeRow) -> Correction | None:
    """The correction of one eye, None for an empty row, or :class:`PrescriptionErrors` with every bad cell.

    An empty sphere with a cylinder or an addition is a plano sphere (0); an empty cylinder or addition is 0.
    """
    if row.empty:
        return None
    errors: dict[str, str] = {}
    sphere = _dioptres(row.sphere, plano=True) if row.sphere.strip() else ZERO
    _in_steps(errors, "sphere", sphere, SPHERE_RANGE)
    cylinder = _dioptres(row.cylinder) if row.cylinder.strip() else ZERO
    _in_steps(errors, "cylinder", cylinder, CYLINDER_RANGE)
    axis_text = row.axis.strip().removesuffix("°").strip()
    if axis_text:
        if not axis_text.isdecimal() or not AXIS_RANGE[0] <= int(axis_text) <= AXIS_RANGE[1]:
            errors["axis"] = _("axe en degrés, nombre entier de 0 à 180")
        elif cylinder is not None and "cylinder" not in errors and cylinder == 0:
            errors["axis"] = _("un axe ne s'écrit qu'avec un cylindre")
    elif cylinder is not None and "cylinder" not in errors and cylinder != 0:
        errors["axis"] = _("axe requis avec un cylindre (0 à 180)")
    addition = _dioptres(row.addition) if row.addition.strip() else ZERO
    if addition != ZERO:
        _in_steps(errors, "addition", addition, ADDITION_RANGE)
    if errors:
        raise PrescriptionErrors(errors)
    assert sphere is not None and cylinder is not None and addition is not None
    return Correction.of(sphere, cylinder, addition)
