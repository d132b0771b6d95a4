#!/usr/bin/env python3
"""Rights-check load benchmark (issue 5, docs/benchmarks.md "Rights check").

    python3 bench/rights_check.py [--beneficiaries 20000000] [--duration 30] [--connections 16] [--workers 2]

Needs wrk (``apt-get install -y wrk``) and the ``bench`` extra (``.venv/bin/pip install -e '.[bench]'``:
gunicorn, py-spy). Steps:

1. Data: a PostgreSQL database ``rempart_bench_rights`` filled by ``rempart generate --seed S
   --reference-date D`` (kept between runs and reused when it holds the asked number of beneficiaries of
   the same seed, built with the same secrets; ``--rebuild`` starts again; ``--data-only`` stops after
   the data: 20 M beneficiaries take about 50 min on the 2-core VM, plus 5 min for the bodies).
2. Requests: a file of JSON bodies, 80 % hits and 20 % misses of four kinds, built by regenerating the
   same synthetic rows (rempart.registry.synthetic, same seed and reference date) — never by reading the
   database. A professional organisation, its owner and an API token of scope ``rights:check`` are
   created through the ORM (a fresh token each run, the previous one revoked).
3. Server: gunicorn on 127.0.0.1 with ``rempart.bench_settings`` (REMPART_ENV=production, DEBUG off,
   explicit secrets from bench/out/var/secrets.env, logging at WARNING); 2 sync workers by default.
4. Load: a sanity check (the expected hits match on both endpoints, the misses do not), then wrk
   (bench/rights_check.lua, ``--latency``) on ``POST /api/v1/rights/check`` and on the bare lookup
   ``POST /bench/bare-lookup`` (same lookup, no auth/validation/ledger), each for ``--duration`` after a
   short warm-up; prints requests/s, p50/p95/p99, errors (non-2xx) and the full/bare ratio, with the CPU
   each process group used, and writes bench/out/rights_check.md.

``--compare-workers 2,3,4`` measures each worker count first (bench/out/rights_check_workers.md);
``--rounds 3`` repeats full+bare and reports the round least disturbed by other processes;
``--quiet-wait 900`` waits (bounded) for a quiet machine before each run; ``--profile`` records the full
endpoint's workers with py-spy. Everything runs on localhost; every load run is bounded in time.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
VAR = OUT / "var"
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
LUA = ROOT / "bench" / "rights_check.lua"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DB_NAME = "rempart_bench_rights"
FULL_PATH = "/api/v1/rights/check"
BARE_PATH = "/bench/bare-lookup"
SCOPE = "rights:check"
BENCH_EMAIL = "banc-d-essai@bench.invalid"
TOKEN_NAME = "bench/rights_check.py"

# Measured on the 2-core VM with --compare-workers 2,3,4,4,3,2 (docs/benchmarks.md, "Rights check"): the
# full endpoint is CPU-bound, so one sync worker per core is best; more workers only add context switches
# (gunicorn CPU per check 14 ms with 2 workers, 17-20 ms with 3 or 4).
DEFAULT_WORKERS = 2
DEFAULT_WORKER_CLASS = "sync"

TARGET_RPS = 1500
TARGET_P99_MS = 30
TARGET_RATIO = 0.6
HIT_SHARE = 0.8
QUIET_CORES = 0.25  # CPU used by other processes above which a run is flagged as disturbed
MISS_KINDS = ("unknown_insurer", "unknown_adherent", "wrong_nir", "wrong_birth_date")
DOMAINS = ("PHAR", "MEDE", "LABO", "RADL", "AUXI", "DENT", "OPTI", "AUDI", "HOSP", "TRAN", "SAGE")


def ensure_venv(script: str | None = None) -> None:
    """Re-run the script (this one, or the benchmark that imports this module) with the project's virtualenv."""
    if Path(sys.prefix).resolve() != VENV.resolve() and VENV_PYTHON.exists():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(Path(script or __file__).resolve()), *sys.argv[1:]])
    if sys.version_info < (3, 11):
        sys.exit("the benchmark needs Python 3.11+ (run python3 scripts/dev.py demo first to create .venv/)")


