#!/usr/bin/env python3
"""Local PostgreSQL instances that a test, CI or a benchmark owns: a primary and its streaming replicas.

The system PostgreSQL cannot be base-backed-up (its pg_hba has no replication line and we never edit system
configuration), so tests that need a real replica or a database they may restart start their own instances here,
on 127.0.0.1 only, with trust authentication for the superuser ``postgres``. Standard library only: CI and
``bench/soak.py`` run it before any virtualenv exists.

    python3 scripts/pg_local.py start --dir DIR --port 55432
    python3 scripts/pg_local.py start --dir DIR2 --port 55433 --replica-of 55432
    python3 scripts/pg_local.py status --dir DIR        # exit 0 running, 3 stopped, 4 no cluster in DIR
    python3 scripts/pg_local.py restart --dir DIR       # pg_ctl restart -m fast
    python3 scripts/pg_local.py stop --dir DIR          # fast shutdown; not running is fine

Exit codes: 0 done, 1 failure (message on stderr), 2 bad usage, 3 not running, 4 no cluster in DIR.
As root the server binaries run as the ``postgres`` OS user (PostgreSQL refuses root); DIR is chowned to it,
and every parent of DIR must be traversable by that user.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXIT_FAILURE = 1
EXIT_NOT_RUNNING = 3
EXIT_NO_CLUSTER = 4

SUPERUSER = "postgres"
LOG_NAME = "pg_local.log"
START_TIMEOUT_SECONDS = 60
STREAM_TIMEOUT_SECONDS = 60
COMMAND_TIMEOUT_SECONDS = 600

# Safe defaults (fsync stays on: bench/soak.py restarts the primary and counts lost rows).
PRIMARY_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "wal_keep_size": "'1GB'",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "max_connections": "200",
}

HBA = """# Written by scripts/pg_local.py: a throw-away instance on 127.0.0.1, trust for everyone.
local   all             all                     trust
local   replication     all                     trust
host    all             all     127.0.0.1/32    trust
host    replication     all     127.0.0.1/32    trust
"""


class PgLocalError(RuntimeError):
    """A step failed; the message says which and is safe to print."""


@dataclass(frozen=True)
class Instance:
    """A running instance: where it lives, how to reach it, what it is."""

    dir: Path
    port: int
    pid: int
    replica: bool

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def bin_dir() -> Path:
    """The newest PostgreSQL server binaries: $PG_BIN, Debian's /usr/lib/postgresql/N/bin, then pg_config."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name)
    )
    if found:
        return Path(found[-1]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PgLocalError(
        "PostgreSQL server binaries not found (set PG_BIN to the directory holding initdb and pg_ctl)"
    )


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _env() -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, PGHOST…) must not redirect our commands to another server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return env


