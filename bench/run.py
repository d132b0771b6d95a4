#!/usr/bin/env python3
"""Rempart benchmarks (docs/benchmarks.md).

    python3 bench/run.py import [--rows 1000000] [--db sqlite|postgres|both] [--seed 1]

The import benchmark generates synthetic rights files (cached under bench/out/data/), loads them into
a fresh database (a SQLite file under bench/out/, or a PostgreSQL database ``rempart_bench_<pid>``
dropped at the end), imports them twice (the second run is the idempotent no-change path), measures
the rate and the storage per million beneficiaries, then, on PostgreSQL, the raw COPY rate of the same stored
rows (the reference the import rate is compared with), prints a table and writes bench/out/import.md.

Each measurement runs in a child process, so that Django is set up with that database's settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")

RATE_TARGET = 100_000  # rows/s on PostgreSQL, validation, encryption and blind index included (issue #3)
STORAGE_TARGET_MB = 150  # per 1 M beneficiaries, indexes included (issue #3)
RAW_RATIO_TARGET = 0.25  # import rate / raw COPY rate of the same rows, same indexes, PostgreSQL (issue #19)
NONE = "—"  # a figure that does not apply (SQLite has no COPY)


def ensure_venv() -> None:
    """Re-run this script with the project's virtualenv when started with another Python."""
    if Path(sys.prefix).resolve() != VENV.resolve() and VENV_PYTHON.exists():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    if sys.version_info < (3, 11):
        sys.exit("the benchmark needs Python 3.11+ (run python3 scripts/dev.py demo first to create .venv/)")


def child(*args: str, env: dict[str, str] | None = None) -> None:
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})})
    if result.returncode:
        sys.exit(f"benchmark step failed ({result.returncode}): {' '.join(args)}")


# ---------------------------------------------------------------------------------------------- databases


def pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def pg_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def measure(db: str, data_dir: Path, args, extra_env: dict[str, str] | None = None) -> dict:
    result_path = OUT / f"result-{db}-{os.getpid()}.json"
    workers = {} if args.workers is None else {"REMPART_IMPORT_WORKERS": str(args.workers)}
    workers.update(extra_env or {})
    options = ["--data", str(data_dir), "--result", str(result_path), "--rows", str(args.rows)]
    options += ["--seed", str(args.seed)]
    if args.profile:
        options.append("--profile")
    if db == "sqlite":
        path = OUT / f"bench-{os.getpid()}.sqlite3"
        url = f"sqlite:///{path}"
        try:
            child("_measure", "--db", db, *options, env={"DATABASE_URL": url, **workers})
        finally:
            if not args.keep:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        name = f"rempart_bench_{os.getpid()}"
        pg_admin(f'CREATE DATABASE "{name}"')
        try:
            child("_measure", "--db", db, *options, env={"DATABASE_URL": pg_url(name), **workers})
        finally:
            if not args.keep:
                pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    result = json.loads(result_path.read_text())
    result_path.unlink()
    return result


# ---------------------------------------------------------------------------------------------- report


def _verdict(result: dict) -> str:
    parts = []
    if result["db"] == "postgres":
        ok = result["import_rate"] >= RATE_TARGET
        parts.append(f">= {RATE_TARGET:,} rows/s: {'met' if ok else 'MISSED'}")
        if result.get("raw_copy_ratio") is not None:
            ok = result["raw_copy_ratio"] >= RAW_RATIO_TARGET
            parts.append(f">= {RAW_RATIO_TARGET} x raw COPY: {'met' if ok else 'MISSED'}")
    ok = result["mb_per_million"] <= STORAGE_TARGET_MB
    parts.append(f"<= {STORAGE_TARGET_MB} MB: {'met' if ok else 'MISSED'}")
    return "; ".join(parts)


def _figure(value: float | None, spec: str) -> str:
    return NONE if value is None else format(value, spec)


def table(results: list[dict], markdown: bool) -> str:
    header = [
        "database",
        "rows",
        "import rows/s",
        "raw COPY rows/s",
        "import / raw COPY",
        "raw COPY rows/s, no index",
        "re-import rows/s",
        "MB per 1M beneficiaries",
        "target",
    ]
    rows = [
        [
            r["label"],
            f"{r['rows']:,}",
            f"{r['import_rate']:,.0f}",
            _figure(r.get("raw_copy_rate"), ",.0f"),
            _figure(r.get("raw_copy_ratio"), ".2f"),
            _figure(r.get("raw_copy_rate_no_indexes"), ",.0f"),
            f"{r['reimport_rate']:,.0f}",
            f"{r['mb_per_million']:.1f}",
            _verdict(r),
        ]
        for r in results
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    right = set(range(1, len(header) - 1))

    def fmt(line: list[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(line)
        ).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(row) for row in rows)])