def say(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------- environment


def bench_secrets() -> dict[str, str]:
    """The benchmark's secrets: bench/out/var/secrets.env (created once), passed explicitly to every process."""
    sys.path.insert(0, str(ROOT))
    from rempart.lib.local_secrets import load_secrets

    return load_secrets(VAR, production=False)


def pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def base_env(secrets: dict[str, str], db_name: str) -> dict[str, str]:
    """Production mode with explicit secrets; plain HTTP on localhost (TLS would end at a proxy)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMPART_", "DJANGO_"))}
    env.update(secrets)
    env.update(
        DATABASE_URL=pg_url(db_name),
        REMPART_VAR_DIR=str(VAR),
        REMPART_ENV="production",
        REMPART_DEBUG="0",
        REMPART_SSL_REDIRECT="0",
        REMPART_LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="rempart.settings",
        PYTHONUNBUFFERED="1",
    )
    return env


def server_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "DJANGO_SETTINGS_MODULE": "rempart.bench_settings", "REMPART_BENCH": "1"}


def paris_today() -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()  # settings.TIME_ZONE: what `generate` uses


def run(command: list[str], env: dict[str, str], timeout: float | None = None) -> None:
    result = subprocess.run(command, cwd=ROOT, env=env, timeout=timeout)
    if result.returncode:
        sys.exit(f"step failed ({result.returncode}): {' '.join(command)}")


def rempart_cli(*args: str) -> list[str]:
    return [str(VENV / "bin" / "rempart"), *args]


def child(*args: str, env: dict[str, str], script: str | None = None) -> None:
    """Run a step of the script (this one by default) in a child process with its own environment."""
    run([sys.executable, str(Path(script or __file__).resolve()), *args], env)


# ---------------------------------------------------------------------------------------------- data


def pg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def db_exists(name: str) -> bool:
    with pg_connect(PG_ADMIN_URL) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def read_meta(name: str) -> dict[str, str]:
    if not db_exists(name):
        return {}
    import psycopg

    with pg_connect(pg_url(name)) as conn:
        try:
            return dict(conn.execute("SELECT key, value FROM bench_meta").fetchall())
        except psycopg.errors.UndefinedTable:
            return {}


def write_meta(name: str, **values) -> None:
    with pg_connect(pg_url(name)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        for key, value in values.items():
            conn.execute(
                "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                [key, str(value)],
            )


def key_fingerprint(secrets: dict[str, str]) -> str:
    """Which blind-index key the data was built with (a hash of it, never the key)."""
    return hashlib.sha256(b"bench-key-check\x00" + secrets["REMPART_BLIND_INDEX_KEY"].encode()).hexdigest()[
        :16
    ]


def registry_schema() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "rempart" / "registry" / "migrations").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_data(args, secrets: dict[str, str], env: dict[str, str]) -> dict[str, str]:
    """Reuse the benchmark database when it holds args.beneficiaries of args.seed, else (re)build it."""
    meta = read_meta(args.db_name)
    wanted = {"status": "complete", "beneficiaries": str(args.beneficiaries), "seed": str(args.seed)}
    reusable = all(meta.get(k) == v for k, v in wanted.items())
    if reusable and meta.get("key") != key_fingerprint(secrets):
        say(f"{args.db_name} was built with other secrets than bench/out/var/secrets.env: rebuilding it")
        reusable = False
    if reusable and not args.rebuild:
        say(
            f"reusing {args.db_name}: {int(meta['beneficiaries']):,} beneficiaries, seed {meta['seed']}, "
            f"generated on {meta['day']}"
        )
        if meta.get("registry_schema") != registry_schema():
            say(
                "warning: the registry migrations changed since this database was built (--rebuild if it fails)"
            )
        run(rempart_cli("migrate", "--verbosity", "0"), env)
        return meta
    if meta:
        say(f"{args.db_name} holds {meta.get('beneficiaries', '?')} ({meta.get('status', '?')}): rebuilding")
    say(f"building {args.db_name} with {args.beneficiaries:,} beneficiaries (seed {args.seed}) …")
    with pg_connect(PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db_name}"')
    run(rempart_cli("migrate", "--verbosity", "0"), env)
    day = paris_today()
    write_meta(
        args.db_name,
        status="generating",
        beneficiaries=args.beneficiaries,
        seed=args.seed,
        day=day.isoformat(),
        key=key_fingerprint(secrets),
        registry_schema=registry_schema(),
        started_at=dt.datetime.now().isoformat(timespec="seconds"),
    )
    started = time.monotonic()
    generate = ["generate", "--beneficiaries", str(args.beneficiaries), "--seed", str(args.seed)]
    run(rempart_cli(*generate, "--reference-date", day.isoformat()), env)
    seconds = time.monotonic() - started
    with pg_connect(pg_url(args.db_name)) as conn:
        [count] = conn.execute("SELECT COUNT(*) FROM registry_beneficiary").fetchone()
        conn.execute("VACUUM (ANALYZE) registry_beneficiary")
        conn.execute("VACUUM (ANALYZE) registry_contract")
    if count != args.beneficiaries:
        sys.exit(f"generation stored {count:,} beneficiaries, {args.beneficiaries:,} asked")
    write_meta(args.db_name, status="complete", generation_seconds=f"{seconds:.0f}")
    say(f"generated and imported {count:,} beneficiaries in {seconds / 60:.1f} min")
    return read_meta(args.db_name)


# ---------------------------------------------------------------------------------------------- requests


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rempart.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _sample_insurer(task):
    """Rows of one insurer at sampled positions (regenerated, deterministic for a seed and day)."""
    from rempart.registry import synthetic

    spec, seed, day, wanted, sample_seed = task
    rng = random.Random(f"bench-{sample_seed}-{spec.amc_number}")
    positions = set(rng.sample(range(spec.beneficiaries), min(wanted, spec.beneficiaries)))
    last = max(positions, default=-1)
    picked = []
    for position, row in enumerate(synthetic.beneficiary_rows(spec, seed, day)):
        if position in positions:
            picked.append(row)
        if position >= last:
            break
    return spec.index, picked


def _presented(row: list[str]) -> dict:
    """What the patient's cards carry for this beneficiary: own NIR, or the ouvrant droit's with the rank."""
    amc, adherent, birth, rank, nir, od_nir = row[0], row[1], row[11], row[12], row[13], row[14]
    body = {"amc_number": amc, "adherent_number": adherent, "nir": nir or od_nir, "birth_date": birth}
    if not nir:
        body["birth_rank"] = int(rank)
    return body


def build_bodies(args) -> None:
    """Child process: write args.bodies JSON bodies (one a line) and their expected outcomes."""
    setup_django()
    import multiprocessing

    from rempart.lib.identifiers import nir_check_key
    from rempart.registry import synthetic

    day = dt.date.fromisoformat(args.day)
    specs = synthetic.plan_insurers(args.seed, args.beneficiaries)
    hits = round(args.bodies * HIT_SHARE)
    misses = args.bodies - hits
    needed = hits + misses  # every miss kind but one starts from a real person too
    tasks = [
        (spec, args.seed, day, math.ceil(needed * spec.beneficiaries / args.beneficiaries * 1.05) + 2, 1)
        for spec in specs
        if spec.beneficiaries
    ]
    started = time.monotonic()
    rows = []
    with multiprocessing.get_context("fork").Pool(processes=os.cpu_count() or 2) as pool:
        for index, picked in pool.imap_unordered(_sample_insurer, tasks):
            rows += [(index, row) for row in picked]
    rows.sort(key=lambda item: (item[0], item[1][1], int(item[1][6])))
    rng = random.Random(f"bench-bodies-{args.seed}")
    rng.shuffle(rows)

    def born_by(row) -> bool:  # the check refuses a birth date after the care date (today)
        year, month, day_ = (int(part) for part in row[11].split("-"))
        return (year, month, day_) <= (day.year, day.month, day.day)

    people = [row for _index, row in rows if born_by(row)]
    if len(people) < needed:
        sys.exit(f"only {len(people)} people sampled, {needed} needed")
    amcs = {spec.amc_number for spec in specs}
    lines = []
    for row in people[:hits]:
        lines.append(({**_presented(row), "domain": rng.choice(DOMAINS)}, "hit"))
    for n, row in enumerate(people[hits : hits + misses]):
        kind = MISS_KINDS[n % len(MISS_KINDS)]
        body = {**_presented(row), "domain": rng.choice(DOMAINS)}
        if kind == "unknown_insurer":
            amc = body["amc_number"]
            while amc in amcs:
                amc = f"{rng.randint(1, 95):02d}{rng.randint(0, 9_999_999):07d}"
            body["amc_number"] = amc
        elif kind == "unknown_adherent":  # contract numbers never reach 90 000 000 per insurer
            body["adherent_number"] = f"{body['adherent_number'][:2]}{rng.randint(90_000_000, 99_999_999)}"
        elif kind == "wrong_nir":  # another valid NIR: same shape, other serial number, right key
            nir_body = body["nir"][:7] + f"{rng.randint(1, 999_999):06d}"
            if nir_body == body["nir"][:13]:
                nir_body = body["nir"][:7] + f"{(int(body['nir'][7:13]) % 999_999) + 1:06d}"
            body["nir"] = nir_body + nir_check_key(nir_body)
        else:  # wrong_birth_date: one year earlier, same format (lunar dates stay lunar)
            year, rest = body["birth_date"].split("-", 1)
            body["birth_date"] = f"{int(year) - 1:04d}-{rest}"
        lines.append((body, f"miss:{kind}"))
    rng.shuffle(lines)
    tmp = args.out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(body, separators=(",", ":")) + "\n" for body, _kind in lines)
    args.out.with_suffix(".expected").write_text("".join(f"{kind}\n" for _body, kind in lines))
    tmp.rename(args.out)
    print(f"wrote {len(lines):,} bodies in {time.monotonic() - started:.0f} s", flush=True)


def ensure_bodies(args, env: dict[str, str], meta: dict[str, str]) -> tuple[Path, list[str]]:
    name = f"rights-bodies-{meta['beneficiaries']}-seed{meta['seed']}-{meta['day']}-{args.bodies}.jsonl"
    path = OUT / name
    if not path.exists():
        say(f"regenerating the synthetic rows to pick {args.bodies:,} request bodies …")
        child(
            "_bodies", "--beneficiaries", meta["beneficiaries"], "--seed", meta["seed"], "--day", meta["day"],
            "--bodies", str(args.bodies), "--out", str(path), env=env,
        )  # fmt: skip
    else:
        say(f"using the request bodies in {path.relative_to(ROOT)}")
    expected = path.with_suffix(".expected").read_text().split()
    return path, expected


def create_token(args) -> None:
    """Child process: a professional organisation, its owner and a fresh token of scope rights:check."""
    setup_django()
    from rempart.accounts import onboarding, tokens
    from rempart.accounts.models import ApiToken, Organisation, Role, User
    from rempart.registry.models import Professional
    from rempart.testing import make_user

    professional = Professional.objects.exclude(finess=None).order_by("pk").first()
    organisation = Organisation.objects.filter(professional=professional).first()
    if organisation is None:
        organisation, _link = onboarding.create_organisation(
            Organisation.Kind.PROFESSIONAL, BENCH_EMAIL, finess=professional.finess, send=False
        )
    owner = User.objects.filter(email=BENCH_EMAIL).first() or make_user(BENCH_EMAIL, organisation, Role.OWNER)
    # The bodies ask random care domains; the gate refuses (403, before any lookup) a domain the organisation
    # does not practise. The benchmark's professional practises them all, so that every body is a real check.
    Professional.objects.filter(pk=professional.pk).update(domains=list(DOMAINS))
    for old in ApiToken.objects.filter(organisation=organisation, name=TOKEN_NAME, revoked_at=None):
        tokens.revoke_token(old)
    _token, raw = tokens.create_token(organisation, TOKEN_NAME, [SCOPE], owner, lifetime_days=7)
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw)


def new_token(env: dict[str, str]) -> str:
    path = OUT / "rights-token.txt"
    child("_token", "--out", str(path), env=env)
    raw = path.read_text().strip()
    path.unlink()
    return raw


# ---------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(port: int, path: str, body: str, token: str | None, timeout: float = 10) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body.encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (localhost)
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


class Server:
    """gunicorn on 127.0.0.1, in its own process group (stopped by that group's id)."""

    def __init__(
        self, env: dict[str, str], workers: int, worker_class: str, threads: int, probe: str
    ) -> None:
        self.port = free_port()
        self.log_path = OUT / "rights-server.log"
        command = [
            str(VENV_PYTHON), "-m", "gunicorn", "rempart.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--worker-class", worker_class,
            "--threads", str(threads), "--backlog", "2048", "--timeout", "60", "--graceful-timeout", "5",
            "--keep-alive", "5", "--log-level", "warning", "--error-logfile", "-",
        ]  # fmt: skip
        self.description = f"gunicorn {workers} × {worker_class}" + (
            f" ({threads} threads)" if worker_class == "gthread" else ""
        )
        self.log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in stop())
        self.log.write(f"\n=== {dt.datetime.now().isoformat(timespec='seconds')} {self.description}\n")
        self.log.flush()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                sys.exit(f"the server stopped at start-up, see {self.log_path.relative_to(ROOT)}")
            try:
                status, _answer = post(self.port, BARE_PATH, probe, None, timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                sys.exit(f"the server did not answer within 90 s, see {self.log_path.relative_to(ROOT)}")
            time.sleep(0.3)

    def pids(self) -> list[int]:
        """The master and its workers (the process group it leads)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getpgid(int(entry.name)) == self.process.pid:
                        found.append(int(entry.name))
                except (ProcessLookupError, PermissionError):
                    continue
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


# ---------------------------------------------------------------------------------------------- measuring


def cpu_snapshot(server: Server, db_name: str) -> dict[str, float]:
    """CPU seconds so far of the server's processes, this database's backends, postgres's shared processes."""
    tick = os.sysconf("SC_CLK_TCK")
    own = set(server.pids())
    totals = collections.Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        key = f"{entry.name}:{fields[19]}"  # pid and start time: a reused pid is another process
        if int(entry.name) in own:
            totals[f"server|{key}"] = seconds
        elif cmdline.startswith("postgres:") and f" {db_name} " in cmdline:
            totals[f"postgres|{key}"] = seconds
        elif cmdline.startswith("postgres:") and any(
            name in cmdline for name in ("walwriter", "checkpointer", "background writer", "autovacuum")
        ):
            totals[f"postgres_shared|{key}"] = seconds
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    totals["machine_busy|"] = (sum(values[:8]) - idle) / tick
    totals["wrk|"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
    )
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used during the run, per group (a process absent before started during the run)."""
    groups = collections.Counter()
    for key, value in after.items():
        group = key.split("|", 1)[0]
        groups[group] += value - before.get(key, 0.0)
    cores = {group: max(0.0, value) / seconds for group, value in groups.items()}
    cores["other"] = max(
        0.0, cores.get("machine_busy", 0.0) - sum(v for k, v in cores.items() if k != "machine_busy")
    )
    return cores


def run_wrk(port: int, path: str, token: str | None, bodies: Path, duration: int, connections: int,
            threads: int, start: float) -> dict:  # fmt: skip
    env = {
        **os.environ,
        "BENCH_BODIES": str(bodies),
        "BENCH_PATH": path,
        "BENCH_TOKEN": token or "",
        "BENCH_START": str(start),
        "BENCH_THREADS": str(threads),
    }
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    command += ["-s", str(LUA), f"http://127.0.0.1:{port}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 60)
    marker = [line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if result.returncode or not marker:
        sys.exit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    figures = json.loads(marker[-1].split(" ", 1)[1])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    figures["errors"] = figures["non2xx"] + sum(
        figures[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    figures["raw"] = result.stdout
    return figures


def machine_busy(seconds: float = 3.0) -> float:
    """Cores busy on the whole machine over the next few seconds."""

    def busy_and_total():
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:8]]
        return sum(values) - values[3] - values[4], sum(values)

    busy0, total0 = busy_and_total()
    time.sleep(seconds)
    busy1, total1 = busy_and_total()
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def wait_for_quiet(args) -> None:
    """On a shared machine: wait (at most --quiet-wait seconds) until nothing else keeps the CPUs busy."""
    if not args.quiet_wait:
        return
    deadline = time.monotonic() + args.quiet_wait
    while (busy := machine_busy()) > QUIET_CORES:
        if time.monotonic() > deadline:
            say(f"  the machine is still busy ({busy:.2f} cores used by other processes): measuring anyway")
            return
        time.sleep(2)


def measure(server: Server, label: str, path: str, token: str | None, bodies: Path, args, start: float,
            duration: int | None = None) -> dict:  # fmt: skip
    duration = duration or args.duration
    wait_for_quiet(args)
    say(f"{label}: wrk {args.connections} connections, {duration} s …")
    before = cpu_snapshot(server, args.db_name)
    started = time.monotonic()
    figures = run_wrk(server.port, path, token, bodies, duration, args.connections, args.wrk_threads, start)
    figures["cpu"] = cpu_used(before, cpu_snapshot(server, args.db_name), time.monotonic() - started)
    figures["label"], figures["path"] = label, path
    say(
        f"  {figures['rps']:,.0f} requests/s, p50 {figures['p50'] / 1000:.1f} ms, p99 {figures['p99'] / 1000:.1f} ms,"
        f" errors {figures['errors']}"
    )
    if figures["cpu"]["other"] > QUIET_CORES:
        say(f"  warning: other processes used {figures['cpu']['other']:.2f} cores during this run")
    return figures


def sanity_check(port: int, token: str, bodies: Path, expected: list[str], count: int = 400) -> dict:
    """Before the load: the expected hits are hits on both endpoints and every miss is a no_match."""
    lines = bodies.read_text().splitlines()[:count]
    report = {"checked": len(lines), "problems": []}
    for path, auth in ((FULL_PATH, token), (BARE_PATH, None)):
        outcomes = collections.Counter()
        for body, kind in zip(lines, expected, strict=False):
            status, answer = post(port, path, body, auth)
            if status != 200:
                report["problems"].append(f"{path}: HTTP {status} for a {kind}")
                continue
            matched = answer.get("outcome") != "no_match"
            outcomes[(kind.split(":")[0], matched)] += 1
            if kind.startswith("miss") and matched:
                report["problems"].append(f"{path}: a {kind} matched")
        hits = outcomes[("hit", True)] + outcomes[("hit", False)]
        report[path] = {"hits_matched": outcomes[("hit", True)], "hits": hits}
        if hits and outcomes[("hit", True)] < 0.98 * hits:
            report["problems"].append(f"{path}: only {outcomes[('hit', True)]}/{hits} expected hits matched")
    return report


# ---------------------------------------------------------------------------------------------- profiling


def profile_full(
    server: Server, token: str | None, bodies: Path, args, path: str = FULL_PATH, idle: bool = True
) -> dict | None:
    """py-spy on the workers under load: wall time (``idle``: waits on PostgreSQL included) or CPU only."""
    py_spy = VENV / "bin" / "py-spy"
    if not py_spy.exists():
        say("py-spy is not installed (.venv/bin/pip install py-spy): no profile")
        return None
    name = "full" if path == FULL_PATH else "bare"
    raw = OUT / ("rights_check_profile.txt" if idle else f"rights_check_profile_cpu_{name}.txt")
    seconds = min(args.duration, 20)
    command = [
        str(py_spy), "record", "--pid", str(server.process.pid), "--subprocesses", *(["--idle"] if idle else []),
        "--rate", "200", "--duration", str(seconds), "--format", "raw", "--output", str(raw), "--nonblocking",
    ]  # fmt: skip
    say(f"profiling the {name} endpoint with py-spy for {seconds} s ({'wall' if idle else 'CPU'}) …")
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    figures = run_wrk(server.port, path, token, bodies, seconds, args.connections, args.wrk_threads, 0.7)
    try:
        _out, err = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        _out, err = spy.communicate()
    if not raw.exists():
        say(f"py-spy failed: {err.strip()[-500:]}")
        return None
    summary = summarise_profile(raw)
    summary["rps_while_profiling"] = figures["rps"]
    return summary


PROFILE_PARTS = (
    # label, a frame that starts the part (substring of py-spy's "function (file:line)"); parts overlap
    ("middleware stack, outside the API view", None),
    (
        "token authentication (TokenAuth → authenticate_token)",
        "authenticate_token (rempart/accounts/tokens.py",
    ),
    ("card data validation (read_card_data)", "read_card_data (rempart/rights/cards.py"),
    ("gate: lookup (find: insurer, contract, family)", "find (rempart/gate/core.py"),
    ("gate: guarantee and decision", "guarantee_for (rempart/registry/models.py"),
    ("gate: ledger append (chain.append)", "append (rempart/ledger/chain.py"),
    ("gate: transaction commit", "__exit__ (django/db/transaction.py"),
    ("response schema and JSON (ninja)", "create_response (ninja/main.py"),
    ("Django ORM: building SQL (compiler.as_sql)", "as_sql (django/db/models/sql/compiler.py"),
    ("Django ORM: making model instances (from_db)", "from_db (django/db/models/base.py"),
    ("waiting for PostgreSQL (any psycopg call)", "psycopg/"),
)
VIEW_FRAME = "Operation.run (ninja/operation.py"
WSGI_FRAME = "__call__ (django/core/handlers/wsgi.py"


def _function(frame: str) -> str:
    """py-spy's "function (path/file.py:line)" without the line number."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})"


def summarise_profile(raw: Path) -> dict:
    """Shares of the request time (samples under Django's WSGI handler) by part, and the top functions."""
    in_request = 0
    parts = collections.Counter()
    inclusive = collections.Counter()
    self_time = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        start = next((i for i, frame in enumerate(frames) if WSGI_FRAME in frame), None)
        if start is None:
            continue  # the worker waiting for a connection, gunicorn's own loop
        count = int(count)
        frames = frames[start + 1 :]
        in_request += count
        for label, marker in PROFILE_PARTS:
            if marker is None:
                if not any(VIEW_FRAME in frame for frame in frames):
                    parts[label] += count
            elif any(marker in frame for frame in frames):
                parts[label] += count
        for name in {_function(frame) for frame in frames}:
            inclusive[name] += count
        if frames:
            self_time[_function(frames[-1])] += count
    if not in_request:
        return {
            "samples": 0,
            "parts": {},
            "top_inclusive": [],
            "top_self": [],
            "raw": str(raw.relative_to(ROOT)),
        }
    return {
        "samples": in_request,
        "parts": {label: parts[label] / in_request for label, _marker in PROFILE_PARTS},
        "top_inclusive": [
            (name, n / in_request) for name, n in inclusive.most_common(60) if n < 0.9 * in_request
        ][:30],
        "top_self": [(name, n / in_request) for name, n in self_time.most_common(20)],
        "raw": str(raw.relative_to(ROOT)),
    }


# ---------------------------------------------------------------------------------------------- report


def _ms(us: float) -> str:
    return f"{us / 1000:.1f} ms"


def results_table(results: list[dict], markdown: bool) -> str:
    header = ["endpoint", "requests/s", "p50", "p95", "p99", "errors (non-2xx)", "no_match share"]
    rows = [
        [
            f"{r['label']} ({r['path']})",
            f"{r['rps']:,.0f}",
            _ms(r["p50"]),
            _ms(r["p95"]),
            _ms(r["p99"]),
            f"{r['errors']:,}",
            f"{r['no_match'] / max(1, r['answers']):.0%}",
        ]
        for r in results
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def fmt(line):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line))

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(row) for row in rows)])


