"""Stopping the demo stops everything it started: no orphaned runserver child still listening on the port.

Django's autoreloader is a parent process that runs the server in a child; a SIGTERM to the parent alone
leaves that child serving. scripts/dev.py runs each step in a process group of its own and takes the
whole group down (Ctrl-C, SIGTERM, SIGHUP). These tests send the signal to scripts/dev.py only, as a
terminal's Ctrl-C (the children are in their own session) or a process manager's SIGTERM would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEV = ROOT / "scripts" / "dev.py"
VENV_REMPART = ROOT / ".venv" / "bin" / "rempart"

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by a parent that is not ours, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (every process a run starts inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in environ and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(condition, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# A stand-in for runserver's autoreloader: a parent that runs the "server" in a child and waits for it.
RELOADER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path

    if sys.argv[1] == "child":
        if sys.argv[3] == "stubborn":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        Path(sys.argv[2]).write_text(str(os.getpid()))
        time.sleep(600)
    else:
        subprocess.run([sys.executable, __file__, "child", sys.argv[1], sys.argv[2]])
    """
)


@pytest.mark.parametrize(
    ("signum", "mode"),
    [
        (signal.SIGINT, "polite"),
        (signal.SIGTERM, "polite"),
        (signal.SIGHUP, "polite"),
        (signal.SIGTERM, "stubborn"),
    ],
)
def test_a_signal_to_the_supervisor_ends_the_grandchild_too(tmp_path, signum, mode):
    """The reloader's child dies with us, even one that ignores SIGTERM (SIGKILL after the grace period)."""
    script = tmp_path / "reloader.py"
    script.write_text(RELOADER, encoding="utf-8")
    pid_file = tmp_path / "child.pid"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import dev; dev.supervise(*sys.argv[2:])",
            str(DEV.parent),
            sys.executable,
            str(script),
            str(pid_file),
            mode,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        started = wait_until(
            lambda: (pid_file.exists() and pid_file.read_text()) or supervisor.poll() is not None, 60
        )
        assert started and supervisor.poll() is None, supervisor.communicate(timeout=60)[0]
        grandchild = int(pid_file.read_text())
        assert alive(grandchild)
        supervisor.send_signal(signum)
        output, _ = supervisor.communicate(timeout=60)
        assert supervisor.returncode == 0, output
        assert b"stopped" in output
        assert wait_until(lambda: not alive(grandchild), 10), f"pid {grandchild} outlived the supervisor"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        if pid_file.exists() and pid_file.read_text():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_failing_step_still_fails_and_leaves_nothing(tmp_path):
    """Without a stop request, the step's exit status is ours (the demo must not go on after a failed migrate)."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import dev; dev.supervise(sys.executable, '-c', 'raise SystemExit(3)')",
            str(DEV.parent),
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 3


@pytest.mark.slow
@pytest.mark.skipif(
    not VENV_REMPART.exists(), reason="the demo runs from .venv/ (python3 scripts/dev.py test)"
)
def test_sigterm_to_the_demo_command_frees_the_port_and_leaves_no_process(tmp_path):
    """The README's command, on a free port with SQLite in a temporary directory: up (HTTP 200), SIGTERM, gone."""
    port = free_port()
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REMPART_", "DJANGO_"))}
    env.update(
        REMPART_VAR_DIR=str(var_dir),  # SQLite, secrets, mails: all here; also our marker in /proc/*/environ
        REMPART_DEMO_ADDRESS=f"127.0.0.1:{port}",
        REMPART_SKIP_INSTALL="1",  # .venv/ is what the suite runs in: no pip on a test run
        PYTHONUNBUFFERED="1",
    )
    marker = f"REMPART_VAR_DIR={var_dir}"
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, str(DEV), "demo", "--beneficiaries", "60"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up() -> bool:
        assert demo.poll() is None, (tmp_path / "demo.log").read_text(errors="replace")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        assert wait_until(up, 600, step=1), "the demo never answered"  # migrate + seeding on a loaded machine
        started = processes_with(marker)
        assert len(started) >= 2, started  # the reloader and its server child, at least
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=120)
        output = (tmp_path / "demo.log").read_text(errors="replace")
        assert demo.returncode == 0, output
        assert "Rempart demo stopped." in output
        assert wait_until(lambda: not processes_with(marker), 30), processes_with(marker)
        assert not listening(port)
        with socket.socket() as sock:  # and the port can be taken again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
    finally:
        log.close()
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)
