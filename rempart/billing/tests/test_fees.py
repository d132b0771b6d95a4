"""Fees: the schedule in force per day (insurer's, else default), the arithmetic, the one rounding; periods."""

from __future__ import annotations

import datetime as dt

import pytest

from rempart.billing import fees, periods
from rempart.billing.tests.conftest import OCT_1, OCT_31, schedule

D = dt.date


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(0, 10_000, 0), (4_999, 10_000, 0), (5_000, 10_000, 1), (5_001, 10_000, 1), (15_000, 10_000, 2),
     (25_000, 10_000, 3), (10_000, 10_000, 1)],
)  # fmt: skip
def test_round_half_up(numerator, denominator, expected):
    assert fees.round_half_up(numerator, denominator) == expected


def test_round_half_up_refuses_negative():
    with pytest.raises(ValueError):
        fees.round_half_up(-1, 10)


@pytest.mark.django_db
def test_schedule_of_each_day_insurer_then_default(cast):
    insurer = cast.insurer.insurer
    default_old = schedule(None, D(2025, 1, 1), invoice=10)
    default_new = schedule(None, D(2026, 10, 10), invoice=20)
    own = schedule(insurer, D(2026, 10, 20), invoice=99)
    by_day = fees.schedules_by_day(insurer.pk, periods.days(OCT_1, OCT_31))
    assert by_day[D(2026, 10, 9)] == default_old
    assert by_day[D(2026, 10, 10)] == default_new
    assert by_day[D(2026, 10, 19)] == default_new
    assert by_day[D(2026, 10, 20)] == own and by_day[OCT_31] == own


@pytest.mark.django_db
def test_no_schedule_no_fee(cast):
    by_day = fees.schedules_by_day(cast.insurer.insurer.pk, [OCT_1])
    assert by_day == {OCT_1: None}
    result = fees.compute({OCT_1: fees.DayCounts(rights_checks=3, invoices=2, net_paid_cents=10_000)}, by_day)
    assert result.total_cents == 0 and result.invoices == 2


@pytest.mark.django_db
def test_compute_per_day_and_share_rounded_once(cast):
    insurer = cast.insurer.insurer
    schedule(None, D(2026, 1, 1), rights_check=5, pec=100, invoice=30, share=50)
    schedule(insurer, D(2026, 10, 16), rights_check=10, pec=100, invoice=50, share=50)
    counts = {
        D(2026, 10, 15): fees.DayCounts(rights_checks=2, invoices=1, net_paid_cents=101),
        D(2026, 10, 16): fees.DayCounts(rights_checks=2, pecs=1, invoices=1, net_paid_cents=101),
        D(2026, 10, 17): fees.DayCounts(invoices=1, net_paid_cents=101),
    }
    result = fees.compute(counts, fees.schedules_by_day(insurer.pk, counts))
    assert (result.rights_check_cents, result.pec_cents, result.invoice_cents) == (10 + 20, 100, 30 + 50 + 50)
    # 303 cents × 0.50 % = 1.515 cents → 2 (per day it would have been 1 + 1 + 1 = 3).
    assert result.share_cents == 2
    assert result.total_cents == 30 + 100 + 130 + 2
    assert result.as_summary()["total_cents"] == result.total_cents


def test_negative_net_bears_no_share():
    schedule_ = type("S", (), {"pk": 1, "per_rights_check_cents": 0, "per_pec_cents": 0,
                               "per_invoice_cents": 0, "paid_share_basis_points": 100})()  # fmt: skip
    result = fees.compute({OCT_1: fees.DayCounts(net_paid_cents=-50_000)}, {OCT_1: schedule_})
    assert result.share_cents == 0 and result.total_cents == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-11", (D(2026, 11, 1), D(2026, 11, 30), "monthly")),
     ("2024-02", (D(2024, 2, 1), D(2024, 2, 29), "monthly")),
     ("2026-W47", (D(2026, 11, 16), D(2026, 11, 22), "weekly")),
     ("2026-W01", (D(2025, 12, 29), D(2026, 1, 4), "weekly")),
     (" 2026-11-30 ", (D(2026, 11, 30), D(2026, 11, 30), "daily"))],
)  # fmt: skip
def test_periods_parse(text, expected):
    assert periods.parse(text) == expected
    assert periods.kind_of(*expected[:2]) == expected[2]


@pytest.mark.parametrize("text", ["2026-13", "2026-W54", "2026-02-30", "novembre", "", "2026/11"])
def test_periods_refused_clearly(text):
    with pytest.raises(periods.PeriodError) as refused:
        periods.parse(text)
    assert "AAAA" in str(refused.value) or "n'existe pas" in str(refused.value)


def test_kind_of_refuses_other_spans():
    with pytest.raises(periods.PeriodError):
        periods.kind_of(D(2026, 11, 3), D(2026, 11, 12))
