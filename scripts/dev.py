#!/usr/bin/env python3
"""Set up and run Rempart on a fresh machine with nothing but Python 3.11+ and git.

    python3 scripts/dev.py demo    # virtualenv in .venv/, install, migrate, demo data, serve on :8000
    python3 scripts/dev.py test    # the whole test suite (DATABASE_URL picks PostgreSQL, default SQLite)

REMPART_DEMO_ADDRESS=127.0.0.1:8080 picks the demo's address; arguments after `demo` go to demo_setup
(`demo --beneficiaries 500`). REMPART_SKIP_INSTALL=1 uses .venv/ as it is (offline, or the demo's own test).
Ctrl-C or SIGTERM stops the demo and everything it started.

Only the standard library is used here, since nothing else is installed yet.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".rempart-installed"
CHROMIUM = Path("/usr/bin/chromium")
STOP_GRACE_SECONDS = 10  # after SIGTERM, before SIGKILL
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def run(*args: str | os.PathLike, **kwargs) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, **kwargs)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Rempart needs Python 3.11 or newer.")
    if not PYTHON.exists():
        print("Creating the virtualenv in .venv/ …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if os.environ.get("REMPART_SKIP_INSTALL"):
        return
    if not STAMP.exists() or STAMP.stat().st_mtime < pyproject.stat().st_mtime:
        print("Installing Rempart and its dependencies …", flush=True)
        run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
        STAMP.touch()


def rempart(*args: str) -> None:
    supervise(BIN / "rempart", *args)


def _signal_group(group: int, signum: int) -> bool:
    """Signal every process of the group; False when none is left."""
    try:
        os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):  # gone (or the id was taken by a stranger's group)
        return False
    return True


def _stop_group(group: int) -> None:
    """SIGTERM to whatever is left of the group, then SIGKILL after the grace period."""
    if not _signal_group(group, signal.SIGTERM):
        return
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not _signal_group(group, 0):
            return
        time.sleep(0.1)
    _signal_group(group, signal.SIGKILL)


def supervise(*args: str | os.PathLike, env: dict[str, str] | None = None) -> None:
    """Run a command in a process group of its own and take the whole group down with us.

    Why: runserver's autoreloader is a parent that restarts a child; a SIGTERM to us (or to the reloader)
    would leave that child orphaned, still listening on the port. The command gets its own session, so we
    forward Ctrl-C, SIGTERM and SIGHUP to its group ourselves, wait, and SIGKILL what outlives the grace
    period (a second Ctrl-C does it at once). Its stdin is not the terminal: a background group touching
    the tty would be stopped, and no step here reads input.
    """
    if not hasattr(os, "killpg"):  # Windows: no process groups to manage, Ctrl-C reaches every process
        run(*args, env=env)
        return
    group: list[int] = []  # filled once started; a signal that comes first is kept and forwarded then
    stop_requested: list[tuple[float, int]] = []

    def forward(signum: int, _frame) -> None:
        if stop_requested and group:  # asked twice: no more waiting
            _signal_group(group[0], signal.SIGKILL)
            return
        stop_requested.append(
            (time.monotonic(), signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
        )
        if group:
            _signal_group(group[0], stop_requested[0][1])

    previous = {signum: signal.signal(signum, forward) for signum in STOP_SIGNALS}
    try:
        child = subprocess.Popen(
            [str(a) for a in args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    group.append(child.pid)
    if stop_requested:
        _signal_group(child.pid, stop_requested[0][1])
    try:
        while True:
            try:
                returncode = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stop_requested and time.monotonic() - stop_requested[0][0] > STOP_GRACE_SECONDS:
                    _signal_group(child.pid, signal.SIGKILL)
    finally:
        _stop_group(child.pid)  # the reloader's child may outlive its parent
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stop_requested:
        print("\nRempart demo stopped.", flush=True)
        sys.exit(0)
    if returncode:
        sys.exit(returncode)


def ensure_chromium() -> None:
    """Browser tests drive Debian's Chromium; install it when we can (root with apt), else they are skipped."""
    if CHROMIUM.exists() or os.environ.get("REMPART_SKIP_BROWSER"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        print("Installing Debian's chromium for the browser tests …", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, check=False)
    if not CHROMIUM.exists():
        print("NOTE: /usr/bin/chromium is missing: browser tests will be skipped.", flush=True)


def demo(args: list[str]) -> None:
    address = os.environ.get("REMPART_DEMO_ADDRESS", "127.0.0.1:8000")
    if address.isdigit():  # a port alone, as runserver takes it: the emails' links need the host as well
        address = f"127.0.0.1:{address}"
    os.environ.setdefault("REMPART_BASE_URL", f"http://{address}")  # links in the demo's emails
    ensure_venv()
    rempart("migrate", "--verbosity", "0")
    rempart("demo_setup", *args)
    print(f"\nRempart demo: open http://{address}/  (Ctrl-C to stop)\n", flush=True)
    # Without DEBUG, as in production: a refused page is the site's 404, never Django's URL map or a traceback
    # (docs/decisions.md); --insecure still serves the static files. REMPART_DEBUG=1 is for a developer who asks.
    env = {**os.environ, "REMPART_DEBUG": os.environ.get("REMPART_DEBUG", "0")}
    # Long work (uploads, notices, payment runs, the daily ledger anchor) runs in a worker beside the server,
    # as in production (docs/jobs.md); it goes down with the demo.
    worker = start_worker(env)
    try:
        supervise(BIN / "rempart", "runserver", address, "--insecure", env=env)
    finally:
        stop_worker(worker)


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "rempart"), "worker"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
    )


def stop_worker(worker: subprocess.Popen) -> None:
    """The worker's whole group, then its exit collected (no zombie, no process left behind)."""
    _signal_group(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=STOP_GRACE_SECONDS)  # reaped: a zombie would look alive to _stop_group
    except subprocess.TimeoutExpired:
        _signal_group(worker.pid, signal.SIGKILL)
        worker.wait()
    _stop_group(worker.pid)  # anything the worker started


def test(args: list[str]) -> None:
    ensure_venv()
    ensure_chromium()
    run(PYTHON, "-m", "pytest", *args)


def main() -> None:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
