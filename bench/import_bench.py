"""The child-process side of ``bench/run.py import``: generation, and one database's measurement.

Django is set up here, after the parent has put DATABASE_URL in the environment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
TODAY = dt.date(2026, 1, 15)  # fixed, so that cached files and imports agree whatever the day
TABLES = ("registry_beneficiary", "registry_contract")
RAW_COPY_ORDER = ("registry_contract", "registry_beneficiary")  # contracts first, as foreign keys would need
RAW_COPY_PREFIX = "bench_raw_"  # the reference tables: bench_raw_registry_contract, …
RAW_COPY_VARIANTS = {"indexes": "INCLUDING ALL", "no_indexes": "INCLUDING DEFAULTS"}
RAW_COPY_SPOOL = 512 * 1024 * 1024  # exported bytes kept in memory per table, then a temporary file
RAW_COPY_CHUNK = 1024 * 1024


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rempart.settings")
    os.environ.setdefault("REMPART_VAR_DIR", str(OUT / "var"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{OUT / 'var' / 'unused.sqlite3'}")
    import django

    django.setup()


def generate(data_dir: Path, rows: int, seed: int) -> None:
    setup_django()
    from rempart.registry import seeding, synthetic

    started = time.monotonic()
    paths = seeding.write_files(data_dir, seed, rows, TODAY)
    specs = synthetic.plan_insurers(seed, rows)
    manifest = {
        "rows": rows,
        "seed": seed,
        "today": TODAY.isoformat(),
        "files": [
            {"amc": spec.amc_number, "rows": spec.beneficiaries, "rights": path.name}
            for spec, path in zip(specs, paths, strict=True)
        ],
    }
    (data_dir / "complete.json").write_text(json.dumps(manifest, indent=1))
    print(f"generated {rows:,} rows in {time.monotonic() - started:.1f} s", flush=True)


def run_measure(args) -> None:
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from rempart.registry import seeding, synthetic
    from rempart.registry.products_import import import_products

    manifest = json.loads((args.data / "complete.json").read_text())
    call_command("migrate", verbosity=0)
    specs = synthetic.plan_insurers(args.seed, args.rows)
    insurers = []
    for spec in specs:
        insurer = seeding.ensure_insurer(spec)
        products = import_products(args.data / f"products-{spec.amc_number}.csv", insurer)
        if products.errors:
            raise SystemExit(f"products file refused for {spec.amc_number}")
        insurers.append((insurer, args.data / f"rights-{spec.amc_number}.csv"))
    assert sum(f["rows"] for f in manifest["files"]) == args.rows

    concurrency = int(os.environ.get("BENCH_CONCURRENCY") or 1)
    first = _import_all(insurers, "import", profile=args.profile, db=args.db, concurrency=concurrency)
    if first["created"] != args.rows or first["rejected"]:
        raise SystemExit(f"unexpected first import counts: {first}")
    second = _import_all(insurers, "re-import", concurrency=concurrency)
    if second["unchanged"] != args.rows:
        raise SystemExit(f"unexpected re-import counts: {second}")

    storage = _storage_postgres() if connection.vendor == "postgresql" else _storage_sqlite()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM registry_beneficiary")
        [beneficiaries] = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM registry_contract")
        [contracts] = cursor.fetchone()
    # The raw COPY reference, after every import timing and the storage measurement: the re-import changed
    # nothing (checked above), so the tables still hold exactly the rows the first import stored.
    raw = _raw_copy_postgres(beneficiaries) if connection.vendor == "postgresql" else None
    import_rate = args.rows / first["seconds"]
    result = {
        "db": args.db,
        "label": ("PostgreSQL" if connection.vendor == "postgresql" else "SQLite")
        + (f", {concurrency} files at a time" if concurrency > 1 else ""),
        "version": _version(connection),
        "rows": args.rows,
        "workers": os.environ.get("REMPART_IMPORT_WORKERS") or "auto",
        "files": len(insurers),
        "beneficiaries": beneficiaries,
        "contracts": contracts,
        "import_seconds": first["seconds"],
        "import_rate": import_rate,
        "reimport_seconds": second["seconds"],
        "reimport_rate": args.rows / second["seconds"],
        "raw_copy": raw,
        "raw_copy_rate": raw["indexes"]["rate"] if raw else None,
        "raw_copy_rate_no_indexes": raw["no_indexes"]["rate"] if raw else None,
        "raw_copy_ratio": import_rate / raw["indexes"]["rate"] if raw else None,
        "mb_per_million": storage["bytes"] * 1_000_000 / max(1, beneficiaries) / 1e6,
        "storage_bytes": storage["bytes"],
        "storage_method": storage["method"],
        "relations": storage["relations"],
        "columns": storage.get("columns", {}),
    }
    args.result.write_text(json.dumps(result, indent=1))


def _import_files(insurers) -> dict:
    from rempart.registry.rights_import import import_rights

    totals = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0, "rows": 0}
    for insurer, path in insurers:
        _run, summary = import_rights(path, insurer, mode="full", force=True, show_progress=None, today=TODAY)
        totals["rows"] += summary.rows_read
        for key in ("created", "updated", "unchanged", "rejected"):
            totals[key] += getattr(summary, key)
    return totals


def _import_share(insurers, results) -> None:
    """One of several processes importing files side by side (own database connection)."""
    from django.db import connections

    results.put(_import_files(insurers))
    connections.close_all()


def _import_concurrently(insurers, concurrency: int) -> dict:
    """Several insurers' files at once, as a national load would run them (PostgreSQL only)."""
    import multiprocessing

    from django.db import connections

    shares: list[list] = [[] for _ in range(concurrency)]
    sizes = [0] * concurrency
    for insurer, path in sorted(insurers, key=lambda item: -item[1].stat().st_size):
        smallest = sizes.index(min(sizes))
        shares[smallest].append((insurer, path))
        sizes[smallest] += path.stat().st_size
    connections.close_all()  # each process opens its own
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_import_share, args=(share, results)) for share in shares]
    for process in processes:
        process.start()
    parts = [results.get() for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode:
            raise SystemExit(f"an import process failed ({process.exitcode})")
    return {key: sum(part[key] for part in parts) for key in parts[0]}


def _checkpoint() -> None:
    """Start each timed phase (import, re-import, each raw COPY) from a fresh checkpoint: otherwise whichever phase
    happens to meet the checkpoint that the previous phase's WAL triggers pays for it (the raw COPY alone measured
    3.7 s in one run, 7.2 s in the next). Needs superuser or pg_checkpoint; skipped on SQLite or without the right."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        print(f"(no CHECKPOINT before the phase: {exc.__class__.__name__})", flush=True)


def _import_all(insurers, label: str, profile: bool = False, db: str = "", concurrency: int = 1) -> dict:
    _checkpoint()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.monotonic()
    totals = _import_concurrently(insurers, concurrency) if concurrency > 1 else _import_files(insurers)
    totals["seconds"] = time.monotonic() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        target = OUT / f"profile-{db}.pstats"
        profiler.dump_stats(target)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        print(f"profile written to {target}", flush=True)
    print(
        f"{label}: {totals['rows']:,} rows in {totals['seconds']:.1f} s "
        f"({totals['rows'] / totals['seconds']:,.0f} rows/s)",
        flush=True,
    )
    return totals


def _raw_copy_postgres(beneficiaries: int) -> dict:
    """How fast PostgreSQL alone stores the rows the import stored: the reference for the import rate.

    The contract and beneficiary rows are exported as they are stored (binary COPY, into memory, spilling to a
    temporary file past RAW_COPY_SPOOL bytes), then loaded with ``COPY … FROM STDIN (FORMAT binary)`` into fresh
    tables created ``LIKE`` the real ones, contracts then beneficiaries in one transaction; the time covers that
    transaction, commit included, not the tables' creation (committed beforehand, so that no WAL is skipped).
    Twice: ``INCLUDING ALL`` (same columns, defaults, checks and indexes; foreign keys are never copied by
    ``LIKE``) and ``INCLUDING DEFAULTS`` (no index, no check). The copies are dropped after each variant, even
    on error. Its own connection (autocommit, server defaults): nothing of the import's sessions is reused.
    """
    import psycopg
    from psycopg import sql

    url = os.environ["DATABASE_URL"]
    dumps: dict[str, tuple[sql.Composable, tempfile.SpooledTemporaryFile]] = {}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            sizes = {}
            for table in RAW_COPY_ORDER:
                names = conn.execute(
                    """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass
                       AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
                    [table],
                ).fetchall()
                columns = sql.SQL(", ").join(sql.Identifier(name) for (name,) in names)
                spool = tempfile.SpooledTemporaryFile(max_size=RAW_COPY_SPOOL, prefix="rempart-raw-copy-")
                dumps[table] = (columns, spool)
                statement = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(
                    sql.Identifier(table), columns
                )
                with conn.cursor() as cursor, cursor.copy(statement) as copy:
                    for data in copy:
                        spool.write(data)
                sizes[table] = spool.tell()
            result: dict = {"beneficiaries": beneficiaries, "bytes": sizes}
            for variant, like in RAW_COPY_VARIANTS.items():
                seconds = _raw_copy_once(url, conn, dumps, like)
                result[variant] = {"seconds": seconds, "rate": beneficiaries / seconds}
    finally:
        for _columns, spool in dumps.values():
            spool.close()
    print(
        f"raw COPY: {beneficiaries:,} beneficiaries + contracts "
        f"({sum(result['bytes'].values()) / 1e6:.1f} MB binary) in {result['indexes']['seconds']:.2f} s "
        f"({result['indexes']['rate']:,.0f} rows/s); without indexes {result['no_indexes']['seconds']:.2f} s "
        f"({result['no_indexes']['rate']:,.0f} rows/s)",
        flush=True,
    )
    return result


