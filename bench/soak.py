#!/usr/bin/env python3
"""Soak test with faults (issue 17, docs/benchmarks.md "Soak test with faults").

    python3 bench/soak.py [--minutes 30] [--rate 20] [--out DIR] [--no-faults] [--beneficiaries 20000]

One command that starts and owns everything, on 127.0.0.1 only: a PostgreSQL primary and its streaming replica
(scripts/pg_local.py, in DIR/pg/), a redis-server on a free port, gunicorn with the app in production mode
(rempart.bench_settings: surveillance counting in that Redis with thresholds out of reach, because one token
sends the traffic of a whole country's shops), and the background workers (``rempart worker``,
``rempart scheduler``) when the project has them. It seeds a small synthetic registry (``rempart generate``),
makes an organisation and an API token, then sends a fixed-rate, open-loop mix — 80 % rights checks (20 % of
them cards that match nobody), 15 % PEC requests, 5 % invoices (half of them invoicing a PEC granted earlier in
the run) — for ``--minutes``. At 1/3 of the run it restarts PostgreSQL (``pg_ctl restart -m fast`` on the
primary), at 2/3 Redis, and records the marks. Every few seconds it samples the memory (PSS) of each process
group. At the end it looks up the ledger row of every answered request (primary and replica), runs ``rempart
ledger verify`` and ``rempart accounts check``, and writes DIR/report.md, report.csv, summary.json, soak.png,
requests.csv, timeseries.csv, memory.csv and logs/.

Exit status 0 when every answered request has its ledger row, both checks pass and no process group grew past
the memory bound (bench/soak_report.py); 1 otherwise; 2 for bad usage. Bounded: at most --minutes of load
(capped at 240), at most rate × duration requests (capped at 1,000,000), every step with a timeout; whatever it
started is stopped on the way out (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import pg_local  # noqa: E402 - scripts/pg_local.py: the PostgreSQL instances this test owns
import rights_check as rc  # noqa: E402 - the sibling benchmark's helpers (venv, secrets, bodies, Django)

ROOT = rc.ROOT
DB_NAME = "rempart_soak"
DEFAULT_MINUTES = 30.0
DEFAULT_RATE = 20.0  # requests/s: the 2-CPU VM sustains about 3 times this mix (docs/benchmarks.md)
DEFAULT_INFLIGHT = 64
MAX_MINUTES = 240.0
MAX_REQUESTS = 1_000_000
HOST = "127.0.0.1"
TOKEN_NAME = "bench/soak.py"
TOKEN_SCOPES = ["rights:check", "pec:write", "claims:write"]
MAX_RESTARTS = 5  # per process: a process that keeps dying is left dead (and the run fails)
STEP_TIMEOUT = 1800  # seconds for one setup step (migrate, generate, bodies)


def say(message: str) -> None:
    rc.say(message)


# ---------------------------------------------------------------------------------------------- processes


class Owned:
    """A process this test started, in its own session: stopped by its process group, never by name."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log_path = name, command, env, log
        self.process: subprocess.Popen | None = None
        self.exits: list[dict] = []  # exits nobody asked for (supervise)
        self.stopping = False
        self.start()

    def start(self) -> None:
        self.log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        self.log.write(f"\n=== {dt.datetime.now().isoformat(timespec='seconds')} {self.name}\n")
        self.log.flush()
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.stopping = False

    def supervise(self, now: float) -> None:
        """As systemd's Restart=on-failure would: an exit nobody asked for is recorded, and the process restarted."""
        if self.stopping or self.process is None or self.process.poll() is None:
            return
        self.exits.append({"process": self.name, "at": round(now, 1), "code": self.process.returncode})
        say(f"{self.name} exited ({self.process.returncode}) at {now:.0f} s")
        if len(self.exits) <= MAX_RESTARTS:
            self.log.close()
            self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        if not self.alive():
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        found.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return found

    def stop(self, timeout: float = 20) -> None:
        self.stopping = True
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if not self.log.closed:
            self.log.close()


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(check, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {seconds:.0f} s")
        time.sleep(0.2)


class Redis(Owned):
    """redis-server on 127.0.0.1:port, append-only file on (a restart keeps the surveillance counters)."""

    def __init__(self, port: int, data: Path, log: Path) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.port = port
        command = ["redis-server", "--bind", HOST, "--port", str(port), "--dir", str(data), "--save", "",
                   "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"]  # fmt: skip
        super().__init__("redis", command, dict(os.environ), log)
        wait_for(lambda: redis_ping(port), "redis")

    def restart(self) -> None:
        self.stop()
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


def pss_bytes(pids: list[int]) -> int:
    """Proportional set size summed over pids: shared pages (forked workers, shared buffers) counted once."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class Sampler(threading.Thread):
    """Memory of each process group every `every` seconds, until stopped (bounded by the run's own end)."""

    def __init__(self, groups: dict, clock, every: float, supervised: list) -> None:
        super().__init__(daemon=True)
        self.groups, self.clock, self.every, self.supervised = groups, clock, every, supervised
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in groups}
        self.halt = threading.Event()

    def sample(self) -> None:
        now = self.clock()
        for process in self.supervised:
            process.supervise(now)
        for name, pids in self.groups.items():
            self.samples[name].append((now, pss_bytes(pids())))

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.every)

    def write(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("t,group,pss_mb\n")
            for name, points in self.samples.items():
                handle.writelines(f"{t:.1f},{name},{v / 2**20:.1f}\n" for t, v in points)


# ---------------------------------------------------------------------------------------------- setup


def create_token(path: Path) -> None:
    """Child process (Django set up): a professional organisation practising every domain, its owner, a token."""
    rc.setup_django()
    from rempart.accounts import onboarding, tokens
    from rempart.accounts.models import ApiToken, Organisation, Role, User
    from rempart.registry.models import Professional
    from rempart.testing import make_user

    email = "soak@bench.invalid"
    professional = Professional.objects.exclude(finess=None).order_by("pk").first()
    professional.domains = sorted(set(professional.domains) | set(rc.DOMAINS))
    professional.save(update_fields=["domains"])
    organisation = Organisation.objects.filter(professional=professional).first()
    if organisation is None:
        organisation, _link = onboarding.create_organisation(
            Organisation.Kind.PROFESSIONAL, email, finess=professional.finess, send=False
        )
    owner = User.objects.filter(email=email).first() or make_user(email, organisation, Role.OWNER)
    for old in ApiToken.objects.filter(organisation=organisation, name=TOKEN_NAME, revoked_at=None):
        tokens.revoke_token(old)
    _token, raw = tokens.create_token(organisation, TOKEN_NAME, TOKEN_SCOPES, owner, lifetime_days=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw)


def step(command: list[str], env: dict[str, str], log: Path, timeout: float = STEP_TIMEOUT) -> None:
    with open(log, "a", encoding="utf-8") as handle:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                timeout=timeout)  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"step failed ({result.returncode}): {' '.join(command[1:4])} … (see {log})")


