"""bench/soak.py in seconds: the rules that decide its verdict, its client against a fake server, its processes.

What the soak's verdict rests on is tested here on crafted input, so that a wrong count cannot pass unseen: the
fault windows and the errors outside them, which errors a restart may cost, the matching of answers with ledger
rows (lost, wrong purpose or token, duplicated, recorded but unanswered), the memory bound, the error kinds the
client tells apart (against a small HTTP server in this process), and that the processes it starts are stopped
with everything they forked. A real Redis is restarted when ``redis-server`` is installed (skipped otherwise).

The whole soak (PostgreSQL primary and replica, Redis, gunicorn, workers; about two minutes) runs only with
``REMPART_SOAK_SMOKE=1``: ``REMPART_SOAK_SMOKE=1 .venv/bin/python -m pytest rempart/ops/tests/test_soak_smoke.py
-q -p no:randomly``; it is skipped without ``initdb`` or ``redis-server``.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

import soak  # noqa: E402 - bench/soak.py
import soak_load  # noqa: E402
import soak_processes  # noqa: E402
import soak_report  # noqa: E402

MB = soak_report.MB


def record(
    n: int, due: float, error: str = "", latency: float = 0.02, kind: str = "rights"
) -> soak_load.Record:
    r = soak_load.Record(n=n, kind=kind, expect="hit", due=due, sent=due)
    r.done = due + latency
    r.error = error
    r.reference = "" if error else f"RC-{n:06d}"
    return r


def steady(
    seconds: float, rate: float = 10.0, errors: tuple[float, float] | None = None, kind="http_503:unavailable"
):
    """`rate` requests/s for `seconds`; those due inside `errors` (start, end) failed with `kind`."""
    out = []
    for n in range(int(seconds * rate)):
        due = n / rate
        failed = errors is not None and errors[0] <= due < errors[1]
        out.append(record(n, due, kind if failed else ""))
    return out


def fail(r: soak_load.Record, kind: str) -> None:
    r.error, r.reference = kind, ""


# ---------------------------------------------------------------------------------------------- fault windows


def test_a_fault_window_ends_with_the_first_quiet_stretch_after_the_last_error():
    records = steady(60, errors=(20.0, 23.0))
    found = soak_report.disturbance(records, mark=20.0, quiet=5.0)
    assert found["seconds"] == pytest.approx(3.0, abs=0.11)
    assert found["errors"] == 30
    assert found["error_kinds"] == {"http_503:unavailable": 30}
    assert found["members"] == set(range(200, 230))


def test_an_error_inside_the_quiet_stretch_pushes_the_end_further():
    records = steady(60, errors=(20.0, 21.0))
    fail(records[240], "timeout")  # at 24 s: inside the first 5 s after the burst
    fail(records[270], "reset")  # at 27 s: inside the 5 s after that one
    found = soak_report.disturbance(records, mark=20.0, quiet=5.0)
    assert found["seconds"] == pytest.approx(7.1, abs=0.11)  # quiet only from 27.1 s
    assert found["error_kinds"] == {"http_503:unavailable": 10, "reset": 1, "timeout": 1}


def test_a_request_still_out_when_the_fault_began_belongs_to_its_window():
    records = steady(60)
    fail(records[195], "reset")  # due at 19.5 s, its connection cut at 20.3 s by the restart at 20.0 s
    records[195].done = 20.3
    faults, outside = soak_report.fault_table(
        records, [{"label": "PostgreSQL restart", "at": 20.0, "took": 0.5}]
    )
    assert outside == {}
    assert faults[0]["errors"] == 1
    records[195].done = 19.6  # failed before the fault began: nothing excuses it
    assert soak_report.fault_table(records, [{"label": "x", "at": 20.0, "took": 0.5}])[1] == {"reset": 1}


def test_errors_outside_every_window_are_counted_and_a_window_stops_at_the_next_fault():
    records = steady(120, errors=(40.0, 42.0))
    fail(records[100], "http_500:internal")  # 10 s: before any fault
    fail(records[700], "timeout")  # 70 s: long after the first fault recovered
    for n in range(800, 1200):  # from 80 s to the end: the second fault never recovers
        fail(records[n], "refused")
    marks = [
        {"label": "PostgreSQL restart", "at": 40.0, "took": 1},
        {"label": "Redis restart", "at": 80.0, "took": 1},
    ]
    faults, outside = soak_report.fault_table(records, marks)
    assert outside == {"http_500:internal": 1, "timeout": 1}
    assert faults[0]["seconds"] == pytest.approx(2.0, abs=0.11) and faults[0]["errors"] == 20
    assert faults[1]["seconds"] is None and faults[1]["errors"] == 400
    summary = soak_report.summarise(records, 120, marks, {}, warmup=10)
    assert "no recovery after the Redis restart" in soak_report.problems(summary)


def test_no_error_after_a_fault_is_no_disturbance():
    assert soak_report.disturbance(steady(60), mark=20.0)["seconds"] == 0.0


# ---------------------------------------------------------------------------------------------- what fails the run


def clean_summary(records) -> dict:
    summary = soak_report.summarise(
        records, 60, [{"label": "Redis restart", "at": 30.0, "took": 0.2}], {}, 10
    )
    rows = {r.reference: [(soak_report.PURPOSES[r.kind], 7)] for r in records if r.answered}
    summary["ledger"] = soak_report.ledger_accounting(records, rows, len(rows), token_id=7)
    summary["checks"] = {"rempart ledger verify": {"exit": 0, "seconds": 1, "last_line": "OK"}}
    summary["job_probe"] = {"status": "succeeded", "seconds": 1.0, "workers_alive": 2}
    return summary


def test_a_clean_run_passes_and_each_kind_of_defect_fails_it():
    records = steady(60, errors=(30.0, 31.0))
    assert soak_report.problems(clean_summary(records)) == []

    records[305].error = "http_500:internal"  # inside the Redis restart's window, but a 500 is never excused
    assert soak_report.problems(clean_summary(records)) == [
        "1 × http_500:internal (not what a restart may cost)"
    ]
    records[305].error = "http_503:html"  # the API answered a page
    assert soak_report.problems(clean_summary(records)) == ["1 × http_503:html (not what a restart may cost)"]
    records[305].error = "http_503:unavailable"

    summary = clean_summary(records)
    summary["checks"]["rempart ledger verify"]["exit"] = 1
    summary["job_probe"]["status"] = "queued"
    summary["exits"] = [{"process": "rempart worker", "at": 12.0, "code": -9}]
    summary["ledger"]["replica_caught_up"] = False
    assert soak_report.problems(summary) == [
        "the replica did not catch up with the primary within 60 s after the load",
        "rempart ledger verify exited 1",
        "rempart worker exited (-9) at 12 s",
        "the worker did not run a job after the restarts (queued)",
    ]


def test_the_api_error_kinds_tell_json_from_pages_and_connection_failures_apart():
    assert soak_load.error_kind(503, b'{"detail": "x", "code": "unavailable"}') == (
        "http_503:unavailable",
        "unavailable",
    )
    assert soak_load.error_kind(500, b'{"detail": "x"}') == ("http_500:json", "")
    assert soak_load.error_kind(500, b"<!doctype html><h1>Server Error</h1>") == ("http_500:html", "")
    assert soak_load.error_kind(502, b'["not", "an object"]') == ("http_502:html", "")
    assert soak_load.exception_kind(ConnectionRefusedError()) == "refused"
    assert soak_load.exception_kind(TimeoutError()) == "timeout"
    assert soak_load.exception_kind(ConnectionResetError()) == "reset"
    assert (
        "http_503:unavailable" in soak_report.RESTART_ERRORS
        and "http_503:html" not in soak_report.RESTART_ERRORS
    )


# ---------------------------------------------------------------------------------------------- ledger accounting


def test_every_answered_request_is_matched_with_its_own_row_of_the_right_purpose_and_token():
    records = [record(0, 0.0), record(1, 0.1, kind="pec"), record(2, 0.2, kind="claim"), record(3, 0.3)]
    fail(records[3], "http_503:unavailable")  # not answered: recorded (after the commit) or not
    rows = {"RC-000000": [("rights_check", 7)], "RC-000001": [("pec", 7)], "RC-000002": [("claim", 7)]}
    ledger = soak_report.ledger_accounting(records, rows, token_rows=4, token_id=7)
    assert (ledger["answered"], ledger["found"], ledger["lost"], ledger["mismatched"], ledger["duplicates"]) == (
        3, 3, 0, 0, 0,
    )  # fmt: skip
    assert (ledger["unanswered_rows"], ledger["unanswered_possible"], ledger["ok"]) == (1, 1, True)

    lost = {k: v for k, v in rows.items() if k != "RC-000001"}
    ledger = soak_report.ledger_accounting(records, lost, token_rows=3, token_id=7)
    assert ledger["lost"] == 1 and ledger["missing"] == ["RC-000001"] and not ledger["ok"]
    assert ledger["found"] == 2

    wrong = {**rows, "RC-000001": [("rights_check", 7)], "RC-000002": [("claim", 8)]}  # purpose, then token
    ledger = soak_report.ledger_accounting(records, wrong, token_rows=3, token_id=7)
    assert ledger["mismatched"] == 2 and ledger["mismatched_references"] == ["RC-000001", "RC-000002"]
    assert not ledger["ok"]


def test_duplicated_references_and_too_many_unanswered_rows_fail_the_accounting():
    records = [record(0, 0.0), record(1, 0.1)]
    rows = {"RC-000000": [("rights_check", 7)], "RC-000001": [("rights_check", 7), ("rights_check", 7)]}
    ledger = soak_report.ledger_accounting(records, rows, token_rows=3, token_id=7)
    assert ledger["duplicates"] == 1 and ledger["duplicate_references"] == ["RC-000001"] and not ledger["ok"]

    records[1].reference = "RC-000000"  # two answers carrying one reference
    ledger = soak_report.ledger_accounting(records, {"RC-000000": [("rights_check", 7)]}, 1, token_id=7)
    assert ledger["duplicates"] == 1 and not ledger["ok"]

    # Every request answered, yet the token wrote a row more: a row nobody's request explains.
    records = [record(0, 0.0), record(1, 0.1)]
    rows = {"RC-000000": [("rights_check", 7)], "RC-000001": [("rights_check", 7)]}
    ledger = soak_report.ledger_accounting(records, rows, token_rows=3, token_id=7)
    assert (ledger["unanswered_rows"], ledger["unanswered_possible"], ledger["ok"]) == (1, 0, False)
    summary = {"answered": 2, "ledger": ledger}
    assert soak_report.problems(summary) == [
        "1 ledger rows of the token match no answer, more than the 0 requests left unanswered"
    ]


def test_the_report_lists_the_lost_references_and_the_verdict(tmp_path):
    records = steady(20)
    rows = {r.reference: [("rights_check", 7)] for r in records[1:]}
    summary = soak_report.summarise(records, 20, [], {}, warmup=5)
    summary["ledger"] = soak_report.ledger_accounting(records, rows, len(rows), token_id=7)
    summary["problems"] = soak_report.problems(summary)
    summary["verdict"] = "FAIL: " + "; ".join(summary["problems"])
    soak_report.write_files(tmp_path, summary, soak_report.series(records, 20), ["header"])
    report = (tmp_path / "report.md").read_text()
    assert (
        "| ledger rows for answered requests (primary; reference, token and purpose matched) | 199 / 200 — lost 1"
        in report
    )
    assert "- RC-000000" in report and "1 answered requests without a ledger row" in report
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["ledger"]["lost"] == 1 and saved["ledger"]["missing"] == ["RC-000000"]
    assert (tmp_path / "report.csv").read_text().count("\n") == len(soak_report.table_rows(summary)) + 1


# ---------------------------------------------------------------------------------------------- memory


def test_memory_bound_is_the_larger_of_50_mb_and_20_percent_after_the_warm_up():
    def points(*values, pss=None):
        return [(t, v * MB, (pss or v) * MB, 1) for t, v in zip((0, 30, 60, 90, 120), values, strict=False)]

    samples = {
        "small": points(10, 100, 145, 152, 155),  # +52 MB from 100 MB (median of the last 3: 152)
        "large": [
            (30, 1000 * MB, 0, 4),
            (60, 1150 * MB, 0, 4),
            (90, 1190 * MB, 0, 4),
            (120, 1199 * MB, 0, 4),
        ],
        "warm-up spike ignored": points(500, 60, 61, 62),
    }
    rows = {row["group"]: row for row in soak_report.memory_table(samples, warmup=30)}
    assert (
        not rows["small"]["ok"] and rows["small"]["growth_mb"] == 52.0 and rows["small"]["bound_mb"] == 50.0
    )
    assert rows["large"]["ok"] and rows["large"]["bound_mb"] == 200.0  # +19 %
    assert rows["warm-up spike ignored"]["ok"] and rows["warm-up spike ignored"]["start_mb"] == 60.0
    samples["small"][-1] = (120, 149 * MB, 149 * MB, 1)
    assert {r["group"]: r for r in soak_report.memory_table(samples, warmup=30)}["small"]["ok"]


def test_postgresql_is_bounded_on_its_own_memory_not_on_the_shared_buffers_it_touched():
    """Its RSS and PSS grow with the shared buffers read (the database grows): only the rest is bounded."""
    buffers_grow = [(t, (300 + 2 * t) * MB, (100 + 2 * t) * MB, 20, 2 * t * MB) for t in (0, 30, 60, 90, 120)]
    row = soak_report.memory_table({"postgres replica": buffers_grow}, warmup=30)[0]
    assert row["ok"] and row["growth_mb"] == 0.0 and row["measure"] == "PSS without shared memory"
    assert not soak_report.memory_table({"gunicorn workers": buffers_grow}, warmup=30)[0]["ok"]  # +120 MB RSS
    leaking = [(t, (300 + 2 * t) * MB, (100 + 2 * t) * MB, 20, 0) for t in (0, 30, 60, 90, 120)]
    assert not soak_report.memory_table({"postgres replica": leaking}, warmup=30)[0]["ok"]


# ---------------------------------------------------------------------------------------------- the client


class FakeApi(http.server.BaseHTTPRequestHandler):
    """Answers as the body's "mode" says: ok, 503, 500html, close, slow, noref."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = body["mode"]
        if mode == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if mode == "slow":
            time.sleep(1.0)
        status, payload, kind = {
            "ok": (200, {"reference": f"RC-{body['n']}", "outcome": "covered"}, "application/json"),
            "slow": (200, {"reference": f"RC-{body['n']}", "outcome": "covered"}, "application/json"),
            "noref": (200, {"outcome": "covered"}, "application/json"),
            "503": (503, {"detail": "x", "code": "unavailable"}, "application/json"),
        }.get(mode, (500, "<!doctype html><title>Server Error</title>", "text/html"))
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class ScriptedMix:
    def __init__(self, modes: list[str]) -> None:
        self.modes, self.n = modes, 0

    def next(self):
        body = {"mode": self.modes[self.n % len(self.modes)], "n": self.n}
        self.n += 1
        return "rights", "hit", body, {}


