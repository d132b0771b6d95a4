"""Which process is this, and is that one still alive: so that work recorded as running by a process that
was killed (``kill -9``, an out-of-memory kill, a recycled web worker) is not taken to be running forever.

A process is named by host, pid and a start token, so that a recycled pid is not taken for it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_host() -> str:
    return socket.gethostname()[:255]


def process_token(pid: int | None = None) -> str:
    """'<boot id>:<start time in clock ticks>' of a process (Linux), '' where /proc is not there.

    The pair names one process for the life of the machine: a pid reused after a reboot or by a later
    process has another token.
    """
    stat = _stat(pid or os.getpid())
    if stat is None:
        return ""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{stat[19]}"[:80]


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces


def process_alive(pid: int, token: str) -> bool:
    """Whether the process that started a piece of work still exists on this host (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    stat = _stat(pid)
    if stat is None:
        return not Path("/proc/self/stat").exists()  # no /proc (not Linux): existence is all we know
    if stat[0] in ("Z", "X"):
        return False
    return not token or process_token(pid) == token
