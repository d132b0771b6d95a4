#!/usr/bin/env python3
"""Incident-scope benchmark (docs/benchmarks.md "Incident scopes").

    python3 bench/scope.py [--rows 100000000] [--db-name rempart_bench_scope] [--rebuild] [--runs 5]
                           [--jobs 2] [--verify-rows 1000000] [--data-only] [--nice 0]

Target (incident issue): a scope over 100 M ledger rows answers in ≤ 2 s on PostgreSQL on the 2-core VM, with
bounded memory at any result size. Steps:

1. Data: a PostgreSQL database ``rempart_bench_scope`` (kept between runs and reused when it holds the asked
   number of rows of the same generator; ``--rebuild`` starts again): ``rempart migrate`` (production mode, the
   secrets of bench/out/var/secrets.env), the monthly partitions for 24 months back
   (``rempart.ledger.partitions.ensure_partitions``), then N ledger rows generated *server-side*
   (``INSERT … SELECT … FROM generate_series``, one partition after the other in batches, ``--jobs`` sessions
   at once). The ledger's indexes and primary key are dropped before the load and rebuilt afterwards, partition by
   partition (then attached to the parent's indexes by re-running their definitions), after a ``VACUUM`` of
   each partition; then ``ANALYZE``. Distribution: 24 months, rows spread evenly in time and in time order (as
   appends are); 20,000 professional accounts (portal) in 8,000 organisations and 2,000 API tokens (35 % of
   the rows), activity skewed (busiest account ~90 k rows, median ~2.7 k); each organisation has a home /24
   (2 organisations a /24, except 400 organisations behind 8 shared /24s, 50 each), each account 1–3 usual
   addresses in it, 3 % of the rows from anywhere else; 10 % misses (no beneficiary, presented hash set);
   beneficiaries out of 20 M, 80 % from the organisation's own clientele of 2,500 people, 20 % from anyone;
   60 insurers (skewed sizes); fields as the gate writes them. The hash columns are filler (a SHA-256 of the
   id, linked per chain; (chain, seq) unique per chain): this data measures scope queries, not
   ``ledger verify``.
2. Scopes, each ``--runs`` times (the first run reported apart, then the median of the others):
   (a) the busiest account × 30 days, (b) 50 accounts × 6 months, (c) one ordinary /24 × 1 year,
   (c') the /24 shared by 50 organisations × 1 year, (d) the busiest organisation × 1 year. For each:
   ``summarise()`` and ``insert_entries()`` (the freeze, into a scratch incident and scope created through the
   ORM and rolled back), rows matched, people, and the peak memory of the measuring process (``getrusage``
   maxrss); ``EXPLAIN (ANALYZE, BUFFERS)`` of each query once, saved to bench/out/scope_plans.txt.
3. ``chain.verify(since)`` speed on ``--verify-rows`` rows with real hashes (computed as ``chain.append`` does,
   loaded with COPY into a separate database, dropped afterwards): attaching a scope verifies its window first.

Prints a table and writes bench/out/scope.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import rights_check  # noqa: E402 (bench/ is not a package)
from rights_check import (  # noqa: E402
    OUT,
    PG_ADMIN_URL,
    base_env,
    bench_secrets,
    pg_connect,
    pg_url,
    read_meta,
    rempart_cli,
    run,
    say,
    setup_django,
    write_meta,
)

DB_NAME = "rempart_bench_scope"
TARGET_SECONDS = 2.0
MONTHS = 24

# The data's shape (see the module docstring); the scope subjects below are derived from the same numbers.
USERS = 20_000
ORGS = 8_000
TOKENS = 2_000
INSURERS = 60
BENEFICIARIES = 20_000_000
CLIENTELE = 2_500  # an organisation's own patients (ORGS × CLIENTELE = BENEFICIARIES)
API_SHARE = 0.35
MISS_SHARE = 0.10
COVERED_SHARE = 0.85
ROAMING_SHARE = 0.03
SKEW = 1.5  # actor rank = floor(N × u^SKEW): rank 0 is the busiest
PERMUTE = 7919  # a prime: rank × PERMUTE mod N spreads the busy accounts over the ids
SHARED_BLOCKS = 8  # /24s shared by the organisations whose id is a multiple of 20 (50 of them each)
PLAIN_BLOCKS = 4_000
DOMAINS = (
    ("PHAR", 0.55), ("MEDE", 0.15), ("LABO", 0.10), ("RADL", 0.05), ("AUXI", 0.05), ("DENT", 0.04),
    ("OPTI", 0.03), ("AUDI", 0.01), ("HOSP", 0.01), ("TRAN", 0.005), ("SAGE", 0.005),
)  # fmt: skip
COLUMNS = (
    "id, created_at, chain, seq, prev_hash, row_hash, reference, channel, purpose, organisation_id, user_id, "
    "token_id, session_ref, ip_address, insurer_id, beneficiary_id, presented_hash, domain, care_date, outcome, fields"
)


def _u(k: int) -> str:
    """A uniform number in [0, 1) from the row id (deterministic, independent for each k)."""
    return f"((hashint8extended(g, {k}) & 4503599627370495)::float8 / 4503599627370496)"


def _domain_case() -> str:
    parts, total = [], 0.0
    for code, share in DOMAINS[:-1]:
        total += share
        parts.append(f"WHEN u_dom < {total:.4f} THEN '{code}'")
    return f"CASE {' '.join(parts)} ELSE '{DOMAINS[-1][0]}' END"


def _fields_case() -> str:
    covered = " ".join(
        f"""WHEN '{code}' THEN '["identity_confirmed","coverage:{code}","tp_terms:{code}","valid_until"]'::jsonb"""
        for code, _share in DOMAINS
    )
    plain = " ".join(
        f"""WHEN '{code}' THEN '["identity_confirmed","coverage:{code}"]'::jsonb"""
        for code, _share in DOMAINS
    )
    return (
        f"CASE WHEN miss THEN '[]'::jsonb WHEN u_out < {COVERED_SHARE} THEN CASE dom {covered} END "
        f"ELSE CASE dom {plain} END END"
    )


# One batch of one partition: ids lo..hi, the partition's rows spaced evenly from its start (%(ms)s) by
# %(step)s seconds. Every value is a function of the id: any batch can be (re)built alone, in any order.
GENERATE = f"""
INSERT INTO {{partition}} ({COLUMNS})
SELECT id, created_at, ((id - 1) % 16)::smallint, (id - 1) / 16 + 1,
       CASE WHEN id > 16 THEN sha256(int8send(id - 16)) ELSE '\\x{"00" * 32}'::bytea END, sha256(int8send(id)),
       'RC-' || substr(h, 1, 4) || '-' || substr(h, 5, 4) || '-' || substr(h, 9, 4),
       CASE WHEN api THEN 'api' ELSE 'portal' END, 'rights_check', org, usr, tok,
       CASE WHEN api THEN 'token:' || lpad(to_hex(tok * 40503 % 4294967296), 8, '0')
            ELSE md5(usr::text || ':' || (id / 200000)::text) END,
       CASE WHEN u_roam < {ROAMING_SHARE} THEN '176.128.0.0'::inet + floor(u_roam / {ROAMING_SHARE} * 4194304)::bigint
            ELSE '90.0.0.0'::inet + (block * 256 + 1 + (hashint8extended(akey * 4 + floor(u_addr * naddr)::bigint, 10)
                                                        & 1023) % 254) END,
       CASE WHEN NOT miss THEN 1 + floor({INSURERS} * power((hashint8extended(ben, 11) & 1048575)::float8 / 1048576, 2))::int
            WHEN u_out < 0.75 THEN 1 + floor({INSURERS} * power(u_ben, 2))::int END,
       ben, CASE WHEN miss THEN decode(md5(id::text), 'hex') END, dom,
       (created_at AT TIME ZONE 'Europe/Paris')::date,
       CASE WHEN miss THEN 'no_match' WHEN u_out < {COVERED_SHARE} THEN 'covered' ELSE 'not_covered' END,
       {_fields_case()}
