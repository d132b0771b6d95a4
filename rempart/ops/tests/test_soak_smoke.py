"""bench/soak.py: its rules (disturbance, memory bound, 127.0.0.1 only) and, on demand, a 30-second run with faults.

The run starts PostgreSQL (primary and replica), Redis, gunicorn and the workers, so it only runs with
REMPART_SOAK_SMOKE=1 (CI does not set it): ``REMPART_SOAK_SMOKE=1 .venv/bin/python -m pytest
rempart/ops/tests/test_soak_smoke.py -q -p no:randomly``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

import soak  # noqa: E402 - bench/soak.py
import soak_load  # noqa: E402
import soak_report  # noqa: E402


def record(n: int, due: float, error: str = "", latency: float = 0.02) -> soak_load.Record:
    r = soak_load.Record(n=n, kind="rights", expect="hit", due=due, sent=due)
    r.done = due + latency
    r.error = error
    r.reference = "" if error else f"RC-{n:06d}"
    return r


def steady(seconds: float, rate: float = 10.0, errors: tuple[float, float] | None = None, kind="http_503"):
    """`rate` requests/s for `seconds`; those due inside `errors` (start, end) failed with `kind`."""
    out = []
    for n in range(int(seconds * rate)):
        due = n / rate
        failed = errors is not None and errors[0] <= due < errors[1]
        out.append(record(n, due, kind if failed else ""))
    return out


def test_disturbance_ends_with_the_first_quiet_window_after_the_last_error():
    records = steady(60, errors=(20.0, 23.0))
    found = soak_report.disturbance(records, mark=20.0, quiet=5.0)
    assert found["seconds"] == pytest.approx(3.0, abs=0.11)
    assert found["errors"] == 30
    assert found["error_kinds"] == {"http_503": 30}


def test_an_error_inside_the_quiet_window_pushes_the_end_further():
    records = steady(60, errors=(20.0, 21.0))
    records[240].error, records[240].reference = (
        "timeout",
        "",
    )  # at 24 s: inside the first 5 s after the burst
    records[270].error, records[270].reference = "connection", ""  # at 27 s: inside the 5 s after that one
    found = soak_report.disturbance(records, mark=20.0, quiet=5.0)
    assert found["seconds"] == pytest.approx(7.1, abs=0.11)  # quiet only from 27.1 s
    assert found["error_kinds"] == {"connection": 1, "http_503": 10, "timeout": 1}


def test_no_error_after_a_fault_is_no_disturbance_and_no_recovery_is_reported_as_none():
    assert soak_report.disturbance(steady(60), mark=20.0)["seconds"] == 0.0
    never = steady(60, errors=(20.0, 60.0), kind="timeout")
    assert soak_report.disturbance(never, mark=20.0)["seconds"] is None


def test_requests_not_sent_because_of_the_inflight_cap_are_errors_not_answers():
    records = steady(10)
    records[5].error, records[5].reference = "client_overload", ""
    summary = soak_report.summarise(records, 10, [], {}, warmup=1)
    assert summary["answered"] == 99
    assert summary["errors"] == {"client_overload": 1}
    assert not records[5].answered


def test_memory_bound_is_the_larger_of_50_mb_and_20_percent_after_the_warm_up():
    mb = soak_report.MB
    samples = {
        "small": [(0, 10 * mb), (30, 100 * mb), (60, 145 * mb), (90, 152 * mb), (120, 155 * mb)],  # +52 MB
        "large": [(30, 1000 * mb), (60, 1150 * mb), (90, 1190 * mb), (120, 1199 * mb)],  # +19 %: fine
        "warm-up spike ignored": [(0, 500 * mb), (30, 60 * mb), (60, 61 * mb), (90, 62 * mb)],
    }
    rows = {row["group"]: row for row in soak_report.memory_table(samples, warmup=30)}
    assert not rows["small"]["ok"] and rows["small"]["growth_mb"] == 52.0  # median of the last 3: 152 MB
    assert rows["small"]["bound_mb"] == 50.0
    samples["small"][-1] = (120, 149 * mb)
    assert soak_report.memory_table(samples, warmup=30)[1]["ok"]
    assert rows["large"]["ok"] and rows["large"]["bound_mb"] == 200.0
    assert rows["warm-up spike ignored"]["ok"] and rows["warm-up spike ignored"]["start_mb"] == 60.0


@pytest.mark.parametrize("host", ["10.0.0.5", "0.0.0.0", "localhost", "example.org"])
def test_the_soak_test_refuses_any_host_but_127_0_0_1(host, capsys):
    with pytest.raises(SystemExit) as exc:
        soak.parse(["--host", host])
    assert exc.value.code == 2
    assert "127.0.0.1 only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--minutes", "0"], ["--minutes", "241"], ["--rate", "0"], ["--rate", "5000"]]
)
def test_the_run_is_bounded(argv):
    with pytest.raises(SystemExit):
        soak.parse(argv)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("REMPART_SOAK_SMOKE") != "1", reason="REMPART_SOAK_SMOKE=1 runs the soak smoke"
)
def test_a_30_second_soak_with_both_faults_loses_no_ledger_row(tmp_path):
    out = tmp_path / "soak"
    done = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), "--minutes", "0.5", "--rate", "5", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    for name in ("report.md", "report.csv", "summary.json", "soak.png", "requests.csv", "memory.csv"):
        assert (out / name).is_file(), f"{name} missing\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answered"] > 100
    assert summary["ledger"]["lost"] == 0 and summary["ledger"]["found"] >= summary["answered"]
    assert [f["label"] for f in summary["faults"]] == ["PostgreSQL restart", "Redis restart"]
    assert all(c["exit"] == 0 for c in summary["checks"].values()), summary["checks"]
    assert (done.returncode == 0) == (not summary["problems"]), (done.returncode, summary["problems"])
    assert not (out / "pg").exists()  # the instances are stopped and their data removed
