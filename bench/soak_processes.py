"""The processes bench/soak.py owns (gunicorn, the workers, redis-server) and the memory of every group it watches.

Each process is started in a session of its own, so that it is stopped by its process group (its children with
it) and never by name: other people's servers on the machine are never touched. PostgreSQL is started and
stopped by scripts/pg_local.py; only its processes' memory is read here.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
MAX_RESTARTS = 5  # per process: a process that keeps dying is left dead (and the run fails)


class Owned:
    """A process this test started, in its own session: stopped by its process group, never by name."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path, cwd: Path,
                 say: Callable[[str], None] = print) -> None:  # fmt: skip
        self.name, self.command, self.env, self.log_path, self.cwd = name, command, env, log, cwd
        self.say = say
        self.process: subprocess.Popen | None = None
        self.exits: list[dict] = []  # exits nobody asked for (supervise)
        self.stopping = False
        # supervise (the sampler's thread) against stop and restart (a fault's thread)
        self.lock = threading.Lock()
        self.start()

    def start(self) -> None:
        self.log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.log.write(f"\n=== {dt.datetime.now().isoformat(timespec='seconds')} {self.name}\n")
        self.log.flush()
        self.process = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.stopping = False

    def supervise(self, now: float) -> None:
        """As systemd's Restart=on-failure would: an exit nobody asked for is recorded, and the process restarted."""
        with self.lock:
            if self.stopping or self.process is None or self.process.poll() is None:
                return
            self.exits.append({"process": self.name, "at": round(now, 1), "code": self.process.returncode})
            self.say(f"{self.name} exited ({self.process.returncode}) at {now:.0f} s")
            self._kill_group(signal.SIGKILL)  # what its leader left behind
            self.log.close()
            if len(self.exits) <= MAX_RESTARTS:
                self.start()
            else:
                self.stopping = True

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        """Every process of the group (the leader and what it forked)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        found.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return sorted(found)

    def _kill_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the group, SIGKILL after `timeout`; the group is signalled even when its leader is gone."""
        with self.lock:
            self.stopping = True
            if self.process is None:
                return
            self._kill_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(signal.SIGKILL)
                self.process.wait(timeout=10)
            deadline = time.monotonic() + 5
            while self.pids() and time.monotonic() < deadline:  # children that outlive their leader
                time.sleep(0.1)
            if self.pids():
                self._kill_group(signal.SIGKILL)
            if not self.log.closed:
                self.log.close()


def redis_ping(port: int) -> bool:
    """+PONG: a Redis still loading its data answers -LOADING, which is not ready."""
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {seconds:.0f} s")
        time.sleep(0.1)


class Redis(Owned):
    """redis-server on 127.0.0.1:port, append-only file on (a restart keeps the surveillance counters)."""

    def __init__(
        self, port: int, data: Path, log: Path, cwd: Path, say: Callable[[str], None] = print
    ) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.port = port
        command = ["redis-server", "--bind", HOST, "--port", str(port), "--dir", str(data), "--save", "",
                   "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"]  # fmt: skip
        super().__init__("redis", command, dict(os.environ), log, cwd, say)
        wait_for(lambda: redis_ping(port), "redis")

    def restart(self) -> None:
        """SIGTERM (Redis flushes its append-only file and exits), then a new server on the same port and data."""
        self.stop()
        with self.lock:
            self.start()
        wait_for(lambda: redis_ping(self.port), "redis after its restart")


def postgres_pids(data: Path) -> list[int]:
    """The postmaster of data (from postmaster.pid) and its children."""
    try:
        master = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return []
    found = [master]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == master:
                found.append(int(entry.name))
    return found


def memory_bytes(pids: list[int]) -> tuple[int, int, int, int]:
    """(RSS, PSS, processes, PSS of shared memory) summed over pids.

    PSS counts a page shared by several processes once over them; its shared-memory part (``Pss_Shmem``: for
    PostgreSQL, the shared buffers) is given apart, so that what a group holds privately can be told from the
    buffers it has touched.
    """
    rss = pss = shmem = n = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:  # gone since it was listed
            continue
        n += 1
        for line in text.splitlines():
            name, _sep, rest = line.partition(":")
            if name in ("Rss", "Pss", "Pss_Shmem"):
                kib = int(rest.split()[0]) * 1024
                if name == "Rss":
                    rss += kib
                elif name == "Pss":
                    pss += kib
                else:
                    shmem += kib
    return rss, pss, n, shmem


class Sampler(threading.Thread):
    """Memory of each process group every `every` seconds until halted; also supervises the owned processes."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], clock: Callable[[], float], every: float,
                 supervised: list[Owned]) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.groups, self.clock, self.every, self.supervised = groups, clock, every, supervised
        self.samples: dict[str, list[tuple[float, int, int, int, int]]] = {name: [] for name in groups}
        self.halt = threading.Event()

    def sample(self) -> None:
        now = self.clock()
        for process in self.supervised:
            process.supervise(now)
        for name, pids in self.groups.items():
            self.samples[name].append((now, *memory_bytes(pids())))

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.every)

    def write(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("t,group,rss_mb,pss_mb,processes,pss_shmem_mb\n")
            for name, points in self.samples.items():
                handle.writelines(
                    f"{t:.1f},{name},{r / 2**20:.1f},{p / 2**20:.1f},{n},{sh / 2**20:.1f}\n"
                    for t, r, p, n, sh in points
                )