FROM (
    SELECT d.*, {_domain_case()} AS dom,
           CASE WHEN org % 20 = 0 THEN {PLAIN_BLOCKS} + (org / 20) % {SHARED_BLOCKS} ELSE org * 37 % {PLAIN_BLOCKS} END AS block,
           CASE WHEN api THEN 1000000 + tok ELSE usr END AS akey,
           CASE WHEN api THEN 1 ELSE 1 + usr % 3 END AS naddr,
           CASE WHEN miss THEN NULL
                WHEN u_ben < 0.8 THEN ((org - 1) * {CLIENTELE} + floor(power(u_ben / 0.8, 2) * {CLIENTELE})::bigint)
                                      * {PERMUTE} % {BENEFICIARIES} + 1
                ELSE floor((u_ben - 0.8) / 0.2 * {BENEFICIARIES})::bigint + 1 END AS ben
    FROM (
        SELECT c.*, CASE WHEN api THEN (tok - 1) * 4 % {ORGS} + 1 ELSE (usr - 1) % {ORGS} + 1 END AS org
        FROM (
            SELECT b.*, CASE WHEN NOT api THEN floor(power(u_actor, {SKEW}) * {USERS})::bigint * {PERMUTE} % {USERS} + 1 END AS usr,
                        CASE WHEN api THEN floor(power(u_actor, {SKEW}) * {TOKENS})::bigint * {PERMUTE} % {TOKENS} + 1 END AS tok
            FROM (
                SELECT g AS id, %(ms)s::timestamptz + make_interval(secs => ((g - %(first)s) + 0.5) * %(step)s) AS created_at,
                       {_u(1)} < {API_SHARE} AS api, {_u(2)} AS u_actor, {_u(3)} < {MISS_SHARE} AS miss,
                       {_u(4)} AS u_ben, {_u(5)} AS u_dom, {_u(6)} AS u_addr, {_u(7)} AS u_out, {_u(8)} AS u_roam,
                       upper(lpad(to_hex(hashint8extended(g, 9)), 16, '0')) AS h
                FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
            ) b
        ) c
    ) d
) e
"""
GENERATE = re.sub(r"%(?!\()", "%%", GENERATE)  # the modulo operators, past psycopg's placeholders
GENERATOR_VERSION = hashlib.sha256(GENERATE.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- scope subjects


def user_of_rank(rank: int) -> int:
    return rank * PERMUTE % USERS + 1


def org_of_user(user: int) -> int:
    return (user - 1) % ORGS + 1


def block_network(block: int) -> str:
    base = (90 << 24) + block * 256
    return f"{base >> 24}.{(base >> 16) & 255}.{(base >> 8) & 255}.0/24"


def org_block(org: int) -> int:
    return PLAIN_BLOCKS + (org // 20) % SHARED_BLOCKS if org % 20 == 0 else org * 37 % PLAIN_BLOCKS


def scope_subjects(end: dt.datetime) -> list[dict]:
    """The typical scopes, as ScopeCriteria keyword arguments (JSON) with a label."""
    busiest_user = user_of_rank(0)
    busiest_org = org_of_user(busiest_user)  # also owns the busiest API token (token 1 → organisation 1)
    rng = random.Random(50)
    fifty = sorted(user_of_rank(rank) for rank in rng.sample(range(USERS), 50))
    ordinary = block_network(org_block(busiest_org))
    shared = block_network(PLAIN_BLOCKS)

    def window(days: int) -> dict:
        return {"since": (end - dt.timedelta(days=days)).isoformat(), "until": end.isoformat()}

    return [
        {"key": "a", "label": "(a) busiest account × 30 days", "criteria": {"user_ids": [busiest_user], **window(30)}},
        {"key": "b", "label": "(b) 50 accounts × 6 months", "criteria": {"user_ids": fifty, **window(182)}},
        {"key": "c", "label": f"(c) one /24 ({ordinary}, the busiest org's) × 1 year", "criteria": {"networks": [ordinary], **window(365)}},
        {"key": "c2", "label": f"(c') shared /24 ({shared}, 50 orgs) × 1 year",
         "criteria": {"networks": [shared], **window(365)}},
        {"key": "d", "label": "(d) busiest organisation × 1 year",
         "criteria": {"organisation_ids": [busiest_org], **window(365)}},
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------- data


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def plan_partitions(rows: int, end: dt.datetime) -> tuple[dt.datetime, list[dict]]:
    """The 24 monthly windows ending at ``end`` (the last one partial) and each one's id range."""
    utc = dt.UTC
    first = add_months(month_start(end.date()), -(MONTHS - 1))
    start = dt.datetime.combine(first, dt.time(), utc)
    total = (end - start).total_seconds()
    months, acc, last_id = [], 0.0, 0
    for n in range(MONTHS):
        lo = dt.datetime.combine(add_months(first, n), dt.time(), utc)
        hi = min(dt.datetime.combine(add_months(first, n + 1), dt.time(), utc), end)
        acc += (hi - lo).total_seconds()
        upto = round(rows * acc / total)
        count = upto - last_id
        months.append(
            {"month": lo.date().isoformat(), "start": lo, "seconds": (hi - lo).total_seconds(),
             "first": last_id + 1, "last": upto, "rows": count}
        )  # fmt: skip
        last_id = upto
    return start, months