def _raw_copy_once(url: str, conn, dumps: dict, like: str) -> float:
    """Create the copies, time one transaction loading them, drop them (whatever happens)."""
    import psycopg
    from psycopg import sql

    copies = {table: sql.Identifier(RAW_COPY_PREFIX + table) for table in RAW_COPY_ORDER}
    dropped = sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(copies.values()))
    try:
        for table, copy_table in copies.items():
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE {} {})").format(
                    copy_table, sql.Identifier(table), sql.SQL(like)
                )
            )
        _checkpoint()
        started = time.monotonic()
        with conn.transaction():
            for table, copy_table in copies.items():
                columns, spool = dumps[table]
                spool.seek(0)
                statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(copy_table, columns)
                with conn.cursor() as cursor, cursor.copy(statement) as copy:
                    while chunk := spool.read(RAW_COPY_CHUNK):
                        copy.write(chunk)
        return time.monotonic() - started
    finally:
        if conn.broken or conn.closed:
            with psycopg.connect(url, autocommit=True) as other:
                other.execute(dropped)
        else:
            conn.execute(dropped)


def _version(connection) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            return "PostgreSQL " + cursor.fetchone()[0]
        cursor.execute("SELECT sqlite_version()")
        return "SQLite " + cursor.fetchone()[0]