@pytest.fixture
def fake_api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_client_sends_open_loop_and_names_each_failure(fake_api, monkeypatch):
    monkeypatch.setattr(soak_load, "REQUEST_TIMEOUT", 0.5)
    modes = ["ok", "503", "500html", "close", "slow", "noref"]
    load = soak_load.Load(
        fake_api, "tok", ScriptedMix(modes), rate=40, seconds=0.6, inflight=32, max_requests=100
    )
    records = load.run()
    # Every request due on time, whatever came back before it.
    assert [r.due for r in records] == [n / 40 for n in range(24)]
    by_mode = {}
    for r in records:
        by_mode.setdefault(modes[r.n % 6], r)  # the first request of each mode
    assert by_mode["ok"].answered and by_mode["ok"].reference == "RC-0" and by_mode["ok"].outcome == "covered"
    assert by_mode["503"].error == "http_503:unavailable" and by_mode["503"].outcome == "unavailable"
    assert by_mode["500html"].error == "http_500:html"
    assert by_mode["close"].error == "reset"
    assert by_mode["slow"].error == "timeout" and by_mode["slow"].latency >= 0.5
    assert by_mode["noref"].error == "bad_answer" and not by_mode["noref"].answered
    assert sum(r.answered for r in records) == 4  # the "ok" ones only