def _run(
    args: list[str], *, server: bool = True, timeout: float = COMMAND_TIMEOUT_SECONDS, check: bool = True
):
    """Run a PostgreSQL program (as the postgres OS user when we are root and it touches a data dir)."""
    name = Path(args[0]).name
    if server and _as_root():
        args = ["runuser", "-u", SUPERUSER, "--", *args]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=_env(), cwd="/")
    except subprocess.TimeoutExpired as exc:
        raise PgLocalError(f"{name} timed out after {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        raise PgLocalError(f"{name} failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
    return done


def _pg(name: str) -> str:
    return str(bin_dir() / name)


def _prepare_dir(path: Path) -> None:
    """Create an empty data dir the server user owns, mode 0700 (initdb and pg_basebackup insist)."""
    path.mkdir(parents=True, exist_ok=True)
    if _as_root():
        shutil.chown(path, SUPERUSER, SUPERUSER)
        path.chmod(0o700)
        probe = subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-w", str(path)], timeout=30)
        if probe.returncode != 0:
            raise PgLocalError(
                f"{path} is not reachable by the {SUPERUSER} OS user (every parent must be traversable: chmod 755 a mkdtemp directory)"
            )
    else:
        path.chmod(0o700)


def _initialised(path: Path) -> bool:
    return (path / "PG_VERSION").exists()


def _append_settings(path: Path, settings: dict[str, str]) -> None:
    # Later lines win in postgresql.conf; root writes the file, so keep its owner.
    conf = path / "postgresql.conf"
    lines = "".join(f"{k} = {v}\n" for k, v in settings.items())
    with conf.open("a") as fh:
        fh.write("\n# scripts/pg_local.py\n" + lines)


def _quote_setting(value: str) -> str:
    """`--set name=value` values: numbers and on/off as they are, anything else single-quoted."""
    if (
        value.startswith("'")
        or value.replace(".", "", 1).isdigit()
        or value in ("on", "off", "true", "false")
    ):
        return value
    return "'" + value.replace("'", "''") + "'"


def _initdb(path: Path, port: int, extra: dict[str, str]) -> None:
    _run(
        [_pg("initdb"), "-D", str(path), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
        timeout=300,
    )
    (path / "pg_hba.conf").write_text(HBA)
    _append_settings(path, {**PRIMARY_SETTINGS, "port": str(port), **extra})
    if _as_root():
        for name in ("pg_hba.conf", "postgresql.conf"):
            shutil.chown(path / name, SUPERUSER, SUPERUSER)


def _basebackup(path: Path, port: int, primary_port: int, extra: dict[str, str]) -> None:
    _run(
        [
            _pg("pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(primary_port), "-U", SUPERUSER),
            *("-D", str(path), "-R", "-X", "stream", "-c", "fast"),
        ],
        timeout=COMMAND_TIMEOUT_SECONDS,
    )
    log = path / LOG_NAME
    if log.exists():
        log.unlink()  # the primary's log came along with the copy
    _append_settings(path, {"port": str(port), **extra})


def _pid_file(path: Path) -> tuple[int, int] | None:
    """(pid, port) from postmaster.pid, or None."""
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, IndexError, ValueError):
        return None


def status(dir: str | os.PathLike) -> Instance | None:
    """The running instance in dir, or None when it is stopped; PgLocalError when dir holds no cluster."""
    path = Path(dir).resolve()
    if not _initialised(path):
        raise PgLocalError(f"no PostgreSQL cluster in {path}")
    done = _run([_pg("pg_ctl"), "status", "-D", str(path)], check=False, timeout=30)
    if done.returncode != 0:
        return None
    pid_port = _pid_file(path)
    if pid_port is None:
        return None
    return Instance(path, pid_port[1], pid_port[0], (path / "standby.signal").exists())


def query(port: int, sql: str, database: str = "postgres", timeout: float = 30) -> str:
    """One SQL statement through psql over TCP; its unaligned output."""
    done = _run(
        [_pg("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", database, "-XAtqc", sql],
        server=False,
        timeout=timeout,
    )
    return done.stdout.strip()


def _wait_streaming(port: int) -> None:
    deadline = time.monotonic() + STREAM_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if query(port, "SELECT status FROM pg_stat_wal_receiver") == "streaming":
                return
        except PgLocalError:
            pass
        time.sleep(0.2)
    raise PgLocalError(f"the replica on port {port} is not streaming after {STREAM_TIMEOUT_SECONDS} s")


def _pg_ctl_start(path: Path, port: int) -> None:
    _run(
        [
            _pg("pg_ctl"),
            *("start", "-D", str(path), "-l", str(path / LOG_NAME)),
            *("-w", "-t", str(START_TIMEOUT_SECONDS), "-o", f"-p {port}"),
        ],
        timeout=START_TIMEOUT_SECONDS + 30,
    )


def start(
    dir: str | os.PathLike,
    port: int,
    replica_of: int | None = None,
    settings: dict[str, str] | None = None,
) -> Instance:
    """Start the instance in dir on port (initdb or pg_basebackup first when dir is empty); ready when it returns.

    Idempotent: an instance already running there on that port is fine. A replica returns once it streams.
    """
    path = Path(dir).resolve()
    extra = {k: _quote_setting(v) for k, v in (settings or {}).items()}
    if path.exists() and not _initialised(path) and any(path.iterdir()):
        raise PgLocalError(f"{path} is neither empty nor a PostgreSQL cluster")
    if _initialised(path):
        running = status(path)
        if running is not None:
            if running.port != port:
                raise PgLocalError(f"{path} already runs on port {running.port}, not {port}")
            return running
        if replica_of is not None and not (path / "standby.signal").exists():
            raise PgLocalError(f"{path} holds a primary, not a replica of port {replica_of}")
    else:
        _prepare_dir(path)
        if replica_of is None:
            _initdb(path, port, extra)
        else:
            _basebackup(path, port, replica_of, extra)
    _pg_ctl_start(path, port)
    if replica_of is not None:
        _wait_streaming(port)
    running = status(path)
    if running is None:
        raise PgLocalError(f"the server in {path} stopped right after starting; see {path / LOG_NAME}")
    return running


def stop(dir: str | os.PathLike) -> bool:
    """Fast shutdown; True when a server was stopped, False when none was running."""
    path = Path(dir).resolve()
    if not _initialised(path) or status(path) is None:
        return False
    _run([_pg("pg_ctl"), "stop", "-D", str(path), "-m", "fast", "-w", "-t", "60"], timeout=90)
    return True


def restart(dir: str | os.PathLike) -> Instance:
    """pg_ctl restart -m fast (same port and options as the last start); ready when it returns."""
    path = Path(dir).resolve()
    if not _initialised(path):
        raise PgLocalError(f"no PostgreSQL cluster in {path}")
    _run(
        [
            _pg("pg_ctl"),
            *("restart", "-D", str(path), "-l", str(path / LOG_NAME)),
            *("-m", "fast", "-w", "-t", str(START_TIMEOUT_SECONDS)),
        ],
        timeout=START_TIMEOUT_SECONDS + 90,
    )
    running = status(path)
    if running is None:
        raise PgLocalError(f"the server in {path} did not come back; see {path / LOG_NAME}")
    if running.replica:
        _wait_streaming(running.port)
    return running


def _describe(instance: Instance) -> str:
    role = "replica" if instance.replica else "primary"
    return f"running {role} port={instance.port} pid={instance.pid} dir={instance.dir}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="initdb or pg_basebackup if DIR is empty, then start and wait")
    p_start.add_argument("--dir", required=True)
    p_start.add_argument("--port", required=True, type=int)
    p_start.add_argument("--replica-of", type=int, metavar="PORT", help="primary's port on 127.0.0.1")
    p_start.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="extra setting (new DIR)"
    )
    for name in ("stop", "restart", "status"):
        sub.add_parser(name).add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            settings = {}
            for item in args.set:
                name, sep, value = item.partition("=")
                if not sep or not name:
                    parser.error(f"--set wants NAME=VALUE, got {item!r}")
                settings[name.strip()] = value.strip()
            print(_describe(start(args.dir, args.port, args.replica_of, settings)))
        elif args.command == "stop":
            print("stopped" if stop(args.dir) else "not running")
        elif args.command == "restart":
            print(_describe(restart(args.dir)))
        else:
            if not _initialised(Path(args.dir).resolve()):
                print(f"no PostgreSQL cluster in {Path(args.dir).resolve()}", file=sys.stderr)
                return EXIT_NO_CLUSTER
            running = status(args.dir)
            if running is None:
                print("not running")
                return EXIT_NOT_RUNNING
            print(_describe(running))
    except PgLocalError as exc:
        print(f"pg_local: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