def has_command(name: str, env: dict[str, str]) -> bool:
    done = subprocess.run(rc.rempart_cli("help", name), cwd=ROOT, env=env, capture_output=True, timeout=120)
    return done.returncode == 0


def gunicorn_command(port: int, workers: int) -> list[str]:
    # The same server as bench/rights_check.py (2 sync workers, one per core) with its access log off.
    return [str(rc.VENV_PYTHON), "-m", "gunicorn", "rempart.wsgi:application", "--bind", f"{HOST}:{port}",
            "--workers", str(workers), "--worker-class", "sync", "--backlog", "2048", "--timeout", "60",
            "--graceful-timeout", "5", "--log-level", "warning", "--error-logfile", "-"]  # fmt: skip


def check_command(args: list[str], env: dict[str, str], log: Path) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        rc.rempart_cli(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ rempart {' '.join(args)}\n{done.stdout}{done.stderr}\nexit {done.returncode}\n")
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return {"exit": done.returncode, "seconds": round(time.monotonic() - started, 1),
            "last_line": (lines[-1] if lines else "")[:200]}  # fmt: skip


def ledger_lookup(url: str, references: list[str]) -> set[str]:
    import psycopg

    found: set[str] = set()
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for i in range(0, len(references), 5000):
            chunk = references[i : i + 5000]
            rows = conn.execute("SELECT reference FROM ledger_disclosure WHERE reference = ANY(%s)", [chunk])
            found.update(r[0] for r in rows)
    return found


def replica_caught_up(primary: int, replica: int, seconds: float = 60) -> bool:
    target = pg_local.query(primary, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        behind = pg_local.query(replica, f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0")
        if behind == "f":
            return True
        time.sleep(0.5)
    return False


# ---------------------------------------------------------------------------------------------- the run


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="load duration (30)")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help=f"requests/s ({DEFAULT_RATE:g})")
    parser.add_argument("--out", type=Path, help="report directory (bench/out/soak-<timestamp>/)")
    parser.add_argument("--no-faults", action="store_true", help="no PostgreSQL or Redis restart")
    parser.add_argument("--host", default=HOST, help="where everything runs: 127.0.0.1, nothing else")
    parser.add_argument("--beneficiaries", type=int, default=20_000, help="synthetic registry size (20,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=rc.DEFAULT_WORKERS, help="gunicorn sync workers (2)")
    parser.add_argument("--inflight", type=int, default=DEFAULT_INFLIGHT, help="requests out at once (64)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL and Redis data in DIR")
    args = parser.parse_args(argv)
    args.command_line = " ".join(["python3 bench/soak.py", *(sys.argv[1:] if argv is None else argv)])
    if args.host != HOST:
        parser.error(f"--host {args.host}: the soak test targets {HOST} only")
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES:g}]")
    if not 0 < args.rate <= 1000 or args.inflight < 1:
        parser.error("--rate must be in (0, 1000] and --inflight ≥ 1")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out = (args.out or rc.OUT / f"soak-{stamp}").resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"{args.out} is not empty", file=sys.stderr)
        return 2
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    (args.out / "data").mkdir(mode=0o700)
    logs = args.out / "logs"
    owned: list[Owned] = []
    pg_dirs = {"primary": args.out / "pg" / "primary", "replica": args.out / "pg" / "replica"}
    interrupted = threading.Event()

    def on_signal(signum, _frame):
        interrupted.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        return run(args, logs, owned, pg_dirs, interrupted)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for process in reversed(owned):
            process.stop()
        for name in ("replica", "primary"):
            try:
                pg_local.stop(pg_dirs[name])
            except pg_local.PgLocalError as exc:
                say(f"could not stop the {name}: {exc}")
        if not args.keep:
            shutil.rmtree(args.out / "pg", ignore_errors=True)
            shutil.rmtree(args.out / "redis", ignore_errors=True)
            shutil.rmtree(args.out / "data", ignore_errors=True)