def test_requests_beyond_the_inflight_cap_are_not_sent_and_nothing_listening_is_refused(
    fake_api, monkeypatch
):
    monkeypatch.setattr(soak_load, "REQUEST_TIMEOUT", 2.0)
    records = soak_load.Load(fake_api, "tok", ScriptedMix(["slow"]), rate=20, seconds=0.5, inflight=2,
                             max_requests=100).run()  # fmt: skip
    assert [r.error for r in records[:2]] == ["", ""]
    assert {r.error for r in records[2:]} == {"client_overload"} and all(r.sent < 0 for r in records[2:])
    assert soak_report.summarise(records, 0.5, [], {}, 0)["answered"] == 2

    closed = soak.rc.free_port()
    records = soak_load.Load(closed, "tok", ScriptedMix(["ok"]), 20, 0.2, 4, 100).run()
    assert {r.error for r in records} == {"refused"}


# ---------------------------------------------------------------------------------------------- processes and usage


@pytest.mark.parametrize("host", ["10.0.0.5", "0.0.0.0", "localhost", "example.org"])
def test_the_soak_test_refuses_any_host_but_127_0_0_1(host, capsys):
    with pytest.raises(SystemExit) as exc:
        soak.parse(["--host", host])
    assert exc.value.code == 2
    assert "127.0.0.1 only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [["--minutes", "0"], ["--minutes", "241"], ["--rate", "0"], ["--rate", "5000"], ["--web-workers", "0"]],
)
def test_the_run_is_bounded(argv):
    with pytest.raises(SystemExit):
        soak.parse(argv)


