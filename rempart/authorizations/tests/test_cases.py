"""Worked cases of the PEC decision engine, with their expected amounts (documented in docs/pec-cases.md).

Every figure comes from the shipped rule set (data/rules-v1.json) and LPP catalogue
(data/lpp-catalogue-v1.csv); the product terms mirror the synthetic products of rempart.registry.synthetic
(ESS, CONF responsible; PREM not responsible) plus a few forfaits. Amounts are in cents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from rempart.authorizations import arithmetic, ruleset, wording
from rempart.authorizations import rules as engine
from rempart.authorizations.catalogue import default_catalogue
from rempart.authorizations.optics import Correction
from rempart.authorizations.rules import (
    BeneficiaryFacts,
    GuaranteeTerms,
    HistoryItem,
    PecInputError,
    PecRequest,
    Prescription,
    QuoteLine,
    decide,
    default_rules,
)
from rempart.authorizations.ruleset import RulesError
from rempart.lib.identifiers import LunarDate

DOCS = Path(__file__).resolve().parents[3] / "docs" / "pec-cases.md"
TODAY = dt.date(2026, 11, 25)
DELIVERY = dt.date(2026, 12, 1)
VALID_UNTIL = dt.date(2026, 12, 31)  # delivery + 30 days of grace
RX_DATE = dt.date(2026, 11, 2)
RPPS = "10001234567"

ADULT = LunarDate(1980, 5, 12)  # 46 on the delivery date
SENIOR = LunarDate(1958, 4, 4)  # 68
CHILD = LunarDate(2014, 3, 10)  # 12
TEEN = LunarDate(2012, 6, 1)  # 14
TODDLER = LunarDate(2023, 1, 15)  # 3

# Contrat responsable grid for glasses (cents), as in rempart.registry.synthetic.OPTI_RESPONSIBLE.
GRID = {
    "frame_max": 10000, "simple_simple_min": 5000, "simple_simple_max": 42000, "simple_complex_min": 12500,
    "simple_complex_max": 56000, "simple_very_complex_min": 12500, "simple_very_complex_max": 61000,
    "complex_complex_min": 20000, "complex_complex_max": 70000, "complex_very_complex_min": 20000,
    "complex_very_complex_max": 75000, "very_complex_very_complex_min": 20000, "very_complex_very_complex_max": 80000,
}  # fmt: skip
ESS_OPTI = GuaranteeTerms(rate_percent=100, amount_cents=None, ceilings=GRID)
CONF_OPTI = GuaranteeTerms(rate_percent=200, amount_cents=None, ceilings=GRID)
PREM_OPTI = GuaranteeTerms(
    rate_percent=300, amount_cents=None, ceilings={k: v * 5 // 2 for k, v in GRID.items()}
)
ESS_AUDI = GuaranteeTerms(rate_percent=100, amount_cents=None, ceilings={"per_ear_max_with_amo": 170000})
CONF_AUDI = GuaranteeTerms(rate_percent=200, amount_cents=None, ceilings={"per_ear_max_with_amo": 170000})


def forfait(euros: int, rate: int | None = 100, **ceilings: int) -> GuaranteeTerms:
    return GuaranteeTerms(rate_percent=rate, amount_cents=euros * 100, ceilings=ceilings)


# ---------------------------------------------------------------------------------------------- builders


def corr(sphere: str, cylinder: str = "0", addition: str = "0") -> Correction:
    return Correction.of(sphere, cylinder, addition)


R1, L1 = corr("-1.00"), corr("-1.25")  # simple lenses


def rx(right=R1, left=L1, date=RX_DATE, medical=False) -> Prescription:
    return Prescription(date=date, prescriber_id=RPPS, right=right, left=left, medical_condition=medical)


def line(code: str, cls: str, side: str | None, euros: str) -> QuoteLine:
    return QuoteLine(
        lpp_code=code, lpp_class=cls, side=side, quantity=1, unit_price_cents=int(Decimal(euros) * 100)
    )


def opti(*lines: QuoteLine, prescription: Prescription | None = None, delivery=DELIVERY) -> PecRequest:
    return PecRequest("OPTI", delivery, prescription or rx(), tuple(lines))


def audi(*lines: QuoteLine, delivery=DELIVERY) -> PecRequest:
    return PecRequest("AUDI", delivery, Prescription(RX_DATE, RPPS), tuple(lines))


def facts(birth=ADULT, guarantee=ESS_OPTI, responsible=True, start=dt.date(2020, 1, 1), end=None):
    return BeneficiaryFacts(birth, start, end, responsible, guarantee)


def glasses_history(day: dt.date, right=R1, left=L1, frame=True) -> tuple[HistoryItem, ...]:
    items = [HistoryItem("OPTI", day, "lens", "right", right), HistoryItem("OPTI", day, "lens", "left", left)]
    if frame:
        items.append(HistoryItem("OPTI", day, "frame", None))
    return tuple(items)


def ears_history(day: dt.date, *sides: str) -> tuple[HistoryItem, ...]:
    return tuple(HistoryItem("AUDI", day, "device", side) for side in sides)


# Adult class A glasses (2290100 frame, 2290200 simple lenses) and the child versions.
A_FRAME, A_RIGHT, A_LEFT = (
    line("2290100", "A", None, "30.00"),
    line("2290200", "A", "right", "32.50"),
    line("2290200", "A", "left", "32.50"),
)
A_CHILD = (
    line("2290101", "A", None, "30.00"),
    line("2290210", "A", "right", "32.50"),
    line("2290210", "A", "left", "32.50"),
)
FULL = "full_cover_100_sante"


def ok(base, amo, amc, patient, *reasons):
    return ("accepted", base, amo, amc, patient, reasons)


def no(base, price, *reasons):
    return ("refused", base, 0, 0, price, reasons)


A_GLASSES_OK = (ok(1500, 900, 2100, 0, FULL), ok(1625, 975, 2275, 0, FULL), ok(1625, 975, 2275, 0, FULL))


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    title: str
    rule: str  # the rule that produces the amounts (English, for docs/pec-cases.md)
    request: PecRequest
    facts: BeneficiaryFacts
    history: tuple[HistoryItem, ...]
    status: str
    lines: tuple  # per line: (status, base, amo, amc, patient, reasons)
    totals: tuple[int, int, int, int]  # price, amo, amc, patient
    previous: tuple[dt.date | None, ...] = ()  # per line, renewal refusals: the previous delivery


CASES = [
    # ------------------------------------------------------------------ optics, 100 % santé
    Case(
        "opti-a-adult-simple",
        "Adult, simple glasses, class A (frame €30, lenses €32.50), contrat responsable",
        "Class A with a responsible contract: AMO = 60 % of the BR, the insurer pays the rest of the price "
        "(which may not exceed the PLV): the patient pays nothing.",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(),
        (),
        "accepted",
        A_GLASSES_OK,
        (9500, 2850, 6650, 0),
    ),
    Case(
        "opti-a-below-plv",
        "Class A priced below the PLV (frame €25, lenses €30)",
        "Class A: the insurer pays price − AMO, whatever the price up to the PLV.",
        opti(
            line("2290100", "A", None, "25.00"),
            line("2290200", "A", "right", "30.00"),
            line("2290200", "A", "left", "30.00"),
        ),
        facts(),
        (),
        "accepted",
        (ok(1500, 900, 1600, 0, FULL), ok(1625, 975, 2025, 0, FULL), ok(1625, 975, 2025, 0, FULL)),
        (8500, 2850, 5650, 0),
    ),
    # ------------------------------------------------------------------ optics, class B
    Case(
        "opti-b-simple-floor",
        "Class B simple glasses (frame €120, lenses €90), product ESS (100 % BR)",
        "Class B: 100 % of the €0.05 BR gives 2 cents per line after the AMO's 3; the contrat responsable floor "
        "for two simple lenses (€50) applies; €50 is split over the lines in proportion to what each costs after "
        "the AMO share (frame weighted at most €100, its sub-ceiling).",
        opti(
            line("2290110", "B", None, "120.00"),
            line("2290300", "B", "right", "90.00"),
            line("2290300", "B", "left", "90.00"),
        ),
        facts(),
        (),
        "accepted",
        (
            ok(5, 3, 1786, 10211, "guarantee", "equipment_floor"),
            ok(5, 3, 1607, 7390, "guarantee", "equipment_floor"),
            ok(5, 3, 1607, 7390, "guarantee", "equipment_floor"),
        ),
        (30000, 9, 5000, 24991),
    ),
    Case(
        "opti-b-complex-over-ceiling",
        "Class B complex glasses (sphere −7.00 / −6.50; frame €95, lenses €350), forfait €900",
        "The forfait (€900) exceeds the contrat responsable ceiling for two complex lenses (€700): the insurer "
        "commits €700, split in proportion; the leftover cent of the tie goes to the earlier line.",
        opti(
            line("2290110", "B", None, "95.00"),
            line("2290301", "B", "right", "350.00"),
            line("2290301", "B", "left", "350.00"),
            prescription=rx(corr("-7.00"), corr("-6.50")),
        ),
        facts(guarantee=forfait(900)),
        (),
        "accepted",
        (
            ok(5, 3, 8363, 1134, "guarantee", "equipment_ceiling"),
            ok(5, 3, 30819, 4178, "guarantee", "equipment_ceiling"),
            ok(5, 3, 30818, 4179, "guarantee", "equipment_ceiling"),
        ),
        (79500, 9, 70000, 9491),
    ),
    Case(
        "opti-b-simple-complex-ceiling",
        "Class B, one complex lens (−7.00) and one simple (−2.00), forfait €600",
        "The two lenses' classes select the key simple_complex: ceiling €560 (floor €125).",
        opti(
            line("2290110", "B", None, "140.00"),
            line("2290301", "B", "right", "300.00"),
            line("2290300", "B", "left", "300.00"),
            prescription=rx(corr("-7.00"), corr("-2.00")),
        ),
        facts(guarantee=forfait(600)),
        (),
        "accepted",
        (
            ok(5, 3, 8001, 5996, "guarantee", "equipment_ceiling"),
            ok(5, 3, 24000, 5997, "guarantee", "equipment_ceiling"),
            ok(5, 3, 23999, 5998, "guarantee", "equipment_ceiling"),
        ),
        (74000, 9, 56000, 17991),
    ),
    Case(
        "opti-b-frame-over-sub-ceiling",
        "Class B simple glasses, frame €180 over the frame sub-ceiling, forfait €400",
        "The frame's share is held to €100 (sub-ceiling within the equipment ceiling); the lenses are covered "
        "in full; the patient pays the frame's excess.",
        opti(
            line("2290110", "B", None, "180.00"),
            line("2290300", "B", "right", "150.00"),
            line("2290300", "B", "left", "150.00"),
        ),
        facts(guarantee=forfait(400)),
        (),
        "accepted",
        (
            ok(5, 3, 10000, 7997, "guarantee", "frame_ceiling"),
            ok(5, 3, 14997, 0, "guarantee"),
            ok(5, 3, 14997, 0, "guarantee"),
        ),
        (48000, 9, 39994, 7997),
    ),
    Case(
        "opti-b-very-complex-floor",
        "Class B progressive lenses, strong correction (+5.00 / +4.50, add +2.50), product CONF (200 % BR)",
        "Spherical progressive lenses beyond ±4 are very complex; 200 % of the BR gives 7 cents per line; the floor "
        "for two very complex lenses (€200) applies.",
        opti(
            line("2290110", "B", None, "150.00"),
            line("2290302", "B", "right", "400.00"),
            line("2290302", "B", "left", "400.00"),
            prescription=rx(corr("+5.00", "0", "2.50"), corr("+4.50", "0", "2.50")),
        ),
        facts(guarantee=CONF_OPTI),
        (),
        "accepted",
        (
            ok(5, 3, 2222, 12775, "guarantee", "equipment_floor"),
            ok(5, 3, 8889, 31108, "guarantee", "equipment_floor"),
            ok(5, 3, 8889, 31108, "guarantee", "equipment_floor"),
        ),
        (95000, 9, 20000, 74991),
    ),
    Case(
        "opti-b-one-lens",
        "One class B simple lens (right eye, €120), forfait €300",
        "A single lens: the key comes from both eyes' corrections (simple_simple); the forfait covers the lens.",
        opti(line("2290300", "B", "right", "120.00")),
        facts(guarantee=forfait(300)),
        (),
        "accepted",
        (ok(5, 3, 11997, 0, "guarantee"),),
        (12000, 3, 11997, 0),
    ),
    # ------------------------------------------------------------------ optics, mixed equipment
    Case(
        "opti-mixed-a-frame-b-lenses",
        "Mixed: class A frame (€30) + class B simple lenses (€200), forfait €300",
        "Each element follows its class: the A frame is covered in full; the B lenses share the forfait (€300 + "
        "2 cents), within the simple_simple grid.",
        opti(A_FRAME, line("2290300", "B", "right", "200.00"), line("2290300", "B", "left", "200.00")),
        facts(guarantee=forfait(300)),
        (),
        "accepted",
        (
            ok(1500, 900, 2100, 0, FULL),
            ok(5, 3, 15002, 4995, "guarantee"),
            ok(5, 3, 15002, 4995, "guarantee"),
        ),
        (43000, 906, 32104, 9990),
    ),
    Case(
        "opti-mixed-b-frame-a-lenses",
        "Mixed: class B frame (€150) + class A simple lenses, product ESS",
        "The A lenses are covered in full; the B frame alone gets the guarantee (2 cents): the floor applies only "
        "to class B lenses.",
        opti(line("2290110", "B", None, "150.00"), A_RIGHT, A_LEFT),
        facts(),
        (),
        "accepted",
        (ok(5, 3, 2, 14995, "guarantee"), ok(1625, 975, 2275, 0, FULL), ok(1625, 975, 2275, 0, FULL)),
        (21500, 1953, 4552, 14995),
    ),
    # ------------------------------------------------------------------ optics, product not responsible
    Case(
        "opti-not-responsible-class-a",
        "Class A glasses, product not responsible, 100 % BR",
        "Not responsible: no full cover of the 100 % santé basket; the guarantee gives the ticket modérateur "
        "(100 % BR − AMO), split in proportion; the patient pays the rest.",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(guarantee=GuaranteeTerms(100, None, {}), responsible=False),
        (),
        "accepted",
        (
            ok(1500, 900, 600, 1500, "guarantee", "not_responsible"),
            ok(1625, 975, 650, 1625, "guarantee", "not_responsible"),
            ok(1625, 975, 650, 1625, "guarantee", "not_responsible"),
        ),
        (9500, 2850, 1900, 4750),
    ),
    Case(
        "opti-not-responsible-own-floor",
        "Class B simple glasses, product PREM (not responsible, 300 % BR, own grid at 2.5 times the contrat responsable)",
        "No contrat responsable cap: the product's own floor (€125) and frame ceiling (€250) apply.",
        opti(
            line("2290110", "B", None, "300.00"),
            line("2290300", "B", "right", "200.00"),
            line("2290300", "B", "left", "200.00"),
        ),
        facts(guarantee=PREM_OPTI, responsible=False),
        (),
        "accepted",
        (
            ok(5, 3, 4808, 25189, "guarantee", "equipment_floor", "not_responsible"),
            ok(5, 3, 3846, 16151, "guarantee", "equipment_floor", "not_responsible"),
            ok(5, 3, 3846, 16151, "guarantee", "equipment_floor", "not_responsible"),
        ),
        (70000, 9, 12500, 57491),
    ),
    Case(
        "opti-rate-rounding-half-up",
        "Class B frame alone (€100), product not responsible at 150 % BR",
        "150 % of 5 cents = 7.5 cents, rounded half up to 8; minus the AMO's 3 cents: 5 cents.",
        opti(line("2290110", "B", None, "100.00")),
        facts(guarantee=GuaranteeTerms(150, None, {}), responsible=False),
        (),
        "accepted",
        (ok(5, 3, 5, 9992, "guarantee", "not_responsible"),),
        (10000, 3, 5, 9992),
    ),
    # ------------------------------------------------------------------ optics, renewal
    Case(
        "opti-child-renewal-after-one-year",
        "Child (12), class A glasses, previous glasses 20/11/2025",
        "Under 16 (6 and over) the renewal period is 1 year: 20/11/2026 ≤ delivery, accepted.",
        opti(*A_CHILD),
        facts(birth=CHILD),
        glasses_history(dt.date(2025, 11, 20)),
        "accepted",
        A_GLASSES_OK,
        (9500, 2850, 6650, 0),
    ),
    Case(
        "opti-child-renewal-too-early",
        "Child (12), class A glasses, previous glasses 01/03/2026",
        "Within 1 year of the previous glasses: every line refused, with the previous date (next: 01/03/2027).",
        opti(*A_CHILD),
        facts(birth=CHILD),
        glasses_history(dt.date(2026, 3, 1)),
        "refused",
        (
            no(1500, 3000, "renewal_too_early"),
            no(1625, 3250, "renewal_too_early"),
            no(1625, 3250, "renewal_too_early"),
        ),
        (9500, 0, 0, 9500),
        (dt.date(2026, 3, 1),) * 3,
    ),
    Case(
        "opti-toddler-six-months",
        "Child (3), class A glasses, previous glasses 20/05/2026",
        "Under 6 the period is 6 months: 20/11/2026 ≤ delivery, accepted (the frame-fit condition is not checked).",
        opti(*A_CHILD),
        facts(birth=TODDLER),
        glasses_history(dt.date(2026, 5, 20)),
        "accepted",
        A_GLASSES_OK,
        (9500, 2850, 6650, 0),
    ),
    Case(
        "opti-adult-renewal-too-early",
        "Adult, class A glasses, previous glasses 15/06/2025, same correction",
        "16 and over: 2 years. No change of sight: refused (next: 15/06/2027).",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(),
        glasses_history(dt.date(2025, 6, 15)),
        "refused",
        (
            no(1500, 3000, "renewal_too_early"),
            no(1625, 3250, "renewal_too_early"),
            no(1625, 3250, "renewal_too_early"),
        ),
        (9500, 0, 0, 9500),
        (dt.date(2025, 6, 15),) * 3,
    ),
    Case(
        "opti-adult-sight-change",
        "Adult, previous glasses 15/06/2025 (−1.00 / −1.25), new prescription −1.75 / −1.25",
        "A change of 0.75 D on one eye (≥ 0.5 D) allows new lenses after 1 year; the frame still waits 2 years: "
        "partially accepted.",
        opti(A_FRAME, A_RIGHT, A_LEFT, prescription=rx(corr("-1.75"), L1)),
        facts(),
        glasses_history(dt.date(2025, 6, 15)),
        "partially_accepted",
        (
            no(1500, 3000, "renewal_too_early"),
            ok(1625, 975, 2275, 0, "renewal_sight_change", FULL),
            ok(1625, 975, 2275, 0, "renewal_sight_change", FULL),
        ),
        (9500, 1950, 4550, 3000),
        (dt.date(2025, 6, 15), None, None),
    ),
    Case(
        "opti-sight-change-within-a-year",
        "Adult, previous lenses 01/03/2026, new prescription −1.75 / −1.25",
        "A change of sight shortens the period to 1 year, not less, for 16 and over: refused (next: 01/03/2027).",
        opti(A_RIGHT, A_LEFT, prescription=rx(corr("-1.75"), L1)),
        facts(),
        glasses_history(dt.date(2026, 3, 1), frame=False),
        "refused",
        (no(1625, 3250, "renewal_too_early"), no(1625, 3250, "renewal_too_early")),
        (6500, 0, 0, 6500),
        (dt.date(2026, 3, 1),) * 2,
    ),
    Case(
        "opti-sight-change-both-eyes",
        "Adult, previous lenses 15/06/2025 (−1.00 / −1.25), new −1.25 / −1.50",
        "0.25 D on each eye is also a change of sight: lenses accepted after 1 year.",
        opti(A_RIGHT, A_LEFT, prescription=rx(corr("-1.25"), corr("-1.50"))),
        facts(),
        glasses_history(dt.date(2025, 6, 15), frame=False),
        "accepted",
        (
            ok(1625, 975, 2275, 0, "renewal_sight_change", FULL),
            ok(1625, 975, 2275, 0, "renewal_sight_change", FULL),
        ),
        (6500, 1950, 4550, 0),
    ),
    Case(
        "opti-small-change-not-enough",
        "Adult, previous lenses 15/06/2025 (−1.00 / −1.25), new −1.25 / −1.25",
        "0.25 D on one eye only is not a change of sight: refused.",
        opti(A_RIGHT, A_LEFT, prescription=rx(corr("-1.25"), L1)),
        facts(),
        glasses_history(dt.date(2025, 6, 15), frame=False),
        "refused",
        (no(1625, 3250, "renewal_too_early"), no(1625, 3250, "renewal_too_early")),
        (6500, 0, 0, 6500),
        (dt.date(2025, 6, 15),) * 2,
    ),
    Case(
        "opti-medical-condition",
        "Adult, previous lenses 01/06/2026, prescription attesting a listed condition",
        "Listed medical conditions (prescriber's attestation): lenses renewed without a minimum period.",
        opti(A_RIGHT, A_LEFT, prescription=rx(medical=True)),
        facts(),
        glasses_history(dt.date(2026, 6, 1), frame=False),
        "accepted",
        (ok(1625, 975, 2275, 0, "renewal_medical_condition", FULL),) * 2,
        (6500, 1950, 4550, 0),
    ),
    Case(
        "opti-lunar-birth-at-16",
        "Lunar birth date 2010-00-00 (15 or 16 on the delivery date), adult codes, previous glasses 15/11/2025",
        "A lunar date gives every reading: the code's band (16+) is reached by one reading, and the renewal period "
        "takes the youngest reading (15: 1 year): accepted.",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(birth=LunarDate(2010, None, None)),
        glasses_history(dt.date(2025, 11, 15)),
        "accepted",
        A_GLASSES_OK,
        (9500, 2850, 6650, 0),
    ),
    Case(
        "opti-exact-birth-at-16",
        "Birth date 2010-11-15 (16 on the delivery date), previous glasses 15/11/2025",
        "Same as above with an exact date: 16, so 2 years: refused.",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(birth=LunarDate(2010, 11, 15)),
        glasses_history(dt.date(2025, 11, 15)),
        "refused",
        (
            no(1500, 3000, "renewal_too_early"),
            no(1625, 3250, "renewal_too_early"),
            no(1625, 3250, "renewal_too_early"),
        ),
        (9500, 0, 0, 9500),
        (dt.date(2025, 11, 15),) * 3,
    ),
    Case(
        "opti-old-prescription-still-valid",
        "Adult of 30, prescription of 10/01/2022 (4 years 11 months before the delivery)",
        "Between 16 and 42 a glasses prescription is valid 5 years: accepted.",
        opti(A_FRAME, A_RIGHT, A_LEFT, prescription=rx(date=dt.date(2022, 1, 10))),
        facts(birth=LunarDate(1996, 2, 1)),
        (),
        "accepted",
        A_GLASSES_OK,
        (9500, 2850, 6650, 0),
    ),
    # ------------------------------------------------------------------ optics, rights
    Case(
        "opti-rights-ended",
        "Rights end 30/11/2026, delivery 01/12/2026",
        "Rights not open on the delivery date: every line refused, nothing committed (the end date is not disclosed).",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(end=dt.date(2026, 11, 30)),
        (),
        "refused",
        (no(1500, 3000, "rights_closed"), no(1625, 3250, "rights_closed"), no(1625, 3250, "rights_closed")),
        (9500, 0, 0, 9500),
    ),
    Case(
        "opti-no-tiers-payant",
        "The product has no tiers payant terms for optics",
        "No guarantee for the domain on the delivery date: refused.",
        opti(A_FRAME, A_RIGHT, A_LEFT),
        facts(guarantee=None),
        (),
        "refused",
        (
            no(1500, 3000, "no_tiers_payant"),
            no(1625, 3250, "no_tiers_payant"),
            no(1625, 3250, "no_tiers_payant"),
        ),
        (9500, 0, 0, 9500),
    ),
    # ------------------------------------------------------------------ audiology
    Case(
        "audi-class-i-both-ears",
        "Adult (68), class I hearing aids on both ears at the PLV (€950)",
        "Class I: BR €400, AMO €240, the insurer pays €710 per ear: nothing left to pay.",
        audi(line("2390100", "I", "right", "950.00"), line("2390100", "I", "left", "950.00")),
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        (),
        "accepted",
        (ok(40000, 24000, 71000, 0, FULL),) * 2,
        (190000, 48000, 142000, 0),
    ),
    Case(
        "audi-class-i-below-plv",
        "Adult, one class I hearing aid at €900",
        "Class I: the insurer pays price − AMO.",
        audi(line("2390100", "I", "right", "900.00")),
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        (),
        "accepted",
        (ok(40000, 24000, 66000, 0, FULL),),
        (90000, 24000, 66000, 0),
    ),
    Case(
        "audi-class-i-child",
        "Child (14), class I hearing aid (under-20 code, BR and PLV €1,400)",
        "Under 20: BR €1,400, AMO €840, the insurer pays €560.",
        audi(line("2390101", "I", "right", "1400.00")),
        facts(birth=TEEN, guarantee=ESS_AUDI),
        (),
        "accepted",
        (ok(140000, 84000, 56000, 0, FULL),),
        (140000, 84000, 56000, 0),
    ),
    Case(
        "audi-class-ii-ess",
        "Adult, class II hearing aid at €1,200, product ESS (100 % BR)",
        "100 % BR (AMO included) = €400, minus AMO €240: the insurer pays €160.",
        audi(line("2390110", "II", "left", "1200.00")),
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        (),
        "accepted",
        (ok(40000, 24000, 16000, 80000, "guarantee"),),
        (120000, 24000, 16000, 80000),
    ),
    Case(
        "audi-class-ii-conf",
        "Adult, class II hearing aid at €1,500, product CONF (200 % BR)",
        "200 % BR = €800, minus AMO: €560, under the per-ear cap of €1,700 (AMO included).",
        audi(line("2390110", "II", "left", "1500.00")),
        facts(birth=SENIOR, guarantee=CONF_AUDI),
        (),
        "accepted",
        (ok(40000, 24000, 56000, 70000, "guarantee"),),
        (150000, 24000, 56000, 70000),
    ),
    Case(
        "audi-class-ii-over-ear-ceiling",
        "Adult, class II hearing aids on both ears at €2,000, forfait €1,500 per ear",
        "Forfait + TM = €1,660 per ear, but AMO + AMC is capped at €1,700 per ear for a responsible contract: "
        "€1,460 per ear.",
        audi(line("2390110", "II", "right", "2000.00"), line("2390110", "II", "left", "2000.00")),
        facts(birth=SENIOR, guarantee=forfait(1500, per_ear_max_with_amo=170000)),
        (),
        "accepted",
        (ok(40000, 24000, 146000, 30000, "guarantee", "ear_ceiling"),) * 2,
        (400000, 48000, 292000, 60000),
    ),
    Case(
        "audi-not-responsible-no-cap",
        "Adult, class II hearing aid at €2,500, product not responsible, forfait €2,000",
        "Not responsible and no ceiling of its own: no €1,700 cap; AMO + AMC = €2,400.",
        audi(line("2390110", "II", "right", "2500.00")),
        facts(birth=SENIOR, guarantee=forfait(2000), responsible=False),
        (),
        "accepted",
        (ok(40000, 24000, 216000, 10000, "guarantee", "not_responsible"),),
        (250000, 24000, 216000, 10000),
    ),
    Case(
        "audi-not-responsible-own-ceiling",
        "Adult, class II hearing aid at €2,500, product not responsible, forfait €2,000, own per-ear maximum €1,500",
        "Not responsible: the product's own per-ear maximum (AMC only) applies.",
        audi(line("2390110", "II", "right", "2500.00")),
        facts(birth=SENIOR, guarantee=forfait(2000, per_ear_max=150000), responsible=False),
        (),
        "accepted",
        (ok(40000, 24000, 150000, 76000, "guarantee", "ear_ceiling", "not_responsible"),),
        (250000, 24000, 150000, 76000),
    ),
    Case(
        "audi-renewal-same-ear-too-early",
        "Adult, class I on both ears; right ear covered 10/01/2024",
        "One device per ear every 4 years: right refused with its date (next 10/01/2028), left accepted.",
        audi(line("2390100", "I", "right", "950.00"), line("2390100", "I", "left", "950.00")),
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        ears_history(dt.date(2024, 1, 10), "right"),
        "partially_accepted",
        (no(40000, 95000, "renewal_too_early"), ok(40000, 24000, 71000, 0, FULL)),
        (190000, 24000, 71000, 95000),
        (dt.date(2024, 1, 10), None),
    ),
    Case(
        "audi-renewal-after-four-years",
        "Adult, class I on both ears; both covered 30/11/2022",
        "4 years later to the day (30/11/2026) renewal is open: accepted.",
        audi(line("2390100", "I", "right", "950.00"), line("2390100", "I", "left", "950.00")),
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        ears_history(dt.date(2022, 11, 30), "right", "left"),
        "accepted",
        (ok(40000, 24000, 71000, 0, FULL),) * 2,
        (190000, 48000, 142000, 0),
    ),
    Case(
        "audi-lunar-birth-at-20",
        "Lunar birth date 2006-00-00 (19 or 20 on the delivery date), under-20 class I code",
        "The under-20 band is reached by one reading of the lunar date: the under-20 code (BR €1,400) is accepted.",
        audi(line("2390101", "I", "right", "1400.00")),
        facts(birth=LunarDate(2006, None, None), guarantee=ESS_AUDI),
        (),
        "accepted",
        (ok(140000, 84000, 56000, 0, FULL),),
        (140000, 84000, 56000, 0),
    ),
    Case(
        "audi-rights-not-started",
        "Rights open from 01/01/2027, delivery 01/12/2026",
        "Rights not open on the delivery date: refused.",
        audi(line("2390100", "I", "right", "950.00")),
        facts(birth=SENIOR, guarantee=ESS_AUDI, start=dt.date(2027, 1, 1)),
        (),
        "refused",
        (no(40000, 95000, "rights_closed"),),
        (95000, 0, 0, 95000),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_worked_case(case: Case):
    decision = decide(
        case.request, case.facts, case.history, default_catalogue(), default_rules(), today=TODAY
    )
    got = [
        (d.status, d.base_cents, d.amo_cents, d.amc_cents, d.patient_cents, d.reasons) for d in decision.lines
    ]
    assert got == [tuple(expected) for expected in case.lines]
    totals = decision.totals
    assert (totals.price_cents, totals.amo_cents, totals.amc_cents, totals.patient_cents) == case.totals
    assert totals.price_cents == totals.amo_cents + totals.amc_cents + totals.patient_cents
    assert decision.status == case.status
    assert decision.valid_until == (None if case.status == "refused" else VALID_UNTIL)
    if case.previous:
        assert tuple(d.previous_delivery for d in decision.lines) == case.previous
    assert decision.rule_version == default_rules().label
    assert decision.data_version == default_catalogue().data_version
    for d in decision.lines:
        assert d.explanation  # a French explanation on every line
    json.dumps(decision.as_dict())  # storable as JSON


def test_there_are_at_least_30_worked_cases_and_docs_describe_each():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)
    text = DOCS.read_text(encoding="utf-8")
    missing = [case.id for case in CASES if f"`{case.id}`" not in text]
    assert not missing, f"docs/pec-cases.md does not describe {missing}"


def test_a_renewal_refusal_says_when_and_until_when():
    case = next(c for c in CASES if c.id == "audi-renewal-same-ear-too-early")
    decision = decide(
        case.request, case.facts, case.history, default_catalogue(), default_rules(), today=TODAY
    )
    text = decision.lines[0].explanation
    assert "oreille droite" in text and "10 janvier 2024" in text and "10 janvier 2028" in text
    assert decision.reasons == ("renewal_too_early",)
    assert "accordée en partie" in decision.explanation


def test_a_refusal_for_closed_rights_discloses_no_date():
    case = next(c for c in CASES if c.id == "opti-rights-ended")
    decision = decide(
        case.request, case.facts, case.history, default_catalogue(), default_rules(), today=TODAY
    )
    assert "30/11/2026" not in decision.explanation and "2026" not in decision.lines[0].explanation
    assert decision.equipment == "simple_simple"


def test_history_of_another_domain_or_eye_does_not_count():
    history = (HistoryItem("AUDI", dt.date(2026, 6, 1), "device", "right"),)
    decision = decide(
        opti(A_FRAME, A_RIGHT, A_LEFT), facts(), history, default_catalogue(), default_rules(), today=TODAY
    )
    assert decision.status == "accepted"
    history = (HistoryItem("OPTI", dt.date(2026, 6, 1), "lens", "left", L1),)
    decision = decide(
        opti(A_FRAME, A_RIGHT), facts(), history, default_catalogue(), default_rules(), today=TODAY
    )
    assert decision.status == "accepted"


def test_a_later_pec_already_granted_blocks_an_earlier_delivery():
    history = ears_history(dt.date(2027, 3, 1), "right")
    request = audi(line("2390100", "I", "right", "950.00"))
    decision = decide(
        request,
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        history,
        default_catalogue(),
        default_rules(),
        today=TODAY,
    )
    assert decision.status == "refused" and decision.lines[0].previous_delivery == dt.date(2027, 3, 1)


def test_history_items_remember_the_accepted_lines_with_their_corrections():
    request = opti(A_FRAME, A_RIGHT, A_LEFT, prescription=rx(corr("-1.75"), L1))
    decision = decide(
        request,
        facts(),
        glasses_history(dt.date(2025, 6, 15)),
        default_catalogue(),
        default_rules(),
        today=TODAY,
    )
    items = engine.history_items(request, decision)
    assert [(i.item, i.side, i.correction) for i in items] == [
        ("lens", "right", corr("-1.75")),
        ("lens", "left", L1),
    ]
    assert all(i.delivery_date == DELIVERY and i.domain == "OPTI" for i in items)


def test_the_synthetic_products_are_the_ones_these_cases_use():
    from rempart.registry import synthetic

    assert (
        {k: v * 100 for k, v in synthetic.OPTI_RESPONSIBLE.items()}
        == GRID
        == dict(default_rules().responsible_optics)
    )
    levels = {code: (responsible, rate) for code, _, responsible, rate, _ in synthetic.PRODUCT_LEVELS}
    assert levels == {"ESS": (True, 100), "CONF": (True, 200), "PREM": (False, 300)}


# ---------------------------------------------------------------------------------------------- bad input


def bad(request, *, birth=ADULT, today=TODAY):
    guarantee = ESS_AUDI if request.domain == "AUDI" else ESS_OPTI
    with pytest.raises(PecInputError) as caught:
        decide(
            request,
            facts(birth=birth, guarantee=guarantee),
            (),
            default_catalogue(),
            default_rules(),
            today=today,
        )
    return caught.value


BAD_INPUTS = [
    # id, request, birth, (line, field), words in the message
    ("unknown-code", opti(line("2299999", "A", None, "30.00")), ADULT, (1, "lpp_code"), "inconnu"),
    ("expired-code", opti(line("2261874", "B", "right", "30.00")), ADULT, (1, "lpp_code"), "non valable"),
    ("class-inconsistent", opti(A_FRAME, line("2290300", "A", "right", "30.00")), ADULT, (2, "class"), "classe B"),
    ("price-above-plv-class-a", opti(line("2290100", "A", None, "30.01")), ADULT, (1, "unit_price_cents"), "30,00"),
    ("price-above-plv-class-i", audi(line("2390100", "I", "left", "950.01")), SENIOR, (1, "unit_price_cents"), "950,00"),
    ("three-lenses", opti(A_RIGHT, A_LEFT, A_RIGHT), ADULT, (3, "quantity"), "Plus de 2 verres"),
    ("two-lenses-one-line", opti(dataclasses.replace(A_RIGHT, quantity=2)), ADULT, (1, "quantity"), "Plus de 2 verres"),
    ("two-devices-one-ear", audi(line("2390100", "I", "left", "950.00"), line("2390110", "II", "left", "1200.00")), SENIOR,
     (2, "quantity"), "oreille gauche"),
    ("two-frames", opti(A_FRAME, A_FRAME), ADULT, (2, "quantity"), "Une seule monture"),
    ("quantity-zero", opti(dataclasses.replace(A_FRAME, quantity=0)), ADULT, (1, "quantity"), "au moins 1"),
    ("price-zero", opti(dataclasses.replace(A_FRAME, unit_price_cents=0)), ADULT, (1, "unit_price_cents"), "supérieur à 0"),
    ("lens-without-side", opti(dataclasses.replace(A_RIGHT, side=None)), ADULT, (1, "side"), "l'œil"),
    ("frame-with-side", opti(dataclasses.replace(A_FRAME, side="left")), ADULT, (1, "side"), "monture"),
    ("device-without-ear", audi(line("2390100", "I", None, "950.00")), SENIOR, (1, "side"), "l'oreille"),
    ("other-domain-code", audi(line("2290100", "A", None, "30.00")), SENIOR, (1, "lpp_code"), "l'optique"),
    ("child-code-for-adult", opti(line("2290101", "A", None, "30.00")), ADULT, (1, "lpp_code"), "moins de 16 ans"),
    ("adult-code-for-child", audi(line("2390100", "I", "right", "950.00")), TEEN, (1, "lpp_code"), "20 ans et plus"),
    ("under-20-code-at-20", audi(line("2390101", "I", "right", "1400.00")), LunarDate(2006, 3, 1), (1, "lpp_code"), "moins de 20 ans"),
    ("lens-complexity-mismatch", opti(A_FRAME, line("2290200", "A", "right", "32.50"), prescription=rx(corr("-7.00"), L1)),
     ADULT, (2, "lpp_code"), "verre complexe"),
    ("negative-cylinder-transposed", opti(line("2290200", "A", "right", "32.50"), prescription=rx(corr("-5.00", "-2.00"), L1)),
     ADULT, (1, "lpp_code"), "verre complexe"),
    ("lens-for-unprescribed-eye", opti(A_LEFT, prescription=rx(R1, None)), ADULT, (1, "side"), "l'œil gauche"),
    ("sphere-out-of-range", opti(A_FRAME, prescription=rx(Correction(Decimal("-31"), Decimal(0)), L1)), ADULT,
     (None, "prescription.right.sphere"), "-30,00"),
    ("cylinder-not-quarter", opti(A_FRAME, prescription=rx(R1, Correction(Decimal("-1"), Decimal("-0.30")))), ADULT,
     (None, "prescription.left.cylinder"), "0,25"),
    ("addition-out-of-range", opti(A_FRAME, prescription=rx(Correction(Decimal("1"), Decimal(0), Decimal("4.25")), L1)),
     ADULT, (None, "prescription.right.addition"), "+4,00"),
    ("corrections-for-hearing-aids", PecRequest("AUDI", DELIVERY, rx(), (line("2390100", "I", "right", "950.00"),)), SENIOR,
     (None, "prescription.right"), "aide auditive"),
    ("prescription-too-old", opti(A_FRAME, prescription=rx(date=dt.date(2023, 11, 30))), ADULT, (None, "prescription.date"),
     "3 ans"),
    ("child-prescription-too-old", opti(A_CHILD[0], prescription=rx(date=dt.date(2025, 11, 30))), CHILD,
     (None, "prescription.date"), "1 an"),
    ("prescription-in-the-future", opti(A_FRAME, prescription=rx(date=dt.date(2026, 11, 28))), ADULT, (None, "prescription.date"),
     "futur"),
    ("bad-prescriber-id", PecRequest("OPTI", DELIVERY, dataclasses.replace(rx(), prescriber_id="12AB"), (A_FRAME,)), ADULT,
     (None, "prescription.prescriber_id"), "RPPS"),
    ("delivery-in-the-past", opti(A_FRAME, prescription=rx(date=dt.date(2026, 11, 1)), delivery=dt.date(2026, 11, 24)), ADULT,
     (None, "delivery_date"), "passée"),
    ("delivery-too-far", opti(A_FRAME, delivery=dt.date(2027, 6, 1)), ADULT, (None, "delivery_date"), "180 jours"),
    ("no-lines", opti(), ADULT, (None, "lines"), "Au moins une ligne"),
    ("unknown-domain", PecRequest("DENT", DELIVERY, rx(), (A_FRAME,)), ADULT, (None, "domain"), "OPTI"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "birth", "where", "words"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_a_line_specific_error(request_, birth, where, words):
    error = bad(request_, birth=birth)
    assert (error.line, error.field) == where
    if words:
        assert words in error.message
    assert error.as_dict() == {"line": where[0], "field": where[1], "message": error.message}


def test_every_problem_is_reported_at_once():
    request = opti(
        line("2299999", "A", None, "30.00"),
        line("2290200", "B", "right", "40.00"),
        prescription=rx(date=dt.date(2026, 11, 22)),
        delivery=dt.date(2026, 11, 20),
    )
    error = bad(request)
    fields = [(e.line, e.field) for e in error.errors]
    assert fields == [
        (None, "delivery_date"),
        (None, "prescription.date"),
        (1, "lpp_code"),
        (2, "class"),
        (2, "unit_price_cents"),
    ]
    assert error.errors[0] is error
    assert "postérieure à la date de livraison" in error.errors[1].message


def test_the_class_is_read_in_any_letter_case():
    request = audi(line("2390110", "ii", "right", "1200.00"))
    decision = decide(
        request,
        facts(birth=SENIOR, guarantee=ESS_AUDI),
        (),
        default_catalogue(),
        default_rules(),
        today=TODAY,
    )
    assert decision.status == "accepted" and decision.lines[0].lpp_class == "II"


def test_the_expired_code_message_gives_its_validity_period():
    error = bad(opti(line("2261874", "B", "right", "30.00")))
    assert "du 6 mars 2004 au 31 décembre 2019" in error.message


# ---------------------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("cents", "percent", "expected"),
    [
        (5, 60, 3),
        (5, 150, 8),
        (5, 130, 7),
        (1625, 60, 975),
        (1204, 60, 722),
        (1, 50, 1),
        (3, 50, 2),
        (0, 60, 0),
    ],
)
def test_percent_of_rounds_half_up(cents, percent, expected):
    assert arithmetic.percent_of(cents, percent) == expected


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (dt.date(2024, 2, 29), 12, dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), 48, dt.date(2028, 2, 29)),
        (dt.date(2025, 8, 31), 6, dt.date(2026, 2, 28)),
        (dt.date(2025, 11, 15), 24, dt.date(2027, 11, 15)),
        (dt.date(2026, 3, 1), -12, dt.date(2025, 3, 1)),
    ],
)
def test_add_months(day, months, expected):
    assert arithmetic.add_months(day, months) == expected


def test_split_in_proportion_keeps_the_total_and_the_caps():
    assert arithmetic.split_in_proportion(5000, [10000, 8997, 8997]) == [1786, 1607, 1607]
    assert arithmetic.split_in_proportion(1, [1, 1]) == [1, 0]
    assert arithmetic.split_in_proportion(0, [5, 5]) == [0, 0]
    assert arithmetic.split_in_proportion(7, [0, 0]) == [0, 0]
    for total in range(0, 40):
        shares = arithmetic.split_in_proportion(total, [13, 7, 19])
        assert sum(shares) == total and all(s <= w for s, w in zip(shares, [13, 7, 19], strict=True))


@pytest.mark.parametrize(
    ("birth", "on", "expected"),
    [
        (LunarDate(1980, 5, 12), dt.date(2026, 5, 11), (45, 45)),
        (LunarDate(1980, 5, 12), dt.date(2026, 5, 12), (46, 46)),
        (LunarDate(2010, None, None), dt.date(2026, 12, 1), (15, 16)),
        (LunarDate(2010, None, None), dt.date(2026, 12, 31), (16, 16)),
        (LunarDate(2010, 6, None), dt.date(2026, 6, 15), (15, 16)),
        (LunarDate(2008, 2, 29), dt.date(2026, 2, 28), (17, 17)),
        (LunarDate(2008, 2, 29), dt.date(2026, 3, 1), (18, 18)),
        (LunarDate(2027, 1, 1), dt.date(2026, 12, 1), (0, 0)),
    ],
)
def test_age_range(birth, on, expected):
    ages = arithmetic.age_range(birth, on)
    assert (ages.youngest, ages.oldest) == expected


def test_eur_is_french():
    assert wording.eur(123456) == "1\u00a0234,56\u00a0€"
    assert wording.eur(5) == "0,05\u00a0€"


# ---------------------------------------------------------------------------------------------- rule set


def test_every_figure_has_an_effective_date_and_a_source():
    rules = default_rules()
    assert set(rules.figures) == set(ruleset._FIGURES)
    assert all(f.source and f.effective_from for f in rules.figures.values())
    assert rules.amo_rate_percent == 60 and rules.audiology_renewal_months == 48
    assert len(rules.label) <= 40  # Pec.rule_version


def _rules_with(tmp_path, mutate) -> Path:
    doc = json.loads(ruleset.DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    mutate(doc)
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda d: d.update(format="other"), "rempart-pec-rules"),
        (lambda d: d["figures"].pop("amo_rate_percent"), "amo_rate_percent"),
        (lambda d: d["figures"]["audiology_renewal_months"].update(source=""), "audiology_renewal_months"),
        (lambda d: d["figures"]["optics_renewal"].update(effective_from="soon"), "effective_from"),
        (lambda d: d["figures"]["optics_renewal"]["value"].pop(1), "without gaps"),
        (lambda d: d["figures"]["optics_renewal"]["value"][-1].update(age_max=99), "no upper bound"),
        (lambda d: d["figures"]["optics_renewal"].update(value=[]), "at least one"),
        (lambda d: d["figures"]["amo_rate_percent"].update(value="sixty"), "bad value"),
    ],
)
def test_a_bad_rules_file_is_refused_clearly(tmp_path, mutate, words):
    with pytest.raises(RulesError, match=words):
        ruleset.load_rules(_rules_with(tmp_path, mutate))


def test_the_rule_version_changes_with_the_file(tmp_path):
    path = _rules_with(tmp_path, lambda d: d["figures"]["validity_grace_days"].update(value=15))
    rules = ruleset.load_rules(path)
    assert rules.validity_grace_days == 15 and rules.label != default_rules().label
    assert rules.label.startswith("1.0+")


def test_a_decision_is_reproducible():
    case = CASES[3]
    first = decide(case.request, case.facts, case.history, default_catalogue(), default_rules(), today=TODAY)
    second = decide(case.request, case.facts, case.history, default_catalogue(), default_rules(), today=TODAY)
    assert first == second and first.as_dict() == second.as_dict()


def test_a_renewal_refusal_speaks_of_a_delivery_still_to_come_in_the_present():
    request = audi(line("2390100", "I", "right", "950.00"))
    for day, words in (
        (dt.date(2024, 1, 10), "a déjà été prise en charge pour l'oreille droite (délivrance du {})"),
        (dt.date(2027, 3, 1), "est déjà prise en charge pour l'oreille droite (délivrance prévue le {})"),
    ):
        decision = decide(
            request, facts(birth=SENIOR, guarantee=ESS_AUDI), ears_history(day, "right"),
            default_catalogue(), default_rules(), today=TODAY,
        )  # fmt: skip
        expected = words.format(wording.date_fr(day))  # the date as the rules write it
        assert expected in decision.lines[0].explanation, decision.lines[0].explanation