def _storage_postgres() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) registry_beneficiary"
        )  # as autovacuum would: visibility + free space maps
        cursor.execute("VACUUM (ANALYZE) registry_contract")
        relations = {}
        for table in TABLES:
            cursor.execute(
                """SELECT pg_relation_size(%s::regclass), pg_table_size(%s::regclass)""", [table, table]
            )
            heap, with_extras = cursor.fetchone()
            relations[f"{table} (heap)"] = heap
            relations[f"{table} (toast, free space and visibility maps)"] = with_extras - heap
            cursor.execute(
                """SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i
                   JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass""",
                [table],
            )
            relations.update({f"{name} (index)": size for name, size in cursor.fetchall()})
        cursor.execute(
            "SELECT pg_total_relation_size('registry_beneficiary') + pg_total_relation_size('registry_contract')"
        )
        [total] = cursor.fetchone()
        cursor.execute(
            """SELECT attname FROM pg_attribute WHERE attrelid = 'registry_beneficiary'::regclass
               AND attnum > 0 AND NOT attisdropped ORDER BY attnum"""
        )
        names = [name for (name,) in cursor.fetchall()]
        selects = ", ".join(f'AVG(COALESCE(pg_column_size("{name}"), 0))' for name in names)
        cursor.execute(f"SELECT {selects} FROM registry_beneficiary")  # noqa: S608 - catalogue names
        columns = {name: float(size) for name, size in zip(names, cursor.fetchone(), strict=True)}
    return {
        "bytes": total,
        "method": "pg_total_relation_size after VACUUM",
        "relations": relations,
        "columns": columns,
    }


def _storage_sqlite() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE tbl_name IN (%s, %s) AND type IN ('table', 'index')", TABLES
        )
        names = [name for (name,) in cursor.fetchall()]
        try:
            cursor.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            sizes = dict(cursor.fetchall())
            relations = {name: int(sizes.get(name, 0)) for name in names}
            return {"bytes": sum(relations.values()), "method": "dbstat", "relations": relations}
        except Exception:  # noqa: BLE001 - SQLite built without dbstat: whole file after VACUUM
            cursor.execute("VACUUM")
            path = Path(connection.settings_dict["NAME"])
            size = path.stat().st_size
            return {"bytes": size, "method": "file size after VACUUM", "relations": {"(whole file)": size}}