def partition_of(month: str) -> str:
    day = dt.date.fromisoformat(month)
    return f"ledger_disclosure_y{day.year}m{day.month:02d}"


def renice(conn, nice: int) -> None:
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, conn.info.backend_pid, nice)
        except OSError as exc:
            say(f"could not renice backend {conn.info.backend_pid}: {exc}")


class Sessions:
    """--jobs PostgreSQL sessions, one per worker thread, with the load's settings."""

    def __init__(self, url: str, jobs: int, nice: int) -> None:
        self.url, self.nice, self.local, self.all = url, nice, threading.local(), []
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=jobs)

    def conn(self):
        if getattr(self.local, "conn", None) is None:
            conn = pg_connect(self.url)
            conn.execute("SET synchronous_commit = off")
            conn.execute("SET maintenance_work_mem = '1GB'")
            conn.execute("SET max_parallel_maintenance_workers = 0")  # the --jobs sessions share the cores
            conn.execute("SET jit = off")
            renice(conn, self.nice)
            self.local.conn = conn
            with self.lock:
                self.all.append(conn)
        return self.local.conn

    def map(self, function, items, progress=None, weight=lambda item: 1):
        futures = {self.pool.submit(lambda item=item: function(self.conn(), item)): item for item in items}
        for future in as_completed(futures):
            future.result()
            if progress is not None:
                progress.update(weight(futures[future]))

    def close(self) -> None:
        self.pool.shutdown()
        for conn in self.all:
            conn.close()


def ledger_definitions(conn) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """The parent's index definitions (name, SQL) and its primary key (name, definition)."""
    indexes = conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = 'ledger_disclosure'::regclass AND NOT x.indisprimary ORDER BY i.relname"
    ).fetchall()
    pk = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'ledger_disclosure'::regclass AND contype = 'p'"
    ).fetchone()
    return indexes, pk


def partition_sql(definition: str, name: str, partition: str) -> str:
    sql = re.sub(
        r"^CREATE INDEX \S+ ON (ONLY )?\S+ ", f"CREATE INDEX {partition}_{name} ON {partition} ", definition
    )
    if sql == definition:
        raise SystemExit(f"unexpected index definition: {definition}")
    return sql


def free_bytes() -> int:
    with pg_connect(PG_ADMIN_URL) as conn:
        [data_dir] = conn.execute("SHOW data_directory").fetchone()
    return shutil.disk_usage(data_dir if os.path.exists(data_dir) else "/").free


