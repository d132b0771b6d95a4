"""The multiprocess directory stays bounded: dead processes' files are folded, every count is kept, once."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rempart.ops import multiprocess

ROOT = Path(__file__).resolve().parents[3]

# One process's work: checks counted, a histogram observed, then it exits (a gunicorn worker replaced, an
# RQ job's forked process done). Prints its pid.
WORK = """
import os
from rempart.lib import metrics
for _ in range({checks}):
    metrics.record_answer("api", "rights_check", "covered")
for seconds in {observations}:
    metrics.LEDGER_APPEND_SECONDS.labels("one").observe(seconds)
print(os.getpid())
"""


def run_process(directory: Path, checks: int, observations: tuple[float, ...] = ()) -> int:
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "DJANGO_SETTINGS_MODULE": "rempart.settings",
    }
    code = WORK.format(checks=checks, observations=list(observations))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, timeout=60
    )
    return int(out.stdout.decode().split()[-1])


def values(directory: Path) -> dict[tuple, float]:
    """What a scrape of the directory shows, sample by sample."""
    registry = CollectorRegistry()
    registry.register(multiprocess.LockedCollector(None, path=str(directory)))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def checks_total(directory: Path) -> float:
    return values(directory)[
        ("rempart_checks_total", (("channel", "api"), ("outcome", "covered"), ("purpose", "rights_check")))
    ]


@pytest.fixture
def directory(tmp_path) -> Path:
    path = tmp_path / "prom"
    path.mkdir()
    return path


def test_dead_processes_are_folded_and_every_count_is_kept(directory):
    first = run_process(directory, 3, (0.0003, 0.004))
    second = run_process(directory, 4, (0.02,))
    before = values(directory)
    assert checks_total(directory) == 7.0
    assert {p.name for p in directory.glob("*.db")} == {
        f"counter_{first}.db",
        f"histogram_{first}.db",
        f"counter_{second}.db",
        f"histogram_{second}.db",
    }
    assert multiprocess.compact(directory) == 4  # both are gone: their four files are folded
    assert {p.name for p in directory.glob("*.db")} == {"counter_compacted.db", "histogram_compacted.db"}
    assert values(directory) == before  # the same scrape, sample for sample (buckets, sums, counts)
    # Later processes add to what was folded; folding again keeps adding up.
    run_process(directory, 5, (0.0003,))
    assert checks_total(directory) == 12.0
    assert multiprocess.compact(directory) == 2
    assert checks_total(directory) == 12.0
    histogram = values(directory)
    count = ("rempart_ledger_append_duration_seconds_count", (("kind", "one"),))
    bucket = ("rempart_ledger_append_duration_seconds_bucket", (("kind", "one"), ("le", "0.0005")))
    assert histogram[count] == 4.0 and histogram[bucket] == 2.0
    assert len(list(directory.glob("*.db"))) == 2


def test_a_live_process_file_is_left_alone(directory):
    """This test's own process stands for a live worker: its file is never folded."""
    dead = run_process(directory, 2)
    live = directory / f"counter_{os.getpid()}.db"
    (directory / f"counter_{dead}.db").rename(live)  # the same content, now owned by a live pid
    other_live = directory / "counter_1.db"  # pid 1 is alive (and not ours)
    other_live.write_bytes(live.read_bytes())
    assert multiprocess.compact(directory) == 0
    assert live.exists() and other_live.exists() and checks_total(directory) == 4.0


def test_a_pid_named_dead_is_folded_even_if_it_looks_alive(directory):
    """gunicorn names the worker it reaped: its pid may already be someone else's."""
    dead = run_process(directory, 2)
    (directory / f"counter_{dead}.db").rename(directory / "counter_1.db")
    assert multiprocess.compact(directory, dead=[1]) == 1
    assert not (directory / "counter_1.db").exists() and checks_total(directory) == 2.0


def test_gauges_and_strangers_are_not_touched(directory):
    run_process(directory, 1)
    (directory / "gauge_all_999999.db").write_bytes(b"")
    (directory / "gauge_livesum_999999.db").write_bytes(b"")
    (directory / "notes.db").write_bytes(b"not ours")
    multiprocess.compact(directory, dead=[999999])
    names = {p.name for p in directory.iterdir()}
    assert {"gauge_all_999999.db", "notes.db", "counter_compacted.db"} <= names
    assert "gauge_livesum_999999.db" not in names  # live gauges of the dead go (prometheus-client's rule)


CORRUPT = (64).to_bytes(4, "little") + b"\0" * 60  # 64 bytes used, of entries with empty keys


def test_a_corrupt_file_is_left_and_nothing_is_lost(directory):
    good = run_process(directory, 3)
    broken = directory / "counter_999998.db"
    broken.write_bytes(CORRUPT)
    truncated = directory / "counter_999997.db"
    truncated.write_bytes((10**6).to_bytes(4, "little") + b"\0" * 60)  # says it holds more than it has
    assert multiprocess.compact(directory) == 1
    assert broken.exists() and truncated.exists() and not (directory / f"counter_{good}.db").exists()
    compacted = directory / "counter_compacted.db"
    compacted.write_bytes(CORRUPT)  # the compacted file itself unreadable: never rewritten
    run_process(directory, 1)
    assert multiprocess.compact(directory) == 0 and compacted.read_bytes() == CORRUPT


def test_a_scrape_waits_for_a_compaction_and_a_compaction_gives_up_on_a_long_scrape(directory, monkeypatch):
    run_process(directory, 2)
    monkeypatch.setattr(multiprocess, "LOCK_WAIT_SECONDS", 0.2)
    with multiprocess._locked(directory, fcntl.LOCK_SH, wait=None):  # a scrape in progress
        started = time.monotonic()
        assert multiprocess.compact(directory) == 0  # gave up, folds nothing, next time it will
        assert time.monotonic() - started < 1.0
    assert multiprocess.compact(directory) == 1
    # A scrape started during a compaction waits for it, then sees the folded file.
    seen = []
    with multiprocess._locked(directory, fcntl.LOCK_EX, wait=None):
        reader = threading.Thread(target=lambda: seen.append(checks_total(directory)))
        reader.start()
        time.sleep(0.2)
        assert not seen  # blocked on the lock
    reader.join(timeout=10)
    assert seen == [2.0]
