"""The figures of the PEC engine, read from a versioned data file (``data/rules-v1.json``).

Figures are data, not code: every one carries its effective date and source, and the file's SHA-256 goes
into each decision's ``rule_version``, so that a stored decision can be reproduced. A bad file fails at
load with the figure named (:class:`RulesError`), never in the middle of a decision.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from .arithmetic import AgeRange
from .inputs import DOMAINS
from .optics import ComplexityThresholds

DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "data" / "rules-v1.json"


@dataclass(frozen=True)
class AgeBand:
    age_min: int
    age_max: int | None  # None: no upper bound
    months: int

    def touches(self, ages: AgeRange) -> bool:
        return ages.oldest >= self.age_min and (self.age_max is None or ages.youngest <= self.age_max)


def band_months(bands: Iterable[AgeBand], ages: AgeRange, choose: Callable[[list[int]], int]) -> int:
    """The months of the bands the age range touches, reduced with ``choose`` (min or max)."""
    return choose([band.months for band in bands if band.touches(ages)])


@dataclass(frozen=True)
class Figure:
    """Where a figure comes from."""

    name: str
    effective_from: dt.date
    source: str


@dataclass(frozen=True)
class RuleSet:
    """Every figure the engine uses, from ``data/rules-v1.json`` (see :func:`load_rules`)."""

    version: str
    sha256: str
    amo_rate_percent: int
    optics_renewal: tuple[AgeBand, ...]
    optics_sight_change_renewal: tuple[AgeBand, ...]
    sight_change_one_eye: Decimal
    sight_change_both_eyes: Decimal
    medical_condition_renewal_months: int
    audiology_renewal_months: int
    prescription_max_age: Mapping[str, tuple[AgeBand, ...]]
    responsible_optics: Mapping[str, int]
    responsible_audiology: Mapping[str, int]
    lens_complexity: ComplexityThresholds
    validity_grace_days: int
    delivery_max_days_ahead: int
    figures: Mapping[str, Figure]

    @property
    def label(self) -> str:
        """What a decision stores as ``rule_version``: the file's version and the start of its hash."""
        return f"{self.version}+{self.sha256[:12]}"


class RulesError(ValueError):
    """The rules file is unusable; the message names the figure."""


_FIGURES = (
    "amo_rate_percent",
    "optics_renewal",
    "optics_sight_change_renewal",
    "optics_sight_change_thresholds",
    "optics_medical_condition_renewal_months",
    "audiology_renewal_months",
    "prescription_max_age",
    "responsible_optics",
    "responsible_audiology",
    "lens_complexity",
    "validity_grace_days",
    "delivery_max_days_ahead",
)


def _bands(name: str, value: object) -> tuple[AgeBand, ...]:
    try:
        bands = tuple(AgeBand(int(b["age_min"]), b["age_max"], int(b["months"])) for b in value)  # type: ignore[union-attr]
    except (TypeError, KeyError, ValueError):
        raise RulesError(f"{name}: a list of {{age_min, age_max, months}} expected") from None
    if not bands:
        raise RulesError(f"{name}: at least one age band expected")
    expected: int | None = 0
    for band in bands:  # contiguous from 0, only the last one open
        if expected is None or band.age_min != expected or band.months < 0:
            raise RulesError(
                f"{name}: age bands must follow each other from 0, without gaps, the last one open"
            )
        expected = None if band.age_max is None else int(band.age_max) + 1
    if expected is not None:
        raise RulesError(f"{name}: the last age band must have no upper bound (age_max null)")
    return bands


def parse_rules(data: bytes) -> RuleSet:
    """Check and read a rules file's bytes."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RulesError(f"not a JSON rules file ({exc})") from None
    if doc.get("format") != "rempart-pec-rules" or doc.get("format_version") != 1:
        raise RulesError("not a rempart-pec-rules file of format version 1")
    figures = doc.get("figures") or {}
    provenance = {}
    for name in _FIGURES:
        item = figures.get(name)
        if not isinstance(item, dict) or "value" not in item or not item.get("source"):
            raise RulesError(f"{name}: missing, or without a value and a source")
        try:
            provenance[name] = Figure(name, dt.date.fromisoformat(item["effective_from"]), item["source"])
        except (KeyError, TypeError, ValueError):
            raise RulesError(f"{name}: effective_from YYYY-MM-DD expected") from None
    value = {name: figures[name]["value"] for name in _FIGURES}
    try:
        thresholds = value["optics_sight_change_thresholds"]
        complexity = ComplexityThresholds(**{k: Decimal(v) for k, v in value["lens_complexity"].items()})
        rules = RuleSet(
            version=str(doc["version"]),
            sha256=hashlib.sha256(data).hexdigest(),
            amo_rate_percent=int(value["amo_rate_percent"]),
            optics_renewal=_bands("optics_renewal", value["optics_renewal"]),
            optics_sight_change_renewal=_bands(
                "optics_sight_change_renewal", value["optics_sight_change_renewal"]
            ),
            sight_change_one_eye=Decimal(thresholds["one_eye_dioptres"]),
            sight_change_both_eyes=Decimal(thresholds["both_eyes_dioptres"]),
            medical_condition_renewal_months=int(value["optics_medical_condition_renewal_months"]),
            audiology_renewal_months=int(value["audiology_renewal_months"]),
            prescription_max_age={
                domain: _bands(f"prescription_max_age.{domain}", value["prescription_max_age"][domain])
                for domain in DOMAINS
            },
            responsible_optics={k: int(v) for k, v in value["responsible_optics"].items()},
            responsible_audiology={k: int(v) for k, v in value["responsible_audiology"].items()},
            lens_complexity=complexity,
            validity_grace_days=int(value["validity_grace_days"]),
            delivery_max_days_ahead=int(value["delivery_max_days_ahead"]),
            figures=provenance,
        )
    except RulesError:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise RulesError(f"bad value in the rules file ({exc!r})") from None
    missing = {"frame_max"} - set(rules.responsible_optics)
    if missing or "per_ear_max_with_amo" not in rules.responsible_audiology:
        raise RulesError("responsible_optics needs frame_max, responsible_audiology per_ear_max_with_amo")
    return rules


def load_rules(path: str | Path) -> RuleSet:
    return parse_rules(Path(path).read_bytes())


@functools.cache
def default_rules() -> RuleSet:
    """The rule set shipped with Rempart (``data/rules-v1.json``), loaded once per process."""
    return load_rules(DEFAULT_RULES_PATH)
