#!/usr/bin/env python3
"""Soak test with faults (issue 17, docs/benchmarks.md "Soak test with faults").

    python3 bench/soak.py [--minutes 30] [--rate 20] [--out DIR] [--no-faults] [--beneficiaries 20000]
                          [--web-workers N] [--web-threads N] [--inflight 64] [--keep]

One command that starts and owns everything, on 127.0.0.1 only: a PostgreSQL primary and its streaming replica
(scripts/pg_local.py, in DIR/pg/), a redis-server on a free port (DIR/redis/, append-only file on), gunicorn
with the production configuration file (deploy/gunicorn.conf.py: gthread workers, the app in production mode
under rempart.bench_settings with surveillance counting in that Redis and its thresholds out of reach, because
one token sends the traffic of a whole country's shops), and the background workers (``rempart worker
--no-scheduler`` and ``rempart scheduler``, as the systemd units run them). It seeds a small synthetic registry
(``rempart generate``), makes an organisation and an API token, then sends a fixed-rate, open-loop mix — 80 %
rights checks (20 % of them cards that match nobody), 15 % PEC requests, 5 % invoices (half of them invoicing
a PEC granted earlier in the run) — for ``--minutes``. At 1/3 of the run it restarts PostgreSQL (``pg_ctl
restart -m fast`` on the primary; the replica reconnects by itself), at 2/3 Redis (SIGTERM, then a new
redis-server on the same port and data), and records the marks. Every few seconds it samples the memory (RSS
and PSS) of each process group. At the end it queues a job and waits for the worker to run it, matches every
answered request with its ledger row (primary and replica), runs ``rempart ledger verify`` and ``rempart
accounts check``, and writes DIR/report.md, report.csv, summary.json, soak.png, requests.csv, timeseries.csv,
memory.csv and logs/.

Exit status 0 when every answered request has its ledger row, both checks pass, no error falls outside a fault's
window, no error is one a restart cannot excuse (a 500, an HTML page), every fault was recovered from, the worker
ran the job and no process group grew past its memory bound (the rules: bench/soak_report.py); 1 otherwise; 2 for
bad usage. Bounded: at most --minutes of load (capped at 240), at most rate × duration requests (capped at
1,000,000), every step with a timeout; whatever it started is stopped on the way out (Ctrl-C, SIGTERM or SIGHUP
included; only SIGKILL leaves the processes of DIR behind).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import pg_local  # noqa: E402 - scripts/pg_local.py: the PostgreSQL instances this test owns
import rights_check as rc  # noqa: E402 - the sibling benchmark's helpers (venv, secrets, bodies, Django)
from soak_processes import HOST, Owned, Redis, Sampler, postgres_pids, wait_for  # noqa: E402

ROOT = rc.ROOT
DB_NAME = "rempart_soak"
DEFAULT_MINUTES = 30.0
# requests/s: a moderate load for a shared 2-CPU machine (docs/benchmarks.md, "Soak test with faults")
DEFAULT_RATE = 20.0
DEFAULT_INFLIGHT = 64
MAX_MINUTES = 240.0
MAX_REQUESTS = 1_000_000
TOKEN_NAME = "bench/soak.py"
TOKEN_SCOPES = ["rights:check", "pec:write", "claims:write"]
STEP_TIMEOUT = 1800  # seconds for one setup step (migrate, generate, bodies)
JOB_PROBE_SECONDS = 120  # the worker must run a job queued after the restarts within this
WARMUP_SECONDS = 20.0  # before the figures: the server's cold start (see run())
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def say(message: str) -> None:
    rc.say(message)


# ---------------------------------------------------------------------------------------------- child steps


def create_token(path: Path) -> None:
    """Child process (Django set up): a professional organisation practising every domain, its owner, a token.

    Writes the raw token and its id (the ledger rows of the run are found by it), mode 0600."""
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
    token, raw = tokens.create_token(organisation, TOKEN_NAME, TOKEN_SCOPES, owner, lifetime_days=2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"raw": raw, "id": token.pk}))


def job_probe() -> None:
    """Child process: queue a `ledger.verify` job and wait for a worker to finish it; prints one JSON line."""
    rc.setup_django()
    from rempart.jobs.models import Job
    from rempart.jobs.queue import enqueue
    from rempart.jobs.stats import live_workers

    started = time.monotonic()
    job = enqueue("ledger.verify", {"mode": "incremental"})
    while time.monotonic() - started < JOB_PROBE_SECONDS:
        job.refresh_from_db()
        if job.status in Job.FINISHED:
            break
        time.sleep(0.5)
    print(json.dumps({"status": job.status, "seconds": round(time.monotonic() - started, 1),
                      "attempts": job.attempts, "failure": job.failure_code or "",
                      "workers_alive": len(live_workers())}))  # fmt: skip


# ---------------------------------------------------------------------------------------------- steps


def step(command: list[str], env: dict[str, str], log: Path, timeout: float = STEP_TIMEOUT) -> str:
    with open(log, "a", encoding="utf-8") as handle:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=handle, text=True,
                                timeout=timeout)  # fmt: skip
        handle.write(result.stdout)
    if result.returncode:
        raise RuntimeError(f"step failed ({result.returncode}): {' '.join(command[1:4])} … (see {log})")
    return result.stdout


def gunicorn_command() -> list[str]:
    """The production server: deploy/gunicorn.conf.py, every value from the environment (web_env)."""
    return [str(rc.VENV_PYTHON), "-m", "gunicorn", "-c", str(GUNICORN_CONF)]


def web_env(env: dict[str, str], port: int, args, data: Path, redis_url: str) -> dict[str, str]:
    server = rc.surveillance_env(rc.server_env(env), "redis")  # bench settings, thresholds out of reach
    server.update(
        REMPART_SURVEILLANCE_REDIS_URL=redis_url,
        REMPART_WEB_BIND=f"{HOST}:{port}",
        REMPART_WEB_LOG_LEVEL="warning",
        REMPART_WEB_GRACEFUL_TIMEOUT="5",
        REMPART_WEB_TMP_DIR=str(data),
        PROMETHEUS_MULTIPROC_DIR=str(data / "metrics"),
    )
    if args.web_workers:
        server["REMPART_WEB_WORKERS"] = str(args.web_workers)
    if args.web_threads:
        server["REMPART_WEB_THREADS"] = str(args.web_threads)
    return server


def web_shape(args) -> tuple[int, int]:
    """(processes, threads) as deploy/gunicorn.conf.py computes them from the same variables."""
    return args.web_workers or 2 * (os.cpu_count() or 1), args.web_threads or 4


def check_command(args: list[str], env: dict[str, str], log: Path) -> dict:
    started = time.monotonic()
    done = subprocess.run(
        rc.rempart_cli(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ rempart {' '.join(args)}\n{done.stdout}{done.stderr}\nexit {done.returncode}\n")
    lines = [line for line in (done.stdout.strip() or done.stderr.strip()).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    return {
        "exit": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "last_line": first[:200],
    }


def ledger_rows(url: str, references: list[str], token_id: int) -> tuple[dict[str, list], int]:
    """(reference → [(purpose, token id)] for every row carrying one of `references`, rows of the token)."""
    import psycopg

    rows: dict[str, list] = {}
    unique = sorted(set(references))
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for i in range(0, len(unique), 5000):
            chunk = unique[i : i + 5000]
            found = conn.execute(
                "SELECT reference, purpose, token_id FROM ledger_disclosure WHERE reference = ANY(%s)",
                [chunk],
            )
            for reference, purpose, token in found:
                rows.setdefault(reference, []).append((purpose, token))
        token_rows = conn.execute("SELECT count(*) FROM ledger_disclosure WHERE token_id = %s", [token_id])
        return rows, token_rows.fetchone()[0]


def replica_caught_up(primary: int, replica: int, seconds: float = 60) -> bool:
    target = pg_local.query(primary, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        behind = pg_local.query(replica, f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn()) > 0")
        if behind == "f":
            return True
        time.sleep(0.5)
    return False


def replica_streaming(port: int, seconds: float = 90) -> float | None:
    """Seconds until the replica streams from the primary again, None if it does not within `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if pg_local.query(port, "SELECT status FROM pg_stat_wal_receiver", timeout=5) == "streaming":
                return round(time.monotonic() - started, 1)
        except pg_local.PgLocalError:
            pass
        time.sleep(0.2)
    return None


def readyz(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}") | {"http": exc.code}
    except (OSError, ValueError) as exc:
        return {"status": type(exc).__name__}


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
    parser.add_argument(
        "--web-workers", type=int, help="gunicorn processes (deploy/gunicorn.conf.py: 2 × CPUs)"
    )
    parser.add_argument("--web-threads", type=int, help="threads per gunicorn process (the config's 4)")
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
    if not 1_000 <= args.beneficiaries <= 10_000_000:
        parser.error("--beneficiaries must be in [1,000, 10,000,000]")
    for name in ("web_workers", "web_threads"):
        if getattr(args, name) is not None and not 1 <= getattr(args, name) <= 64:
            parser.error(f"--{name.replace('_', '-')} must be in [1, 64]")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out = (args.out or rc.OUT / f"soak-{stamp}").resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    missing = [name for name in ("redis-server",) if shutil.which(name) is None]
    try:
        pg_local.bin_dir()
    except pg_local.PgLocalError as exc:
        missing.append(str(exc))
    if missing:
        print(f"bench/soak.py needs: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.out.exists() and any(args.out.iterdir()):
        print(f"{args.out} is not empty", file=sys.stderr)
        return 2
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    (args.out / "data").mkdir(mode=0o700)
    logs = args.out / "logs"
    owned: list[Owned] = []
    pg_dirs = {"primary": args.out / "pg" / "primary", "replica": args.out / "pg" / "replica"}

    def on_signal(signum, _frame):
        raise KeyboardInterrupt  # Ctrl-C, SIGTERM and SIGHUP alike: unwind, then the clean-up below

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(args, logs, owned, pg_dirs)
    except KeyboardInterrupt:
        say("interrupted: stopping everything this run started")
        return 1
    finally:
        # Nothing may interrupt the clean-up itself: a second Ctrl-C or SIGTERM waits until it is done.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for process in reversed(owned):
            process.stop()
        for name in ("replica", "primary"):
            try:
                pg_local.stop(pg_dirs[name])
            except pg_local.PgLocalError as exc:
                if pg_dirs[name].exists():
                    say(f"could not stop the {name}: {exc}")
        if not args.keep:
            for name in ("pg", "redis", "data"):
                shutil.rmtree(args.out / name, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_stack(args, logs: Path, owned: list, pg_dirs: dict) -> dict:
    """PostgreSQL primary + replica, Redis, the database seeded, a token; returns what the run needs."""
    ports: set[int] = set()
    while len(ports) < 4:
        ports.add(rc.free_port())
    pg_port, replica_port, redis_port, web_port = sorted(ports)
    say(f"PostgreSQL primary on {pg_port}, replica on {replica_port} ({pg_dirs['primary'].parent})")
    pg_local.start(pg_dirs["primary"], pg_port)
    pg_local.query(pg_port, f"CREATE DATABASE {DB_NAME}")
    pg_local.start(pg_dirs["replica"], replica_port, replica_of=pg_port)
    redis = Redis(redis_port, args.out / "redis", logs / "redis.log", ROOT, say)
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
        REMPART_JOBS_DIR=str(args.out / "data" / "jobs"),
    )
    day = rc.paris_today().isoformat()
    say(f"migrate, then rempart generate --beneficiaries {args.beneficiaries:,} …")
    step(rc.rempart_cli("migrate", "--verbosity", "0"), env, logs / "setup.log")
    step(rc.rempart_cli("generate", "--beneficiaries", str(args.beneficiaries), "--seed", str(args.seed),
                        "--reference-date", day), env, logs / "setup.log")  # fmt: skip
    token_file = args.out / "data" / "token"
    step([sys.executable, __file__, "_token", str(token_file)], env, logs / "setup.log", timeout=300)
    token = json.loads(token_file.read_text())
    token_file.unlink()
    bodies = args.out / "data" / "rights-bodies.jsonl"
    step([sys.executable, rc.__file__, "_bodies", "--beneficiaries", str(args.beneficiaries), "--seed",
          str(args.seed), "--day", day, "--bodies", str(min(5000, max(100, args.beneficiaries // 4))), "--out", str(bodies)], env, logs / "setup.log")  # fmt: skip
    return {"pg_port": pg_port, "replica_port": replica_port, "web_port": web_port, "redis": redis,
            "redis_url": redis_url, "env": env, "token": token, "bodies": bodies}  # fmt: skip


def start_servers(args, logs: Path, owned: list, pg_dirs: dict, stack: dict) -> dict:
    """gunicorn, the worker and the scheduler; the process groups whose memory is watched."""
    env, port = stack["env"], stack["web_port"]
    web = Owned("gunicorn", gunicorn_command(), web_env(env, port, args, args.out / "data", stack["redis_url"]),
                logs / "gunicorn.log", ROOT, say)  # fmt: skip
    owned.append(web)
    wait_for(lambda: readyz(port).get("status") == "ok", "gunicorn (/readyz)", 120)
    master = web.process.pid
    groups = {
        "gunicorn master": lambda: [master] if web.alive() else [],
        "gunicorn workers": lambda: [pid for pid in web.pids() if pid != master],
    }
    # The worker leaves the schedule to the scheduler, as the production units do (docs/jobs.md).
    for name, command in (
        ("rempart worker", ("worker", "--no-scheduler")),
        ("rempart scheduler", ("scheduler",)),
    ):
        process = Owned(name, rc.rempart_cli(*command), env, logs / f"{command[0]}.log", ROOT, say)
        owned.append(process)
        groups[name] = process.pids
    groups["postgres primary"] = lambda: postgres_pids(pg_dirs["primary"])
    groups["postgres replica"] = lambda: postgres_pids(pg_dirs["replica"])
    groups["redis"] = stack["redis"].pids
    return groups


def run(args, logs: Path, owned: list, pg_dirs: dict) -> int:
    import soak_load
    import soak_report

    seconds = args.minutes * 60
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    stack = start_stack(args, logs, owned, pg_dirs)
    env, port, token = stack["env"], stack["web_port"], stack["token"]
    lines = stack["bodies"].read_text().splitlines()
    expected = stack["bodies"].with_suffix(".expected").read_text().split()
    mix = soak_load.Mix(lines, expected, rc.paris_today(), seed=args.seed)
    groups = start_servers(args, logs, owned, pg_dirs, stack)

    # Warm-up (not in the figures; its answers' ledger rows are checked too). /readyz answers before a worker has
    # imported its URLconf, so each gunicorn worker's first API request waits for the whole application's import
    # (about 10 s with 4 workers importing at once on 2 CPUs): those are the warm-up's timeouts.
    warm_rate = min(args.rate, 10.0)
    warm = soak_load.Load(port, token["raw"], mix, warm_rate, WARMUP_SECONDS, args.inflight, 10**6).run()
    say(
        f"warm-up: {sum(r.answered for r in warm)}/{len(warm)} answered ({soak_report.error_kinds(warm) or 'no error'})"
    )
    total = min(MAX_REQUESTS, int(args.rate * seconds))
    load = soak_load.Load(port, token["raw"], mix, args.rate, seconds, args.inflight, total)
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
            if label == "PostgreSQL restart":
                streaming = replica_streaming(stack["replica_port"])
                mark["note"] = ("replica not streaming again within 90 s" if streaming is None
                                else f"replica streaming again {streaming:.1f} s later")  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - recorded in the report; the load goes on
            mark["took"], mark["failure"] = round(time.monotonic() - started, 2), str(exc)[:200]
        marks.append(mark)

    faults = [] if args.no_faults else [
        ("PostgreSQL restart", seconds / 3, lambda: pg_local.restart(pg_dirs["primary"])),
        ("Redis restart", 2 * seconds / 3, stack["redis"].restart),
    ]  # fmt: skip
    threads = [threading.Thread(target=fault, args=f, daemon=True) for f in faults]
    say(
        f"load: {args.rate:g} requests/s for {seconds:.0f} s ({total:,} requests, ≤ {args.inflight} in flight)"
    )
    load.start = time.monotonic()
    sampler.start()
    for thread in threads:
        thread.start()
    threading.Thread(target=_progress, args=(load, seconds), daemon=True).start()
    try:
        records = load.run()
    finally:
        load.stopping.set()
        for thread in threads:
            thread.join(timeout=200)
        sampler.sample()
        sampler.halt.set()
        sampler.join(timeout=10)
    say(f"load done: {len(records):,} requests in {load.now():.0f} s; a job, the ledger, the checks …")

    summary = soak_report.summarise(
        records, seconds, marks, sampler.samples, max(10.0, min(120.0, 0.1 * seconds))
    )
    summary["warmup"] = {"offered": len(warm), "answered": sum(r.answered for r in warm),
                         "errors": soak_report.error_kinds(warm)}  # fmt: skip
    try:
        probe = step(
            [sys.executable, __file__, "_job_probe"], env, logs / "checks.log", timeout=JOB_PROBE_SECONDS + 60
        )
        summary["job_probe"] = json.loads(probe.strip().splitlines()[-1])
    except (RuntimeError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        summary["job_probe"] = {"status": f"probe failed ({type(exc).__name__})", "seconds": 0}
    summary["readyz"] = readyz(port)
    everything = [*warm, *records]
    answered = [r.reference for r in everything if r.answered]
    rows, token_rows = ledger_rows(env["DATABASE_URL"], answered, token["id"])
    ledger = soak_report.ledger_accounting(everything, rows, token_rows, token["id"])
    ledger["replica_caught_up"] = replica_caught_up(stack["pg_port"], stack["replica_port"])
    if ledger["replica_caught_up"]:
        replica_rows, _n = ledger_rows(env["REMPART_REPLICA_URL"], answered, token["id"])
        ledger["replica_found"] = soak_report.ledger_accounting(everything, replica_rows, _n, token["id"])[
            "found"
        ]
    summary["ledger"] = ledger
    exits = [e for process in owned for e in process.exits]
    for process in owned:  # the checks run alone (the server, workers and Redis are done)
        process.stop()
    summary["checks"] = {
        "rempart ledger verify": check_command(["ledger", "verify"], env, logs / "checks.log"),
        "rempart accounts check": check_command(["accounts", "check"], env, logs / "checks.log"),
    }
    summary.update(exits=exits, rate=args.rate, minutes=args.minutes, beneficiaries=args.beneficiaries,
                   load_before=load_before, load_after=" ".join(f"{x:.2f}" for x in os.getloadavg()),
                   cpus=os.cpu_count(), web=dict(zip(("processes", "threads"), web_shape(args), strict=True)))  # fmt: skip
    notes = []
    overload = summary["errors"].get("client_overload", 0)
    if overload:
        notes.append(
            f"warning: {overload:,} requests not sent (client_overload): the rate is beyond this machine"
        )
    summary["problems"] = soak_report.problems(summary)
    summary["verdict"] = "PASS" if not summary["problems"] else "FAIL: " + "; ".join(summary["problems"])
    write_report(args, summary, records, warm, marks, sampler, notes, seconds)
    return 0 if not summary["problems"] else 1


def write_report(
    args, summary: dict, records: list, warm: list, marks: list, sampler, notes: list[str], seconds: float
) -> None:
    """The data files first, the plot last: a plotting problem never loses the figures."""
    import soak_load
    import soak_report

    rows = soak_report.series(records, seconds)
    soak_load.write_records(args.out / "requests.csv", records)
    soak_load.write_records(args.out / "requests-warmup.csv", warm)
    sampler.write(args.out / "memory.csv")
    processes, threads = web_shape(args)
    fault_list = ", ".join(f"{m['label']} at {m['at']:.0f} s" for m in marks)
    header = [
        f"`{args.command_line}` — {dt.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, "
        f"{os.cpu_count()} CPU, load average before {summary['load_before']}, after {summary['load_after']}",
        "",
        f"- {args.rate:g} requests/s offered for {seconds:.0f} s (open loop, ≤ {args.inflight} in flight), "
        f"80 % rights checks / 15 % PEC / 5 % invoices; {args.beneficiaries:,} synthetic beneficiaries",
        f"- gunicorn -c deploy/gunicorn.conf.py ({processes} processes × {threads} threads; rempart.bench_settings, "
        "production mode), `rempart worker --no-scheduler`, `rempart scheduler`, PostgreSQL primary + streaming "
        "replica (scripts/pg_local.py), redis-server (surveillance counters, cache)",
        f"- faults: {fault_list or 'none'}; a fault's window ends with the first "
        f"{soak_report.QUIET_SECONDS:g} s of requests all answered",
        f"- memory bound: {summary['memory_bound']} (RSS; for PostgreSQL, PSS without its shared memory)",
        *(f"- {note}" for note in notes),
    ]
    soak_report.write_files(args.out, summary, rows, header)
    _print(summary, args.out)
    title = (f"soak: {args.rate:g} req/s for {args.minutes:g} min, {args.beneficiaries:,} beneficiaries, "
             f"{os.cpu_count()} CPUs — {summary['verdict'][:80]}")  # fmt: skip
    soak_report.plot(args.out / "soak.png", rows, summary["faults"], title)


def _progress(load, seconds: float) -> None:
    every = 60 if seconds >= 600 else 15
    while not load.stopping.wait(every):
        errors = sum(1 for r in list(load.records) if r.error)
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
    if len(sys.argv) == 2 and sys.argv[1] == "_job_probe":
        job_probe()
        sys.exit(0)
    rc.ensure_venv(__file__)
    sys.exit(main())