def build_ledger(args, env: dict[str, str]) -> dict[str, str]:
    from tqdm import tqdm

    needed = args.rows * 600 + 3 * 10**9  # measured: ~590 bytes a row, heap and indexes; plus WAL
    if free_bytes() < needed:
        sys.exit(f"not enough disk: {args.rows:,} rows need about {needed / 1e9:.0f} GB free")
    with pg_connect(PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db_name}"')
    run(rempart_cli("migrate", "--verbosity", "0"), env)
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start, months = plan_partitions(args.rows, end)
    child("_partitions", "--since", start.date().isoformat(), env=env)
    write_meta(
        args.db_name, status="generating", rows=args.rows, generator=GENERATOR_VERSION, start=start.isoformat(),
        end=end.isoformat(), started_at=dt.datetime.now().isoformat(timespec="seconds"),
    )  # fmt: skip
    url = pg_url(args.db_name)
    timings = {}
    with pg_connect(url) as conn:
        indexes, pk = ledger_definitions(conn)
        for name, _sql in indexes:
            conn.execute(f"DROP INDEX {name}")
        if pk:
            conn.execute(f"ALTER TABLE ledger_disclosure DROP CONSTRAINT {pk[0]}")
        partitions = [
            name for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'ledger_disclosure'::regclass ORDER BY 1"
            ).fetchall()
        ]  # fmt: skip
    say(
        f"generating {args.rows:,} rows over {MONTHS} months ({start:%Y-%m-%d} → {end:%Y-%m-%d %H:%M} UTC), "
        f"{args.jobs} sessions, indexes dropped during the load"
    )
    batches = []
    for month in months:
        for lo in range(month["first"], month["last"] + 1, args.batch):
            hi = min(lo + args.batch - 1, month["last"])
            batches.append({**month, "lo": lo, "hi": hi})

    def insert(conn, batch) -> None:
        params = {
            "ms": batch["start"], "first": batch["first"], "step": batch["seconds"] / max(batch["rows"], 1),
            "lo": batch["lo"], "hi": batch["hi"],
        }  # fmt: skip
        conn.execute(GENERATE.replace("{partition}", partition_of(batch["month"])), params)

    sessions = Sessions(url, args.jobs, args.nice)
    try:
        started = time.monotonic()
        with tqdm(total=args.rows, unit=" rows", unit_scale=True, mininterval=5, file=sys.stdout) as bar:
            sessions.map(insert, batches, bar, weight=lambda b: b["hi"] - b["lo"] + 1)
        timings["insert"] = time.monotonic() - started
        say(
            f"inserted {args.rows:,} rows in {timings['insert'] / 60:.1f} min ({args.rows / timings['insert']:,.0f} rows/s)"
        )

        started = time.monotonic()
        with tqdm(total=len(partitions), unit=" partitions", mininterval=5, file=sys.stdout) as bar:
            sessions.map(lambda conn, p: conn.execute(f"VACUUM {p}"), partitions, bar)
        timings["vacuum"] = time.monotonic() - started
        say(f"vacuumed in {timings['vacuum'] / 60:.1f} min")

        started = time.monotonic()
        work = [(p, name, sql) for p in partitions for name, sql in indexes]
        if pk:
            work += [(p, "pkey", None) for p in partitions]

        def build(conn, item) -> None:
            partition, name, sql = item
            if sql is None:
                conn.execute(f"ALTER TABLE {partition} ADD PRIMARY KEY (id, created_at)")
            else:
                conn.execute(partition_sql(sql, name, partition))

        with tqdm(total=len(work), unit=" indexes", mininterval=5, file=sys.stdout) as bar:
            sessions.map(build, work, bar)
        with pg_connect(url) as conn:  # the parent's indexes: each attaches the partitions' matching indexes
            for _name, sql in indexes:
                conn.execute(sql.replace(" ON ONLY ", " ON ", 1))
            if pk:
                conn.execute(f"ALTER TABLE ledger_disclosure ADD CONSTRAINT {pk[0]} {pk[1]}")
            invalid = conn.execute(
                "SELECT string_agg(i.relname, ', ') FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = 'ledger_disclosure'::regclass AND NOT x.indisvalid"
            ).fetchone()[0]
            if invalid:
                sys.exit(f"indexes left invalid (a partition's index did not attach): {invalid}")
        timings["indexes"] = time.monotonic() - started
        say(f"built {len(work)} partition indexes in {timings['indexes'] / 60:.1f} min")
    finally:
        sessions.close()
    with pg_connect(url) as conn:
        renice(conn, args.nice)
        started = time.monotonic()
        conn.execute("ANALYZE ledger_disclosure")
        timings["analyze"] = time.monotonic() - started
        conn.execute("SELECT setval('ledger_disclosure_id_seq', %s)", [args.rows + 1])
        for chain_no in range(16):  # the heads of the filler chains (id = 16 × (seq − 1) + chain + 1)
            last = args.rows - ((args.rows - 1 - chain_no) % 16)
            if last >= 1:
                conn.execute(
                    "INSERT INTO ledger_chainhead (chain, seq, last_hash) VALUES (%s, %s, sha256(int8send(%s::bigint))) "
                    "ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, last_hash = EXCLUDED.last_hash",
                    [chain_no, (last - 1) // 16 + 1, last],
                )
        [count] = conn.execute("SELECT count(*) FROM ledger_disclosure_default").fetchone()
        if count:
            sys.exit(f"{count} rows fell into the default partition")
    sizes = ledger_sizes(url)
    write_meta(
        args.db_name, status="complete", insert_seconds=f"{timings['insert']:.0f}",
        vacuum_seconds=f"{timings['vacuum']:.0f}", index_seconds=f"{timings['indexes']:.0f}",
        analyze_seconds=f"{timings['analyze']:.0f}", sizes=json.dumps(sizes),
        load_jobs=args.jobs, load_batch=args.batch,
    )  # fmt: skip
    say(
        f"loaded in {sum(timings.values()) / 60:.1f} min; table {sizes['table'] / 1e9:.1f} GB + indexes "
        f"{sizes['indexes'] / 1e9:.1f} GB"
    )
    return read_meta(args.db_name)


def ledger_sizes(url: str) -> dict:
    with pg_connect(url) as conn:
        [table, indexes] = conn.execute(
            "SELECT sum(pg_table_size(c.oid)), sum(pg_indexes_size(c.oid)) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'ledger_disclosure'::regclass"
        ).fetchone()
        per_index = conn.execute(
            "SELECT p.relname, sum(pg_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_index x ON x.indexrelid = p.oid "
            "WHERE x.indrelid = 'ledger_disclosure'::regclass GROUP BY p.relname ORDER BY 2 DESC"
        ).fetchall()
    return {"table": int(table), "indexes": int(indexes), "per_index": {k: int(v) for k, v in per_index}}


def ensure_ledger(args, secrets, env) -> dict[str, str]:
    meta = read_meta(args.db_name)
    wanted = {"status": "complete", "rows": str(args.rows), "generator": GENERATOR_VERSION}
    if all(meta.get(k) == v for k, v in wanted.items()) and not args.rebuild:
        say(f"reusing {args.db_name}: {int(meta['rows']):,} rows generated on {meta['started_at'][:10]}")
        run(rempart_cli("migrate", "--verbosity", "0"), env)
        return meta
    if meta:
        say(f"{args.db_name} holds {meta.get('rows', '?')} rows ({meta.get('status', '?')}): rebuilding")
    return build_ledger(args, env)


# ---------------------------------------------------------------------------------------------- measuring (child)


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def backend_read_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def drop_caches() -> None:
    """Empty the OS page cache (root; the whole machine): the first run then reads from the disk.

    PostgreSQL's own shared_buffers (128 MB here) are not emptied: that needs a server restart."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        print(f"  could not drop the page cache: {exc}", flush=True)


def explain(cursor, sql: str, params) -> str:
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, SETTINGS) " + sql, params)
    return "\n".join(row[0] for row in cursor.fetchall())


def measure_scopes(args) -> None:
    """Child process: time summarise() and insert_entries() for each typical scope; write JSON and the plans."""
    setup_django()
    from django.db import connection, transaction
    from django.db.models import Count
    from django.utils import timezone

    from rempart.incidents.models import Incident, Scope
    from rempart.incidents.scope import (
        _INSERT_ENTRIES,
        ScopeCriteria,
        grouped_entries,
        insert_entries,
        ledger_rows,
        summarise,
    )
    from rempart.ledger.models import Disclosure

    end = dt.datetime.fromisoformat(args.end)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [backend] = cursor.fetchone()
    baseline = maxrss_mb()
    results, plans = [], []
    for subject in scope_subjects(end):
        criteria = ScopeCriteria.from_json(subject["criteria"])
        runs = []
        if args.drop_caches:
            drop_caches()
        for n in range(args.runs):
            read_before = backend_read_bytes(backend)
            started = time.perf_counter()
            summary = summarise(criteria)
            summarise_s = time.perf_counter() - started
            with transaction.atomic():
                incident = Incident.objects.create(title="bench/scope.py", detected_at=timezone.now())
                scope = Scope.objects.create(incident=incident, label=subject["label"][:200])
                started = time.perf_counter()
                entries = insert_entries(criteria, scope.pk)
                freeze_s = time.perf_counter() - started
                transaction.set_rollback(True)
            read_after = backend_read_bytes(backend)
            disk = None if read_before is None or read_after is None else read_after - read_before
            runs.append({"summarise": summarise_s, "freeze": freeze_s, "disk_read": disk, "entries": entries})
            print(
                f"  {subject['label']}: run {n + 1}: summarise {summarise_s * 1000:.0f} ms, freeze "
                f"{freeze_s * 1000:.0f} ms ({entries:,} entries), disk read {(disk or 0) / 1e6:.0f} MB",
                flush=True,
            )
        # The plans, once each (the freeze's INSERT inside a rolled-back transaction).
        per_insurer = (
            ledger_rows(criteria)
            .filter(beneficiary_id__isnull=False)
            .values("insurer_id")
            .order_by("insurer_id")
        )
        per_insurer = per_insurer.annotate(
            people=Count("beneficiary_id", distinct=True), disclosures=Count("id")
        )
        misses = ledger_rows(criteria).filter(outcome=Disclosure.Outcome.NO_MATCH)
        text = [f"===== {subject['label']}", json.dumps(subject["criteria"]), ""]
        with connection.cursor() as cursor:
            for title, queryset in (("summarise: per insurer", per_insurer), ("summarise: misses", misses)):
                sql, params = queryset.query.sql_with_params()
                if title.endswith("misses"):
                    sql = f"SELECT count(*) FROM ({sql}) misses"
                text += [f"--- {title}", explain(cursor, sql, params), ""]
            with transaction.atomic():
                incident = Incident.objects.create(title="bench/scope.py", detected_at=timezone.now())
                scope = Scope.objects.create(incident=incident, label="plan")
                select_sql, params = grouped_entries(criteria).query.sql_with_params()
                text += [
                    "--- freeze: insert_entries",
                    explain(cursor, _INSERT_ENTRIES.format(select=select_sql), [scope.pk, *params]),
                    "",
                ]
                transaction.set_rollback(True)
        plans.append("\n".join(text))
        later = runs[1:] or runs
        results.append(
            {
                **subject,
                "matched": summary.matched_rows,
                "disclosures": summary.disclosures,
                "misses": summary.misses,
                "people": summary.people,
                "insurers": len(summary.per_insurer),
                "entries": runs[0]["entries"],
                "first": runs[0],
                "summarise_median": statistics.median(r["summarise"] for r in later),
                "freeze_median": statistics.median(r["freeze"] for r in later),
                "runs": runs,
                "maxrss_mb": maxrss_mb(),
            }
        )
    Path(args.plans).write_text("\n\n".join(plans) + "\n", encoding="utf-8")
    Path(args.out).write_text(json.dumps({"baseline_mb": baseline, "scopes": results}, indent=1))


def make_partitions(args) -> None:
    """Child process: the monthly partitions from --since (ensure_partitions, as migrate does for later months)."""
    setup_django()
    from django.db import connection

    from rempart.ledger.partitions import ensure_partitions

    created, skipped = ensure_partitions(connection, since=dt.date.fromisoformat(args.since))
    print(f"partitions: {len(created)} created, {len(skipped)} skipped", flush=True)


# ---------------------------------------------------------------------------------------------- verify (child)


def verify_speed(args) -> None:
    """Child process: --rows rows with real chained hashes over the last 30 days, then time chain.verify."""
    setup_django()
    from types import SimpleNamespace

    from django.db import connection

    from rempart.ledger import chain
    from rempart.ledger.models import CHAIN_COUNT
    from rempart.ledger.partitions import ensure_partitions

    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(days=30)
    ensure_partitions(connection, since=start)
    rng = random.Random(1)
    heads = {n: (0, chain.GENESIS) for n in range(CHAIN_COUNT)}
    step = (end - start) / args.rows
    columns = chain.INSERTED_FIELDS
    started = time.monotonic()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy(f"COPY ledger_disclosure ({', '.join(columns)}) FROM STDIN") as copy:
            for n in range(args.rows):
                chain_no = rng.randrange(CHAIN_COUNT)
                seq, prev = heads[chain_no]
                miss = rng.random() < MISS_SHARE
                api = rng.random() < API_SHARE
                domain = rng.choice(DOMAINS)[0]
                user = None if api else rng.randrange(1, USERS + 1)
                token = rng.randrange(1, TOKENS + 1) if api else None
                row = SimpleNamespace(
                    id=n + 1, hash_version=chain.CURRENT_HASH_VERSION,
                    created_at=start + step * n, chain=chain_no, seq=seq + 1, reference=chain.new_reference(),
                    channel="api" if api else "portal", purpose="rights_check",
                    organisation_id=rng.randrange(1, ORGS + 1), user_id=user, token_id=token,
                    session_ref=f"token:{token:08x}" if api else f"{rng.getrandbits(128):032x}",
                    ip_address=f"90.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                    insurer_id=rng.randrange(1, INSURERS + 1), beneficiary_id=None if miss else rng.randrange(1, BENEFICIARIES + 1),
                    presented_hash=rng.randbytes(16) if miss else None, domain=domain,
                    care_date=(start + step * n).date(), outcome="no_match" if miss else "covered",
                    fields=[] if miss else ["identity_confirmed", f"coverage:{domain}", f"tp_terms:{domain}", "valid_until"],
                )  # fmt: skip
                row.prev_hash = prev
                row.row_hash = chain.row_hash(row, prev)
                heads[chain_no] = (seq + 1, row.row_hash)
                copy.write_row(
                    [json.dumps(row.fields) if c == "fields" else getattr(row, c) for c in columns]
                )
        for chain_no, (seq, digest) in heads.items():
            cursor.execute(
                "INSERT INTO ledger_chainhead (chain, seq, last_hash) VALUES (%s, %s, %s) "
                "ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, last_hash = EXCLUDED.last_hash",
                [chain_no, seq, digest],
            )
        # The ids were given explicitly (chain.append hashes them): move the sequence past them.
        cursor.execute("SELECT setval('ledger_disclosure_id_seq', %s)", [args.rows])
        cursor.execute("VACUUM ANALYZE ledger_disclosure")
    load = time.monotonic() - started
    print(f"  {args.rows:,} chained rows written in {load:.0f} s", flush=True)
    results = {"rows": args.rows, "load_seconds": load}
    for label, since in (("window", start + (end - start) / 2), ("whole", None)):
        started = time.monotonic()
        report = chain.verify(since)
        seconds = time.monotonic() - started
        if not report.ok:
            sys.exit("verify found broken chains: " + "; ".join(report.broken[:3]))
        results[label] = {"rows": report.rows, "seconds": seconds, "rows_per_s": report.rows / seconds}
        print(
            f"  verify({label}): {report.rows:,} rows in {seconds:.1f} s ({report.rows / seconds:,.0f} rows/s)"
        )
    results["maxrss_mb"] = maxrss_mb()
    Path(args.out).write_text(json.dumps(results, indent=1))


def measure_verify(args, secrets) -> dict | None:
    if not args.verify_rows:
        return None
    name = f"{args.db_name}_verify"
    env = base_env(secrets, name)
    say(f"verify speed: {args.verify_rows:,} rows with real hashes in the scratch database {name}")
    with pg_connect(PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        run(rempart_cli("migrate", "--verbosity", "0"), env)
        out = OUT / "scope-verify.json"
        child("_verify", "--rows", str(args.verify_rows), "--out", str(out), env=env)
        return json.loads(out.read_text())
    finally:
        with pg_connect(PG_ADMIN_URL) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------- report


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def results_rows(scopes: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["scope", "rows matched", "people", "entries", "summarise 1st", "summarise median", "freeze 1st",
              "freeze median", "1st run disk read", "peak RSS"]  # fmt: skip
    rows = []
    for s in scopes:
        disk = s["first"]["disk_read"]
        rows.append(
            [
                s["label"],
                f"{s['matched']:,}",
                f"{s['people']:,}",
                f"{s['entries']:,}",
                _s(s["first"]["summarise"]),
                _s(s["summarise_median"]),
                _s(s["first"]["freeze"]),
                _s(s["freeze_median"]),
                "?" if disk is None else f"{disk / 1e6:,.0f} MB",
                f"{s['maxrss_mb']:.0f} MB",
            ]
        )
    return header, rows


def table(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

    def fmt(line):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(line))

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(row) for row in rows)])


def verdicts(scopes: list[dict]) -> list[str]:
    """Against the 2 s target: warm (medians), first run, and summarise + freeze together (what attaching runs)."""
    lines = []
    for s in scopes:
        warm = max(s["summarise_median"], s["freeze_median"])
        first = max(s["first"]["summarise"], s["first"]["freeze"])
        both = s["summarise_median"] + s["freeze_median"]

        def verdict(seconds: float) -> str:
            return "met" if seconds <= TARGET_SECONDS else "MISSED"

        lines.append(
            f"{s['label']}: warm {_s(warm)} {verdict(warm)}; first run {_s(first)} {verdict(first)}; "
            f"summarise + freeze {_s(both)} {verdict(both)}"
        )
    return lines


def plan_lines(path: Path) -> list[str]:
    """What the saved plans show: sequential scans (none expected) and the partitions each scope reads."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = [
        f"plans: {text.count('Seq Scan')} sequential scan(s), {text.count('Index Only Scan')} index-only scan(s)"
    ]
    for section in text.split("===== ")[1:]:
        label = section.split("\n", 1)[0]
        partitions = sorted(set(re.findall(r" on (ledger_disclosure_y\d{4}m\d{2})", section)))
        indexes = sorted(
            set(
                re.findall(
                    r"using ledger_disclosure_y\d{4}m\d{2}_(\w+)|Scan on ledger_disclosure_y\d{4}m\d{2}_(\w+)",
                    section,
                )
            )
        )
        names = sorted({a or b for a, b in indexes})
        lines.append(
            f"{label}: {len(partitions)} monthly partition(s) read"
            + (f" ({partitions[0][-7:]} → {partitions[-1][-7:]})" if partitions else "")
            + f", index(es) {', '.join(names)}"
        )
    return lines