def details(result: dict) -> str:
    lines = [
        f"### {result['label']} ({result['version']})",
        "",
        f"- files: {result['files']} (one per insurer), rows: {result['rows']:,}, "
        f"beneficiaries stored: {result['beneficiaries']:,}, contracts: {result['contracts']:,}",
        f"- import: {result['import_seconds']:.1f} s; re-import (no change): {result['reimport_seconds']:.1f} s; "
        f"worker processes: {result.get('workers', 'auto')}",
        f"- storage measured: {result['storage_bytes'] / 1e6:.1f} MB ({result['storage_method']})",
        f"- {_raw_copy_details(result)}",
        "",
        "| relation | MB | MB per 1M beneficiaries |",
        "|---|---:|---:|",
    ]
    scale = 1_000_000 / max(1, result["beneficiaries"])
    for name, size in sorted(result["relations"].items(), key=lambda item: -item[1]):
        lines.append(f"| {name} | {size / 1e6:.1f} | {size * scale / 1e6:.1f} |")
    if result.get("columns"):
        lines += ["", "Average stored bytes per beneficiary column:", ""]
        lines += ["| column | bytes |", "|---|---:|"]
        lines += [f"| {name} | {size:.1f} |" for name, size in result["columns"].items()]
    return "\n".join(lines)


def _raw_copy_details(result: dict) -> str:
    raw = result.get("raw_copy")
    if not raw:
        return "raw COPY reference: none (SQLite has no COPY)"
    sizes = raw["bytes"]
    return (
        f"raw COPY of the stored rows ({sizes['registry_contract'] / 1e6:.1f} MB of contracts and "
        f"{sizes['registry_beneficiary'] / 1e6:.1f} MB of beneficiaries in binary COPY format): "
        f"{raw['indexes']['seconds']:.2f} s with the tables' indexes and checks "
        f"({raw['indexes']['rate']:,.0f} beneficiaries/s), {raw['no_indexes']['seconds']:.2f} s without "
        f"({raw['no_indexes']['rate']:,.0f}/s); import / raw COPY: {result['raw_copy_ratio']:.2f} "
        f"(target >= {RAW_RATIO_TARGET})"
    )


def write_report(results: list[dict], args) -> Path:
    path = OUT / "import.md"
    text = [
        "# Rights import benchmark",
        "",
        f"`python3 bench/run.py import --rows {args.rows} --db {args.db} --seed {args.seed}"
        f"{'' if args.workers is None else f' --workers {args.workers}'}"
        f"{'' if args.concurrency == 1 else f' --concurrency {args.concurrency}'}` — "
        f"{dt.datetime.now().isoformat(timespec='seconds')}, {platform.node()}, "
        f"{os.cpu_count()} CPU, Python {platform.python_version()}, load average before the run "
        f"{args.load_before}",
        "",
        "MB = 10^6 bytes. Storage is registry_beneficiary + registry_contract, tables and indexes, "
        "scaled to 1,000,000 beneficiaries.",
        "",
        "Raw COPY (PostgreSQL only): the rows the first import stored, exported with binary COPY, then loaded "
        "with `COPY … FROM STDIN (FORMAT binary)` into fresh tables `LIKE … INCLUDING ALL` (same indexes, "
        "no foreign keys), contracts then beneficiaries in one timed transaction; beneficiaries per second. "
        '"no index": the same into tables `LIKE … INCLUDING DEFAULTS`. '
        f"Target: import rate >= {RAW_RATIO_TARGET} x raw COPY rate (same indexes).",
        "",
        table(results, markdown=True),
        "",
        *(details(r) + "\n" for r in results),
    ]
    path.write_text("\n".join(text), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("import", help="rights import: rate and storage")
    run.add_argument("--rows", type=int, default=1_000_000, help="beneficiaries to generate and import")
    run.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--keep", action="store_true", help="keep the benchmark database(s)")
    run.add_argument("--profile", action="store_true", help="cProfile the first import (bench/out/)")
    run.add_argument(
        "--workers", type=int, help="processes checking and encrypting rows (default: the importer's choice)"
    )
    run.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="also measure PostgreSQL importing this many insurers' files at a time (extra table row)",
    )
    for name in ("_generate", "_measure"):  # internal: the child processes
        step = sub.add_parser(name)
        step.add_argument("--db", default="sqlite")
        step.add_argument("--data", type=Path, required=True)
        step.add_argument("--result", type=Path)
        step.add_argument("--rows", type=int, required=True)
        step.add_argument("--seed", type=int, required=True)
        step.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.command == "_generate":
        from import_bench import generate

        generate(args.data, args.rows, args.seed)
        return
    if args.command == "_measure":
        from import_bench import run_measure

        run_measure(args)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    args.load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    data_dir = OUT / "data" / f"rows-{args.rows}-seed-{args.seed}"
    if not (data_dir / "complete.json").exists():
        print(f"generating {args.rows:,} rows into {data_dir.relative_to(ROOT)} …", flush=True)
        child("_generate", "--data", str(data_dir), "--rows", str(args.rows), "--seed", str(args.seed))
    else:
        print(f"using the cached files in {data_dir.relative_to(ROOT)}", flush=True)
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = []
    for db in databases:
        print(f"== {db}", flush=True)
        results.append(measure(db, data_dir, args))
        if db == "postgres" and args.concurrency > 1:
            print(f"== {db}, {args.concurrency} files at a time", flush=True)
            results.append(measure(db, data_dir, args, {"BENCH_CONCURRENCY": str(args.concurrency)}))
    print()
    print(table(results, markdown=False))
    path = write_report(results, args)
    print(f"\n(written to {path.relative_to(ROOT)})")


if __name__ == "__main__":
    ensure_venv()
    main()