def run(args, logs: Path, owned: list, pg_dirs: dict, interrupted) -> int:
    import soak_load
    import soak_report

    seconds = args.minutes * 60
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ports = set()
    while len(ports) < 4:
        ports.add(rc.free_port())
    pg_port, replica_port, redis_port, web_port = sorted(ports)
    say(f"PostgreSQL primary on {pg_port}, replica on {replica_port} ({pg_dirs['primary'].parent})")
    pg_local.start(pg_dirs["primary"], pg_port)
    pg_local.query(pg_port, f"CREATE DATABASE {DB_NAME}")
    pg_local.start(pg_dirs["replica"], replica_port, replica_of=pg_port)
    redis = Redis(redis_port, args.out / "redis", logs / "redis.log")
    owned.append(redis)
    redis_url = f"redis://{HOST}:{redis_port}/0"
    env = rc.base_env(rc.bench_secrets(), DB_NAME)
    env.update(
        DATABASE_URL=f"postgres://postgres@{HOST}:{pg_port}/{DB_NAME}",
        REMPART_REPLICA_URL=f"postgres://postgres@{HOST}:{replica_port}/{DB_NAME}",
        REMPART_REDIS_URL=redis_url,
        REMPART_SURVEILLANCE_STORE="redis",
        REMPART_SURVEILLANCE_REDIS_URL=redis_url,
        REMPART_LEDGER_ANCHOR_DIR=str(args.out / "data" / "anchors"),
        REMPART_INCIDENT_DIR=str(args.out / "data" / "incidents"),
    )
    day = rc.paris_today().isoformat()
    say(f"migrate, then rempart generate --beneficiaries {args.beneficiaries:,} …")
    step(rc.rempart_cli("migrate", "--verbosity", "0"), env, logs / "setup.log")
    step(rc.rempart_cli("generate", "--beneficiaries", str(args.beneficiaries), "--seed", str(args.seed),
                        "--reference-date", day), env, logs / "setup.log")  # fmt: skip
    token_file = args.out / "data" / "token"
    step([sys.executable, __file__, "_token", str(token_file)], env, logs / "setup.log", timeout=300)
    token = token_file.read_text().strip()
    token_file.unlink()
    bodies = args.out / "data" / "rights-bodies.jsonl"
    step([sys.executable, rc.__file__, "_bodies", "--beneficiaries", str(args.beneficiaries), "--seed",
          str(args.seed), "--day", day, "--bodies", "5000", "--out", str(bodies)], env, logs / "setup.log")  # fmt: skip
    lines = bodies.read_text().splitlines()
    expected = bodies.with_suffix(".expected").read_text().split()
    mix = soak_load.Mix(lines, expected, rc.paris_today(), seed=args.seed)

    server_env = {
        **rc.surveillance_env(rc.server_env(env), "redis"),
        "REMPART_SURVEILLANCE_REDIS_URL": redis_url,
    }
    web = Owned("gunicorn", gunicorn_command(web_port, args.workers), server_env, logs / "gunicorn.log")
    owned.append(web)
    wait_for(lambda: _probe(web_port, lines[0]), "gunicorn", 90)
    groups = {"gunicorn": web.pids}
    hooks = []
    for name in ("worker", "scheduler"):
        if has_command(name, env):
            # The worker leaves the schedule to the scheduler (as the production units do).
            command = rc.rempart_cli(name, *(["--no-scheduler"] if name == "worker" else []))
            process = Owned(f"rempart {name}", command, env, logs / f"{name}.log")
            owned.append(process)
            groups[f"rempart {name}"] = process.pids
        else:  # HOOK: the jobs app (rempart/jobs/) has no such command yet; the run goes on without it
            hooks.append(f"`rempart {name}` does not exist yet: not started")
            say(hooks[-1])
    groups["postgres primary"] = lambda: postgres_pids(pg_dirs["primary"])
    groups["postgres replica"] = lambda: postgres_pids(pg_dirs["replica"])
    groups["redis"] = redis.pids

    # Warm-up (not in the figures; its answers' ledger rows are checked too): the workers import, connect, cache.
    warm = soak_load.Load(web_port, token, mix, min(args.rate, 10.0), 5.0, args.inflight, 50).run()
    say(f"warm-up: {sum(r.answered for r in warm)}/{len(warm)} answered")
    total = min(MAX_REQUESTS, int(args.rate * seconds))
    load = soak_load.Load(web_port, token, mix, args.rate, seconds, args.inflight, total)
    sampler = Sampler(groups, load.now, every=5.0 if seconds >= 120 else 2.0, supervised=list(owned))
    marks: list[dict] = []

    def fault(label: str, at: float, action) -> None:
        if load.stopping.wait(max(0.0, at - load.now())):
            return
        mark = {"label": label, "at": round(load.now(), 2)}
        started = time.monotonic()
        say(f"fault: {label} at {mark['at']:.0f} s")
        try:
            action()
            mark["took"] = round(time.monotonic() - started, 2)
        except Exception as exc:  # noqa: BLE001 - recorded in the report; the load goes on
            mark["took"], mark["failure"] = round(time.monotonic() - started, 2), str(exc)[:200]
        marks.append(mark)

    faults = [] if args.no_faults else [
        ("PostgreSQL restart", seconds / 3, lambda: pg_local.restart(pg_dirs["primary"])),
        ("Redis restart", 2 * seconds / 3, redis.restart),
    ]  # fmt: skip
    threads = [threading.Thread(target=fault, args=f, daemon=True) for f in faults]
    say(
        f"load: {args.rate:g} requests/s for {seconds:.0f} s ({total:,} requests, ≤ {args.inflight} in flight)"
    )
    load.start = time.monotonic()
    sampler.start()
    for thread in threads:
        thread.start()
    progress = threading.Thread(target=_progress, args=(load, seconds), daemon=True)
    progress.start()
    try:
        records = load.run()
    finally:
        load.stopping.set()
        for thread in threads:
            thread.join(timeout=200)
        sampler.sample()
        sampler.halt.set()
        sampler.join(timeout=10)
    elapsed = load.now()
    if interrupted.is_set():
        return 1
    say(f"load done: {len(records):,} requests in {elapsed:.0f} s; checking the ledger …")

    answered = [r.reference for r in [*warm, *records] if r.answered]
    found = ledger_lookup(env["DATABASE_URL"], answered)
    missing = sorted(set(answered) - found)
    ledger = {"answered": len(answered), "found": len(set(answered) & found), "lost": len(missing),
              "missing": missing[:1000]}  # fmt: skip
    if replica_caught_up(pg_port, replica_port):
        ledger["replica_found"] = len(ledger_lookup(env["REMPART_REPLICA_URL"], answered))
    for process in owned:  # the checks run alone (the server, workers and Redis are done)
        process.stop()
    checks = {
        "rempart ledger verify": check_command(["ledger", "verify"], env, logs / "checks.log"),
        "rempart accounts check": check_command(["accounts", "check"], env, logs / "checks.log"),
    }
    warmup = max(10.0, min(120.0, 0.1 * seconds))
    summary = soak_report.summarise(records, seconds, marks, sampler.samples, warmup)
    summary.update(ledger=ledger, checks=checks, hooks=hooks, rate=args.rate, minutes=args.minutes,
                   beneficiaries=args.beneficiaries, load_before=load_before,
                   load_after=" ".join(f"{x:.2f}" for x in os.getloadavg()), cpus=os.cpu_count())  # fmt: skip
    problems = []
    if ledger["lost"]:
        problems.append(f"{ledger['lost']} answered requests without a ledger row")
    if not ledger["answered"]:
        problems.append("no request was answered")
    problems += [f"{name} exited {c['exit']}" for name, c in checks.items() if c["exit"]]
    problems += [f"memory of {m['group']} grew past its bound" for m in summary["memory"] if not m["ok"]]
    exits = [e for process in owned for e in process.exits]
    summary["exits"] = exits
    problems += [f"{e['process']} exited ({e['code']}) at {e['at']:.0f} s" for e in exits]
    problems += [f"{m['label']} failed: {m['failure']}" for m in marks if "failure" in m]
    summary["problems"] = problems
    overload = summary["errors"].get("client_overload", 0)
    if overload > 0.01 * len(records):
        hooks.append(
            f"warning: {overload:,} requests not sent (client_overload): the rate is beyond this machine"
        )
    summary["verdict"] = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    rows = soak_report.series(records, seconds)
    title = (f"soak: {args.rate:g} req/s for {args.minutes:g} min, {args.beneficiaries:,} beneficiaries, "
             f"{os.cpu_count()} CPUs — {summary['verdict'][:80]}")  # fmt: skip
    soak_report.plot(args.out / "soak.png", rows, marks, title)
    soak_load.write_records(args.out / "requests.csv", records)
    sampler.write(args.out / "memory.csv")
    fault_list = ", ".join(f"{m['label']} at {m['at']:.0f} s" for m in marks)
    header = [
        f"`{args.command_line}` — "
        f"{dt.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, {os.cpu_count()} CPU, "
        f"load average before {load_before}, after {summary['load_after']}",
        "",
        f"- {args.rate:g} requests/s offered for {seconds:.0f} s (open loop, ≤ {args.inflight} in flight), "
        f"80 % rights checks / 15 % PEC / 5 % invoices; {args.beneficiaries:,} synthetic beneficiaries",
        f"- gunicorn {args.workers} × sync (rempart.bench_settings, production mode), PostgreSQL primary + "
        "streaming replica (scripts/pg_local.py), redis-server (surveillance counters, cache)",
        f"- faults: {fault_list or 'none'}; a disturbance lasts until the first "
        f"{soak_report.QUIET_SECONDS:g} s of requests all answered",
        *(f"- {hook}" for hook in hooks),
    ]
    soak_report.write_files(args.out, summary, rows, header)
    _print(summary, args.out)
    return 0 if not problems else 1


def _probe(port: int, body: str) -> bool:
    try:
        status, _answer = rc.post(port, rc.BARE_PATH, body, None, timeout=5)
        return status == 200
    except OSError:
        return False


def _progress(load, seconds: float) -> None:
    every = 60 if seconds >= 600 else 15
    while not load.stopping.wait(every):
        done = [r for r in load.records if r.done >= 0 or r.error]
        errors = sum(1 for r in done if r.error)
        say(f"  {load.now():.0f}/{seconds:.0f} s: {len(load.records):,} due, {errors:,} errors")


def _print(summary: dict, out: Path) -> None:
    import soak_report

    print()
    for item, value in soak_report.table_rows(summary):
        print(f"  {item}: {value}")
    print(f"\n(written to {out})", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_token":
        create_token(Path(sys.argv[2]))
        sys.exit(0)
    rc.ensure_venv(__file__)
    sys.exit(main())
