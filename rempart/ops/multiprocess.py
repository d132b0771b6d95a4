"""prometheus-client's multiprocess directory, kept bounded: dead processes' files are folded into one.

In multiprocess mode each process writes its values to files named by its pid (``counter_4242.db``, 64 KiB
each at least), and a scrape adds up every file of the directory. gunicorn replaces a worker every
``max_requests`` requests, RQ forks a process per job: without clean-up the directory grows by two files per
dead process for as long as the service runs, and every scrape reads them all. Deleting a dead process's
files would lose its counts (a counter that goes down is a reset for Prometheus, and ``rate()`` jumps), so
its counters and histograms are added into ``counter_compacted.db`` / ``histogram_compacted.db`` instead.

A scrape reads the directory under a shared lock and a compaction writes under an exclusive one
(``.compaction.lock``, never matched by ``*.db``): a scrape sees every count exactly once, before or after.
No Django here: the gunicorn master calls it from its ``child_exit`` hook.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

LOCK_NAME = ".compaction.lock"
COMPACTED = "compacted"
# Types whose values add up across processes (gauges do not: they are left to prometheus-client).
_ADDITIVE = ("counter", "histogram", "summary")
_PROCESS_FILE = re.compile(r"(counter|histogram|summary)_(\d+)\.db")
LOCK_WAIT_SECONDS = 2.0
_UNREADABLE = (OSError, RuntimeError, ValueError, struct.error)  # ValueError: json's error too


@contextlib.contextmanager
def _locked(directory: str | Path, mode: int, wait: float | None) -> Iterator[bool]:
    """Hold the directory's lock (shared or exclusive); yields False if ``wait`` seconds were not enough."""
    fd = os.open(Path(directory) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if wait is None:
            fcntl.flock(fd, mode)
            got = True
        else:
            deadline, got = time.monotonic() + wait, False
            while not got:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    got = True
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.01)
        yield got
    finally:
        os.close(fd)  # releases the lock


class LockedCollector(MultiProcessCollector):
    """prometheus-client's collector of the directory, reading it under the shared lock."""

    def collect(self):
        with _locked(self._path, fcntl.LOCK_SH, wait=None):
            return list(super().collect())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to fold
    return True


def compact(directory: str | Path, dead: Iterable[int] = ()) -> int:
    """Fold the counter, histogram and summary files of dead processes into the compacted files.

    ``dead``: pids known to be gone (the worker gunicorn just reaped); any other process file whose pid
    is not alive is folded too. Returns the number of files folded (0 if the lock was not obtained in
    time: the next call does it). Live gauges of the dead are dropped, as prometheus-client says to.
    """
    directory = Path(directory)
    known_dead = {int(pid) for pid in dead}
    for pid in known_dead:
        mark_process_dead(pid, str(directory))
    folded = 0
    with _locked(directory, fcntl.LOCK_EX, wait=LOCK_WAIT_SECONDS) as got:
        if not got:
            return 0
        by_type: dict[str, list[Path]] = {}
        for path in directory.glob("*.db"):
            match = _PROCESS_FILE.fullmatch(path.name)
            if match is None or path.is_symlink():
                continue
            pid = int(match.group(2))
            if pid == os.getpid() or (pid not in known_dead and _alive(pid)):
                continue
            by_type.setdefault(match.group(1), []).append(path)
        for kind, paths in by_type.items():
            folded += _fold(directory, kind, paths)
    return folded


def _fold(directory: Path, kind: str, paths: list[Path]) -> int:
    """Add ``paths``' values into ``<kind>_compacted.db``: written aside, swapped in, then the sources go.

    The key of a value names its metric, sample and labels, the same in every process: values with the
    same key add up (a histogram's buckets are stored per bucket, not cumulated, so they add up too).
    """
    target = directory / f"{kind}_{COMPACTED}.db"
    totals: dict[str, list[float]] = {}

    def add(path: Path) -> None:
        """All of a file's values, or nothing (ValueError) if any of it is not what prometheus-client writes."""
        entries = list(MmapedDict.read_all_values_from_file(str(path)))
        for key, _value, _timestamp, _pos in entries:
            parsed = json.loads(key)
            if not isinstance(parsed, list) or len(parsed) != 4:
                raise ValueError("not a metric key")
        for key, value, timestamp, _pos in entries:
            total = totals.setdefault(key, [0.0, 0.0])
            total[0] += value
            total[1] = max(total[1], timestamp)

    if target.exists():
        try:
            add(target)
        except _UNREADABLE:
            return 0  # the compacted file cannot be read: rewriting it would lose its counts
    readable = []
    for path in paths:
        try:
            add(path)
        except _UNREADABLE:
            continue  # unreadable (truncated, corrupt): left as it is
        readable.append(path)
    if not readable:
        return 0
    aside = directory / f"{kind}_{COMPACTED}.db.new"  # not *.db: no scrape reads it half-written
    aside.unlink(missing_ok=True)
    written = MmapedDict(str(aside))
    try:
        for key, (value, timestamp) in totals.items():
            written.write_value(key, value, timestamp)
    finally:
        written.close()
    os.replace(aside, target)
    for path in readable:
        path.unlink(missing_ok=True)
    return len(readable)