def verdicts(full: dict, bare: dict) -> list[str]:
    ratio = full["rps"] / bare["rps"] if bare["rps"] else 0.0
    checks = [
        (f"throughput ≥ {TARGET_RPS:,} checks/s", full["rps"] >= TARGET_RPS, f"{full['rps']:,.0f}/s"),
        (f"p99 ≤ {TARGET_P99_MS} ms", full["p99"] / 1000 <= TARGET_P99_MS, _ms(full["p99"])),
        (f"full/bare ≥ {TARGET_RATIO}", ratio >= TARGET_RATIO, f"{ratio:.2f}"),
    ]
    return [f"{name}: {value} — {'met' if ok else 'MISSED'}" for name, ok, value in checks]


def cpu_table(results: list[dict]) -> str:
    groups = [("server", "gunicorn"), ("postgres", "PostgreSQL backends"), ("postgres_shared", "PostgreSQL shared"),
              ("wrk", "wrk"), ("other", "other processes"), ("machine_busy", "whole machine")]  # fmt: skip
    lines = [
        "| endpoint | " + " | ".join(label for _k, label in groups) + " | gunicorn CPU ms per request "
        "| PostgreSQL CPU ms per request |",
        "|---|" + "---:|" * (len(groups) + 2),
    ]
    for r in results:
        cpu, rps = r["cpu"], max(r["rps"], 1e-9)
        per_request = cpu.get("postgres", 0) + cpu.get("postgres_shared", 0)
        lines.append(
            f"| {r['label']} | "
            + " | ".join(f"{cpu.get(k, 0):.2f}" for k, _l in groups)
            + f" | {cpu.get('server', 0) * 1000 / rps:.2f} | {per_request * 1000 / rps:.2f} |"
        )
    return "\n".join(lines)