def test_a_missing_server_program_is_a_usage_error_before_anything_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(soak.shutil, "which", lambda name: None)
    assert soak.main(["--out", str(tmp_path / "soak"), "--minutes", "1"]) == 2
    assert "redis-server" in capsys.readouterr().err
    assert not (tmp_path / "soak").exists()


def test_an_owned_process_is_stopped_with_everything_it_forked(tmp_path):
    owned = soak_processes.Owned("sleepers", ["sh", "-c", "sleep 300 & sleep 300 & wait"], dict(os.environ),
                                 tmp_path / "log", tmp_path, say=lambda _m: None)  # fmt: skip
    soak_processes.wait_for(lambda: len(owned.pids()) == 3, "the sleepers", 10)
    pids = owned.pids()
    owned.stop(timeout=5)
    assert not owned.alive() and owned.pids() == []
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]


def test_an_exit_nobody_asked_for_is_recorded_and_the_process_restarted(tmp_path):
    owned = soak_processes.Owned("short", ["sh", "-c", "exit 3"], dict(os.environ), tmp_path / "log", tmp_path,
                                 say=lambda _m: None)  # fmt: skip
    owned.process.wait(timeout=10)
    owned.supervise(now=4.0)
    assert owned.exits == [{"process": "short", "at": 4.0, "code": 3}]
    owned.stop(timeout=5)
    owned.supervise(now=5.0)  # stopped on purpose: not an exit to record
    assert len(owned.exits) == 1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_a_real_redis_restarts_on_its_port_and_is_stopped(tmp_path):
    port = soak.rc.free_port()
    redis = soak_processes.Redis(
        port, tmp_path / "redis", tmp_path / "redis.log", tmp_path, say=lambda _m: None
    )
    try:
        first = redis.process.pid
        redis.restart()
        assert redis.process.pid != first and soak_processes.redis_ping(port)
        rss, pss, n, shmem = soak_processes.memory_bytes(redis.pids())
        assert n == 1 and rss > 1 * MB and 0 < pss <= rss and 0 <= shmem <= pss
    finally:
        redis.stop()
    assert not soak_processes.redis_ping(port) and redis.pids() == []


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("REMPART_SOAK_SMOKE") != "1", reason="REMPART_SOAK_SMOKE=1 runs the whole soak"
)
@pytest.mark.skipif(
    shutil.which("redis-server") is None
    or shutil.which("initdb") is None
    and not Path("/usr/lib/postgresql").is_dir(),
    reason="the soak needs redis-server and PostgreSQL's server programs (initdb)",
)
def test_a_one_minute_soak_with_both_faults_loses_no_ledger_row():
    # As root, PostgreSQL runs as the postgres OS user, which must traverse every parent of its data directory:
    # pytest's temporary directories are private (0700), a mkdtemp made 0755 is not (docs/replica.md).
    top = Path(tempfile.mkdtemp(prefix="rempart-soak-smoke-"))
    top.chmod(0o755)
    out = top / "soak"
    try:
        _run_and_check_a_short_soak(out)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _run_and_check_a_short_soak(out: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "soak.py"), "--minutes", "1", "--rate", "10", "--beneficiaries", "2000",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    for name in ("report.md", "report.csv", "summary.json", "soak.png", "requests.csv", "memory.csv"):
        assert (out / name).is_file(), f"{name} missing\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["answered"] > 400
    assert summary["ledger"]["lost"] == 0 and summary["ledger"]["found"] == summary["ledger"]["answered"]
    assert [f["label"] for f in summary["faults"]] == ["PostgreSQL restart", "Redis restart"]
    assert all(c["exit"] == 0 for c in summary["checks"].values()), summary["checks"]
    assert (done.returncode == 0) == (not summary["problems"]), (done.returncode, summary["problems"])
    assert done.returncode == 0, summary["problems"]
    assert not (out / "pg").exists() and not (out / "redis").exists()  # stopped, their data removed