def load_lines(meta: dict[str, str]) -> list[str]:
    sizes = json.loads(meta["sizes"])
    rows = int(meta["rows"])
    parts = [("insert", "insert_seconds"), ("vacuum", "vacuum_seconds"), ("indexes", "index_seconds"),
             ("analyze", "analyze_seconds")]  # fmt: skip
    total = sum(int(meta[key]) for _label, key in parts)
    lines = [
        f"load: {total / 60:.1f} min for {rows:,} rows ("
        + ", ".join(f"{label} {int(meta[key]) / 60:.1f} min" for label, key in parts)
        + f"; {meta.get('load_jobs', '?')} sessions)",
        f"size: table {sizes['table'] / 1e9:.2f} GB ({sizes['table'] / rows:.0f} B/row) + indexes "
        f"{sizes['indexes'] / 1e9:.2f} GB ({sizes['indexes'] / rows:.0f} B/row) = "
        f"{(sizes['table'] + sizes['indexes']) / 1e9:.2f} GB",
        "indexes: " + ", ".join(f"{name} {size / 1e9:.2f} GB" for name, size in sizes["per_index"].items()),
    ]
    return lines


def verify_lines(verify: dict | None) -> list[str]:
    if not verify:
        return ["chain.verify: not measured (--verify-rows 0)"]
    w = verify["window"]
    rate = w["rows_per_s"]
    per_month = 100_000_000 / 24
    return [
        f"chain.verify(since): {w['rows']:,} rows in {w['seconds']:.1f} s = {rate:,.0f} rows/s "
        f"(whole ledger of {verify['whole']['rows']:,} rows: {verify['whole']['rows_per_s']:,.0f} rows/s; "
        f"peak RSS {verify['maxrss_mb']:.0f} MB)",
        f"at that rate, attaching a scope over 100 M rows / 24 months verifies first: 30 days ≈ "
        f"{per_month / rate / 60:.0f} min, 6 months ≈ {6 * per_month / rate / 60:.0f} min, "
        f"1 year ≈ {12 * per_month / rate / 60:.0f} min",
    ]


