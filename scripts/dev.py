#!/usr/bin/env python3
"""Set up and run Rempart on a fresh machine with nothing but Python 3.11+ and git.

    python3 scripts/dev.py demo    # virtualenv in .venv/, install, migrate, demo data, serve on :8000
    python3 scripts/dev.py test    # the whole test suite (DATABASE_URL picks PostgreSQL, default SQLite)

Only the standard library is used here, since nothing else is installed yet.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".rempart-installed"
CHROMIUM = Path("/usr/bin/chromium")


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
    if not STAMP.exists() or STAMP.stat().st_mtime < pyproject.stat().st_mtime:
        print("Installing Rempart and its dependencies …", flush=True)
        run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
        STAMP.touch()


def rempart(*args: str) -> None:
    run(BIN / "rempart", *args)


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
    os.environ.setdefault("REMPART_BASE_URL", f"http://{address}")  # links in the demo's emails
    ensure_venv()
    rempart("migrate", "--verbosity", "0")
    rempart("demo_setup", *args)
    print(f"\nRempart demo: open http://{address}/  (Ctrl-C to stop)\n", flush=True)
    env = {**os.environ, "REMPART_DEBUG": os.environ.get("REMPART_DEBUG", "1")}
    run(BIN / "rempart", "runserver", address, "--insecure", env=env)


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