def profile_text(profile: dict) -> str:
    lines = [
        f"py-spy, {profile['samples']:,} samples inside Django's WSGI handler (idle waits on PostgreSQL included), "
        f"{profile['rps_while_profiling']:,.0f} requests/s while profiling; raw stacks: `{profile['raw']}`.",
        "",
        "| part of the request (inclusive) | share of request time |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {share:.1%} |" for label, share in profile["parts"].items()]
    lines += ["", "Top functions (inclusive):", "", "| function | share |", "|---|---:|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile["top_inclusive"]]
    lines += ["", "Top functions (self):", "", "| function | share |", "|---|---:|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in profile["top_self"]]
    return "\n".join(lines)


def write_report(args, meta, server_description, results, sanity, profile, command, rounds) -> Path:
    full, bare = results
    ratio = full["rps"] / bare["rps"] if bare["rps"] else 0.0
    text = [
        "# Rights-check load benchmark",
        "",
        f"`{command}` — {dt.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, "
        f"{os.cpu_count()} CPU, Python {platform.python_version()}",
        "",
        f"- data: `{args.db_name}`, {int(meta['beneficiaries']):,} beneficiaries generated by `rempart generate "
        f"--seed {meta['seed']}` on {meta['day']}",
        f"- server: {server_description}, `rempart.bench_settings` (REMPART_ENV=production, DEBUG off, "
        "logging at WARNING), PostgreSQL on 127.0.0.1",
        f"- load: wrk, {args.connections} connections, {args.wrk_threads} threads, {args.duration} s per endpoint "
        f"after a {args.warmup} s warm-up of each; {HIT_SHARE:.0%} hits / {1 - HIT_SHARE:.0%} misses "
        f"({', '.join(MISS_KINDS)}), bodies from `{Path(args.bodies_path).name}`",
        f"- sanity check before the load: {sanity['checked']} bodies on each endpoint, "
        + ("no problem" if not sanity["problems"] else "; ".join(sanity["problems"][:5])),
        "",
        results_table(results, markdown=True),
        "",
        f"Full / bare throughput: **{ratio:.2f}**",
        "",
        *(f"- {line}" for line in verdicts(full, bare)),
        "",
        "CPU used during each run (cores; the machine has "
        f"{os.cpu_count()}; 'other processes' is whatever else ran on the machine):",
        "",
        cpu_table(results),
        "",
    ]
    if len(rounds) > 1:
        text += [
            f"All {len(rounds)} rounds (the table shows the one least disturbed by other processes):",
            "",
            "| round | full requests/s | full p99 | bare requests/s | bare p99 | full/bare | other processes (cores) |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n, (f, b) in enumerate(rounds, 1):
            other = (f["cpu"]["other"] + b["cpu"]["other"]) / 2
            text.append(
                f"| {n} | {f['rps']:,.0f} | {_ms(f['p99'])} | {b['rps']:,.0f} | {_ms(b['p99'])} "
                f"| {f['rps'] / b['rps']:.2f} | {other:.2f} |"
            )
        text.append("")
    if profile:
        text += ["## Profile of the full endpoint", "", profile_text(profile), ""]
    text += ["## wrk output", ""]
    for r in results:
        text += [f"### {r['label']}", "", "```", r["raw"].strip(), "```", ""]
    path = OUT / "rights_check.md"
    path.write_text("\n".join(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- main


SURVEILLANCE_MODES = ("off", "database", "redis")


def surveillance_env(env: dict[str, str], mode: str) -> dict[str, str]:
    """Surveillance off, or on with its counters in the database or in Redis (thresholds out of reach:
    the benchmark's one token would otherwise be throttled; what is measured is the cost of counting)."""
    if mode == "off":
        return {**env, "REMPART_SURVEILLANCE_ENABLED": "0"}
    return {
        **env,
        "REMPART_SURVEILLANCE_ENABLED": "1",
        "REMPART_SURVEILLANCE_STORE": mode,
        "REMPART_SURVEILLANCE_REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "REMPART_BENCH_SURVEILLANCE": "counting",
    }


def compare_surveillance(args, env, token, bodies, probe) -> None:
    """The full endpoint with surveillance off, on (database counters) and on (Redis counters), in one run."""
    rows = []
    for mode in args.compare_modes.split(","):
        server = Server(surveillance_env(env, mode), args.workers, args.worker_class, args.threads, probe)
        try:
            run_wrk(
                server.port, FULL_PATH, token, bodies, args.warmup, args.connections, args.wrk_threads, 0.9
            )
            full = measure(server, f"surveillance {mode}", FULL_PATH, token, bodies, args, 0.0,
                           duration=args.compare_duration)  # fmt: skip
        finally:
            server.stop()
        rows.append((mode, full))
    offs = [full["rps"] for mode, full in rows if mode == "off"]
    base = statistics.median(offs) if offs else rows[0][1]["rps"]
    lines = [
        f"Surveillance cost, full endpoint, {args.compare_duration} s each, {args.connections} connections, "
        f"{args.workers} workers ({int(args.beneficiaries):,} beneficiaries):",
        "",
        "| surveillance | requests/s | p50 | p99 | cost vs off (median of the off runs) | errors | other processes (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, full in rows:
        cost = 1 - full["rps"] / base if base else 0.0
        lines.append(
            f"| {mode} | {full['rps']:,.0f} | {_ms(full['p50'])} | {_ms(full['p99'])} | {cost:+.0%} "
            f"| {full['errors']} | {full['cpu']['other']:.2f} |"
        )
    text = "\n".join(lines)
    (OUT / "rights_check_surveillance.md").write_text(text + "\n", encoding="utf-8")
    print("\n" + text + "\n(written to bench/out/rights_check_surveillance.md)\n", flush=True)


def compare_workers(args, env, token, bodies, probe) -> None:
    rows = []
    for spec in args.compare_workers.split(","):
        workers, _, threads = spec.partition("x")
        worker_class = "gthread" if threads else args.worker_class
        server = Server(env, int(workers), worker_class, int(threads or args.threads), probe)
        try:
            run_wrk(
                server.port, FULL_PATH, token, bodies, args.warmup, args.connections, args.wrk_threads, 0.9
            )
            full = measure(server, f"{server.description}", FULL_PATH, token, bodies, args, 0.0,
                           duration=args.compare_duration)  # fmt: skip
            bare = measure(server, f"{server.description}, bare", BARE_PATH, None, bodies, args, 0.5,
                           duration=args.compare_duration)  # fmt: skip
        finally:
            server.stop()
        rows.append((server.description, full, bare))
    lines = [
        f"Worker counts, {args.compare_duration} s per endpoint, {args.connections} connections "
        f"({int(args.beneficiaries):,} beneficiaries):",
        "",
        "| server | full requests/s | full p99 | full CPU ms per request (gunicorn + PostgreSQL) "
        "| bare requests/s | bare p99 | full/bare | errors (full + bare) | other processes (cores) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for description, full, bare in rows:
        other = (full["cpu"]["other"] + bare["cpu"]["other"]) / 2
        server_ms = full["cpu"].get("server", 0) * 1000 / max(full["rps"], 1e-9)
        pg_ms = (
            (full["cpu"].get("postgres", 0) + full["cpu"].get("postgres_shared", 0))
            * 1000
            / max(full["rps"], 1e-9)
        )
        lines.append(
            f"| {description} | {full['rps']:,.0f} | {_ms(full['p99'])} | {server_ms:.1f} + {pg_ms:.1f} "
            f"| {bare['rps']:,.0f} | {_ms(bare['p99'])} | {full['rps'] / bare['rps']:.2f} "
            f"| {full['errors'] + bare['errors']:,} | {other:.2f} |"
        )
    text = "\n".join(lines)
    (OUT / "rights_check_workers.md").write_text(text + "\n", encoding="utf-8")
    print("\n" + text + "\n(written to bench/out/rights_check_workers.md)\n", flush=True)


def parse(argv):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_bodies", "_token"):  # internal: the child processes
        step = argparse.ArgumentParser(prog=f"bench/rights_check.py {argv[0]}")
        step.add_argument("--out", type=Path, required=True)
        if argv[0] == "_bodies":
            step.add_argument("--beneficiaries", type=int, required=True)
            step.add_argument("--seed", type=int, required=True)
            step.add_argument("--day", required=True)
            step.add_argument("--bodies", type=int, required=True)
        args = step.parse_args(argv[1:])
        args.step = argv[0]
        return args
    parser = argparse.ArgumentParser(prog="bench/rights_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--beneficiaries", type=int, default=20_000_000, help="size of the registry (20 M)")
    parser.add_argument("--seed", type=int, default=1, help="rempart generate --seed (1)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per endpoint (30)")
    parser.add_argument(
        "--warmup", type=int, default=5, help="seconds of unmeasured load per endpoint first (5)"
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help=f"gunicorn workers ({DEFAULT_WORKERS})"
    )
    parser.add_argument("--worker-class", default=DEFAULT_WORKER_CLASS, choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument(
        "--bodies", type=int, default=100_000, help="request bodies to cycle through (100,000)"
    )
    parser.add_argument("--db-name", default=DB_NAME, help=f"benchmark database ({DB_NAME})")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the benchmark database")
    parser.add_argument(
        "--data-only", action="store_true", help="build the database and the bodies, then stop"
    )
    parser.add_argument(
        "--compare-workers",
        metavar="2,3,4",
        help="first measure these worker counts (NxT: N gthread workers of T threads)",
    )
    parser.add_argument(
        "--compare-duration", type=int, default=10, help="seconds per endpoint when comparing (10)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="full then bare, N times; the least disturbed round is reported"
    )
    parser.add_argument(
        "--quiet-wait", type=int, default=0, metavar="SECONDS",
        help="before each run, wait up to this long for other processes to leave the CPUs (shared machines)",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="py-spy the full endpoint after the runs")
    parser.add_argument(
        "--profile-cpu", action="store_true",
        help="py-spy both endpoints on the CPU only (no waits) after the runs: bench/out/rights_check_profile_cpu_*",
    )  # fmt: skip
    parser.add_argument(
        "--surveillance", choices=SURVEILLANCE_MODES, default="database",
        help="surveillance for the main runs: off, or on with database (default) or Redis counters",
    )  # fmt: skip
    parser.add_argument(
        "--compare-modes",
        default=",".join(SURVEILLANCE_MODES),
        help="--compare-surveillance: the modes, in order; repeat and interleave them to average out drift",
    )
    parser.add_argument(
        "--compare-surveillance", action="store_true",
        help="first measure the full endpoint with surveillance off, database and Redis (issue 7's cost)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.step = None
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.step == "_bodies":
        build_bodies(args)
        return
    if args.step == "_token":
        create_token(args)
        return
    if not shutil.which("wrk") and not args.data_only:
        sys.exit("wrk is missing: apt-get install -y wrk")
    command = "python3 bench/rights_check.py " + " ".join(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    secrets = bench_secrets()
    env = base_env(secrets, args.db_name)
    meta = ensure_data(args, secrets, env)
    bodies, expected = ensure_bodies(args, env, meta)
    args.bodies_path = str(bodies)
    if args.data_only:
        say("data ready")
        return
    token = new_token(env)
    probe = bodies.read_text().split("\n", 1)[0]
    if (
        args.compare_workers
    ):  # with the surveillance of the main runs (real thresholds would suspend the token)
        compare_workers(args, surveillance_env(env, args.surveillance), token, bodies, probe)
    if args.compare_surveillance:
        compare_surveillance(args, env, token, bodies, probe)
    env = surveillance_env(env, args.surveillance)
    server = Server(env, args.workers, args.worker_class, args.threads, probe)
    profile = None
    try:
        say(f"server: {server.description} on 127.0.0.1:{server.port}")
        sanity = sanity_check(server.port, token, bodies, expected)
        if sanity["problems"]:
            # A run whose answers are refusals measures nothing: stop rather than print misleading figures.
            sys.exit("sanity check problems: " + "; ".join(sanity["problems"][:10]))
        else:
            say(f"sanity check: {sanity['checked']} bodies on each endpoint, hits matched, misses did not")
        for path, auth in ((FULL_PATH, token), (BARE_PATH, None)):
            run_wrk(server.port, path, auth, bodies, args.warmup, args.connections, args.wrk_threads, 0.9)
        rounds = []
        for n in range(args.rounds):
            suffix = f" (round {n + 1}/{args.rounds})" if args.rounds > 1 else ""
            full = measure(server, "full", FULL_PATH, token, bodies, args, (0.1 * n) % 0.4)
            bare = measure(server, "bare lookup", BARE_PATH, None, bodies, args, 0.45 + (0.1 * n) % 0.4)
            say(f"  full/bare{suffix}: {full['rps'] / bare['rps']:.2f}")
            rounds.append((full, bare))
        # The least disturbed round (other processes' CPU during both runs) is the one reported.
        full, bare = min(rounds, key=lambda pair: pair[0]["cpu"]["other"] + pair[1]["cpu"]["other"])
        if args.profile:
            profile = profile_full(server, token, bodies, args)
        if args.profile_cpu:  # CPU-only stacks of both endpoints, for comparing what each spends on the CPU
            profile_full(server, token, bodies, args, idle=False)
            profile_full(server, None, bodies, args, path=BARE_PATH, idle=False)
    finally:
        server.stop()
    results = [full, bare]
    print()
    print(results_table(results, markdown=False))
    print(f"\nfull / bare throughput: {full['rps'] / bare['rps']:.2f}")
    for line in verdicts(full, bare):
        print(f"  {line}")
    if profile:
        print("\nwhere the full endpoint's request time goes (py-spy):")
        for label, share in profile["parts"].items():
            print(f"  {share:6.1%}  {label}")
    path = write_report(args, meta, server.description, results, sanity, profile, command, rounds)
    print(f"\n(written to {path.relative_to(ROOT)})")


if __name__ == "__main__":
    ensure_venv()
    main()