def write_report(args, meta, result, verify, command) -> Path:
    header, rows = results_rows(result["scopes"])
    text = [
        "# Incident-scope benchmark",
        "",
        f"`{command}` — {dt.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, "
        f"{os.cpu_count()} CPU, Python {platform.python_version()}",
        "",
        f"- data: `{args.db_name}`, {int(meta['rows']):,} ledger rows over {MONTHS} months "
        f"({meta['start'][:10]} → {meta['end'][:16]} UTC), generator {meta['generator']}",
        *(f"- {line}" for line in load_lines(meta)),
        f"- runs: {args.runs} per scope; '1st' is the first run (its disk read: what the backend read from "
        "storage, not the OS cache"
        + ("; the OS page cache emptied before it" if args.drop_caches else "")
        + "), 'median' the median of the others; freeze = insert_entries() into a scratch scope, rolled back",
        f"- memory: the measuring process's peak RSS, {result['baseline_mb']:.0f} MB after Django's start-up",
        "",
        table(header, rows, markdown=True),
        "",
        *(f"- {line}" for line in verdicts(result["scopes"])),
        "",
        *(f"- {line}" for line in verify_lines(verify)),
        "",
        "Plans (EXPLAIN ANALYZE, BUFFERS): `bench/out/scope_plans.txt`.",
        "",
        *(f"- {line}" for line in plan_lines(OUT / "scope_plans.txt")),
        "",
    ]
    path = OUT / "scope.md"
    path.write_text("\n".join(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- main


def child(*args: str, env: dict[str, str]) -> None:
    rights_check.child(*args, env=env, script=__file__)


def parse(argv):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_measure", "_partitions", "_verify"):  # internal: the child processes
        step = argparse.ArgumentParser(prog=f"bench/scope.py {argv[0]}")
        if argv[0] == "_measure":
            step.add_argument("--end", required=True)
            step.add_argument("--runs", type=int, required=True)
            step.add_argument("--out", required=True)
            step.add_argument("--plans", required=True)
            step.add_argument("--drop-caches", action="store_true")
        elif argv[0] == "_partitions":
            step.add_argument("--since", required=True)
        else:
            step.add_argument("--rows", type=int, required=True)
            step.add_argument("--out", required=True)
        args = step.parse_args(argv[1:])
        args.step = argv[0]
        return args
    parser = argparse.ArgumentParser(prog="bench/scope.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000, help="ledger rows (100 M)")
    parser.add_argument("--db-name", default=DB_NAME, help=f"benchmark database ({DB_NAME})")
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the benchmark database")
    parser.add_argument("--runs", type=int, default=5, help="runs of each scope (5)")
    parser.add_argument("--jobs", type=int, default=2, help="PostgreSQL sessions loading at once (2)")
    parser.add_argument("--batch", type=int, default=2_000_000, help="rows per INSERT … SELECT (2 M)")
    parser.add_argument(
        "--verify-rows", type=int, default=1_000_000, help="rows for the chain.verify speed (1 M; 0 skips)"
    )
    parser.add_argument("--data-only", action="store_true", help="build the database, then stop")
    parser.add_argument(
        "--drop-caches", action="store_true",
        help="empty the OS page cache before each scope's first run (root; disturbs the whole machine)",
    )  # fmt: skip
    parser.add_argument("--nice", type=int, default=0, help="renice the loading backends (shared machines)")
    parser.add_argument(
        "--archive", action="store_true",
        help="archive mode (bench/scope_archive.py): scopes over a synthetic Parquet ledger archive of --rows rows",
    )  # fmt: skip
    parser.add_argument(
        "--archive-months", type=int, default=0,
        help="archive mode: time the scopes over the first N months only (0: all 24)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.step = None
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.step == "_measure":
        measure_scopes(args)
        return
    if args.step == "_partitions":
        make_partitions(args)
        return
    if args.step == "_verify":
        verify_speed(args)
        return
    command = "python3 bench/scope.py " + " ".join(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    secrets = bench_secrets()
    if (
        args.archive
    ):  # no database: the manifest's signing key from the bench's secrets, then Parquet and DuckDB
        import scope_archive

        os.environ.update(secrets, REMPART_VAR_DIR=str(OUT / "var"), DATABASE_URL="sqlite:///:memory:")
        setup_django()
        scope_archive.main(args, OUT)
        return
    env = base_env(secrets, args.db_name)
    meta = ensure_ledger(args, secrets, env)
    if args.data_only:
        say("data ready")
        return
    say(f"scopes over {int(meta['rows']):,} rows, {args.runs} runs each")
    out = OUT / "scope-result.json"
    plans = OUT / "scope_plans.txt"
    flags = ["--drop-caches"] if args.drop_caches else []
    child("_measure", "--end", meta["end"], "--runs", str(args.runs), "--out", str(out), "--plans", str(plans),
          *flags, env=env)  # fmt: skip
    result = json.loads(out.read_text())
    verify = measure_verify(args, secrets)
    header, rows = results_rows(result["scopes"])
    print()
    for line in load_lines(meta):
        print(line)
    print()
    print(table(header, rows, markdown=False))
    print()
    for line in verdicts(result["scopes"]) + verify_lines(verify):
        print(f"  {line}")
    path = write_report(args, meta, result, verify, command)
    print(f"\n(written to {path.relative_to(ROOT)} and {plans.relative_to(ROOT)})")


if __name__ == "__main__":
    rights_check.ensure_venv(__file__)
    main()
