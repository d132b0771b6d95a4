"""Archive mode of bench/scope.py (``--archive``): scopes over a synthetic ledger archive (docs/benchmarks.md).

    python3 bench/scope.py --archive [--rows 500000000] [--runs 3] [--jobs 2]

Builds bench/out/ledger-archive-<rows>/ directly as Parquet (vectorised numpy/pyarrow, synthetic identifiers only,
the same shape as the PostgreSQL scope bench: 24 months, 20,000 accounts in 8,000 organisations, 2,000 tokens,
skewed activity, /24 per organisation; check references random as the gate draws them), with the functions
``rempart ledger archive`` writes with (rempart.ledger.archive): ``write_segment`` for each chain file (seq order,
checkpoints, staged scope columns), ``write_scope_copies`` for each month's two sorted scope copies and
``write_manifest`` for its signed manifest. Files already built are kept (resumable: a file's manifest entry is
saved beside the build). The hash columns are random filler: this archive measures scopes, not ``ledger verify``.
Then times each scope over every month: manifests (signatures, file sizes) checked, then per-insurer totals,
people per insurer and grouped entries (what summarise() and a freeze read from the archive when the window is
all archived). Target: ≤ 10 s over 500 M rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TARGET_SECONDS = 10.0
MONTHS = 24
CHAINS = 16
USERS, ORGS, TOKENS, INSURERS = 20_000, 8_000, 2_000, 60
BENEFICIARIES, CLIENTELE, PERMUTE, SKEW = 20_000_000, 2_500, 7919, 1.5
PLAIN_BLOCKS = 4_000
FIRST_MONTH = dt.date(2024, 1, 1)


def month_of(n: int) -> dt.date:
    index = FIRST_MONTH.year * 12 + FIRST_MONTH.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def plan(rows: int, max_file_rows: int) -> list[dict]:
    """Every file: month, chain, part, its first id and seq, its row count (rows spread evenly)."""
    files, per_chain_seq = [], [0] * CHAINS
    next_id = 1
    for m in range(MONTHS):
        month_rows = rows // MONTHS + (1 if m < rows % MONTHS else 0)
        for c in range(CHAINS):
            chain_rows = month_rows // CHAINS + (1 if c < month_rows % CHAINS else 0)
            part, left = 0, chain_rows
            while left > 0:
                n = min(left, max_file_rows)
                files.append({"m": m, "chain": c, "part": part, "first_id": next_id,
                              "first_seq": per_chain_seq[c] + 1, "rows": n, "offset": chain_rows - left,
                              "chain_rows": chain_rows})  # fmt: skip
                next_id += n
                per_chain_seq[c] += n
                left -= n
                part += 1
    return files


def _strings(values, dictionary):
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(values, pa.int32()), pa.array(dictionary)).cast(
        pa.string()
    )


def _sessions(api, user, created, start: dt.datetime):
    """Portal rows carry their session's reference (32 hex characters; one session per account and day here),
    API rows none, as rempart.accounts.sessions.session_ref records them."""
    day = (created - int(start.timestamp() * 1e6)) // 86_400_000_000
    keys, inverse = np.unique(np.where(api, -1, user * 64 + day), return_inverse=True)
    texts = ["" if k < 0 else hashlib.sha256(f"session-{k}".encode()).hexdigest()[:32] for k in keys.tolist()]
    return _strings(inverse.astype(np.int32), texts)


def _binary(raw: bytes, n: int, width: int, valid=None):
    import pyarrow as pa

    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    array = pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(raw)])
    if valid is not None:
        import pyarrow.compute as pc

        array = pc.if_else(pa.array(valid), array, pa.scalar(None, pa.binary()))
    return array


def generate(spec: dict):
    """One file's rows, in seq order: every value from numpy, seeded by the file's first id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from rempart.ledger import archive_manifest as am

    n = spec["rows"]
    rng = np.random.default_rng(spec["first_id"])
    start = dt.datetime.combine(month_of(spec["m"]), dt.time(), dt.UTC)
    end = dt.datetime.combine(month_of(spec["m"] + 1), dt.time(), dt.UTC)
    span = (end - start).total_seconds() * 1e6
    # Appends at random moments (Poisson-like gaps), in time order within the file's slice of the month.
    position = (spec["offset"] + np.sort(rng.random(n)) * n) / spec["chain_rows"]
    created = (start.timestamp() * 1e6 + position * span).astype(np.int64)
    api = rng.random(n) < 0.35
    miss = rng.random(n) < 0.10
    actor = rng.random(n) ** SKEW
    user = np.where(api, 0, (actor * USERS).astype(np.int64) * PERMUTE % USERS + 1)
    token = np.where(api, (actor * TOKENS).astype(np.int64) * PERMUTE % TOKENS + 1, 0)
    org = np.where(api, (token - 1) * 4 % ORGS + 1, (user - 1) % ORGS + 1)
    block = np.where(org % 20 == 0, PLAIN_BLOCKS + (org // 20) % 8, org * 37 % PLAIN_BLOCKS)
    host = 1 + (np.where(api, token, user) * 4 + rng.integers(0, 3, n)) % 254
    address = (90 << 24) + block * 256 + host
    u_ben = rng.random(n)
    ben = np.where(u_ben < 0.8, ((org - 1) * CLIENTELE + (u_ben / 0.8) ** 2 * CLIENTELE).astype(np.int64)
                   * PERMUTE % BENEFICIARIES + 1, ((u_ben - 0.8) / 0.2 * BENEFICIARIES).astype(np.int64) + 1)  # fmt: skip
    insurer = 1 + ((ben * 2654435761 % 1048576) / 1048576) ** 2 * INSURERS
    covered = rng.random(n) < 0.85
    octets = [pc.cast(pa.array((address >> s) & 255), pa.string()) for s in (24, 16, 8, 0)]
    ip_text = pc.binary_join_element_wise(*octets, ".")
    hashes = rng.bytes(32 * n)
    # RC-XXXX-XXXX-XXXX, base32 (rempart.ledger.chain.new_reference): 60 random bits a row, as the gate draws them.
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)
    reference = np.empty((n, 17), dtype=np.uint8)
    reference[:, :3] = np.frombuffer(b"RC-", dtype=np.uint8)
    reference[:, [7, 12]] = ord("-")
    reference[:, [3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16]] = alphabet[rng.integers(0, 32, (n, 12))]
    outcome = np.where(miss, 2, np.where(covered, 0, 1))
    domain = rng.integers(0, 4, n)
    fields = np.where(miss, 0, 1 + domain + 4 * (~covered))
    field_texts = ["[]"] + [json.dumps(["identity_confirmed", f"coverage:{d}", f"tp_terms:{d}", "valid_until"])
                            for d in ("PHAR", "MEDE", "LABO", "OPTI")] + [
        json.dumps(["identity_confirmed", f"coverage:{d}"]) for d in ("PHAR", "MEDE", "LABO", "OPTI")]  # fmt: skip
    ids = np.arange(spec["first_id"], spec["first_id"] + n, dtype=np.int64)
    columns = {
        "id": pa.array(ids),
        "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        "chain": pa.array(np.full(n, spec["chain"], np.int16)),
        "seq": pa.array(np.arange(spec["first_seq"], spec["first_seq"] + n, dtype=np.int64)),
        "row_hash": pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), n, [None, pa.py_buffer(hashes)]),
        "reference": _binary(reference.tobytes(), n, 17).cast(pa.string()),
        "channel": _strings(api.astype(np.int32), ["portal", "api"]),
        "purpose": _strings(np.zeros(n, np.int32), ["rights_check"]),
        "organisation_id": pa.array(org),
        "user_id": pa.array(user, mask=api),
        "token_id": pa.array(token, mask=~api),
        "session_ref": _sessions(api, user, created, start),
        "ip_address": ip_text,
        "insurer_id": pa.array(insurer.astype(np.int64), mask=miss),
        "beneficiary_id": pa.array(ben, mask=miss),
        "presented_hash": _binary(rng.bytes(16 * n), n, 16, valid=miss),
        "domain": _strings(domain.astype(np.int32), ["PHAR", "MEDE", "LABO", "OPTI"]),
        "care_date": pc.cast(pa.array(created, pa.timestamp("us", tz="UTC")), pa.date32()),
        "outcome": _strings(outcome.astype(np.int32), ["covered", "not_covered", "no_match"]),
        "fields": _strings(fields.astype(np.int32), field_texts),
        "hash_version": pa.array(np.full(n, 2, np.int16)),
    }
    return pa.table(columns, schema=am.SCHEMA), rng.bytes(
        32
    )  # the rows, the filler hash the first one links to


def build_file(task: tuple) -> dict:
    spec, directory, state = task
    from rempart.ledger import archive_manifest as am
    from rempart.ledger.archive import write_segment

    name = f"chain-{spec['chain']:02d}-{spec['part']:03d}.parquet"
    saved = Path(state) / f"{month_of(spec['m']):%Y-%m}-{name}.json"
    done = (Path(directory) / am.MANIFEST).exists() or (Path(directory) / am.STAGE / name).exists()
    if saved.exists() and (Path(directory) / name).exists() and done:
        return json.loads(saved.read_text())
    table, first_prev = generate(spec)
    entry = write_segment(Path(directory), name, table, first_prev)
    saved.write_text(json.dumps(entry))
    return entry


def restage_old_copies(root: Path) -> None:
    """Months built by an earlier layout of the scope copies (an interrupted build resumed after a change): their
    address copy holds every scope column of every row, so it is staged again and the copies are rewritten with
    today's write_scope_copies, then the manifest re-signed (the chain files are kept as they are)."""
    import pyarrow.parquet as pq

    from rempart.ledger import archive_manifest as am
    from rempart.ledger.archive import write_manifest, write_scope_copies

    for manifest in am.load_all(root)[0]:
        if manifest.document.get("scope_row_group_rows") == am.SCOPE_ROW_GROUP_ROWS:
            continue
        started = time.monotonic()
        stage = manifest.directory / am.STAGE
        stage.mkdir(exist_ok=True)
        with pq.ParquetWriter(stage / "restaged.parquet", am.SCOPE_SCHEMA, compression="zstd") as writer:
            for batch in pq.ParquetFile(manifest.scope_path("ip")).iter_batches(1 << 20):
                writer.write_table(pa_table(batch).cast(am.SCOPE_SCHEMA))
        for copy in am.SCOPE_COPIES:
            manifest.scope_path(copy).unlink()
        copies = write_scope_copies(manifest.directory)
        write_manifest(
            manifest.directory, manifest.month, manifest.start, manifest.end, manifest.files, copies
        )
        print(f"  {manifest.month}: scope copies rewritten in {time.monotonic() - started:.0f} s", flush=True)


def pa_table(batch):
    import pyarrow as pa

    return pa.Table.from_batches([batch])


def build(root: Path, rows: int, jobs: int) -> dict:
    """Build (or finish) the archive; returns what it took."""
    from rempart.ledger import archive_manifest as am
    from rempart.ledger.archive import write_manifest, write_scope_copies

    state = root.parent / f"{root.name}.build"
    state.mkdir(parents=True, exist_ok=True)
    specs = plan(rows, am.MAX_FILE_ROWS)
    started = time.monotonic()
    by_month: dict[int, list[dict]] = {}
    for spec in specs:
        (root / f"{month_of(spec['m']):%Y-%m}").mkdir(parents=True, exist_ok=True)
    restage_old_copies(root)
    tasks = [(s, str(root / f"{month_of(s['m']):%Y-%m}"), str(state)) for s in specs]
    done = 0
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for spec, entry in zip(specs, pool.map(build_file, tasks, chunksize=1), strict=True):
            by_month.setdefault(spec["m"], []).append(entry)
            done += spec["rows"]
            if len(by_month[spec["m"]]) == sum(1 for s in specs if s["m"] == spec["m"]):
                month = month_of(spec["m"])
                start = dt.datetime.combine(month, dt.time(), dt.UTC)
                end = dt.datetime.combine(month_of(spec["m"] + 1), dt.time(), dt.UTC)
                directory = root / f"{month:%Y-%m}"
                if not (directory / am.MANIFEST).exists():
                    copies = write_scope_copies(directory)
                    write_manifest(directory, f"{month:%Y-%m}", start, end, by_month[spec["m"]], copies)
                print(
                    f"  {month:%Y-%m}: {done:,} rows so far, {time.monotonic() - started:.0f} s", flush=True
                )
    chain_bytes = sum(p.stat().st_size for p in root.glob("*/chain-*.parquet"))
    copy_bytes = sum(p.stat().st_size for p in root.glob("*/scope-*.parquet"))
    return {"seconds": time.monotonic() - started, "bytes": chain_bytes + copy_bytes, "chain_bytes": chain_bytes,
            "copy_bytes": copy_bytes, "files": len(specs)}  # fmt: skip


def subjects() -> list[dict]:
    busiest_user = 0 * PERMUTE % USERS + 1
    busiest_org = (busiest_user - 1) % ORGS + 1
    rng = np.random.default_rng(50)
    fifty = sorted(int(r) * PERMUTE % USERS + 1 for r in rng.choice(USERS, 50, replace=False))
    block = busiest_org * 37 % PLAIN_BLOCKS
    base = (90 << 24) + block * 256
    ordinary = f"{base >> 24}.{(base >> 16) & 255}.{(base >> 8) & 255}.0/24"
    return [
        {"label": "(a) busiest account, all months", "criteria": {"user_ids": (busiest_user,)}},
        {"label": "(b) 50 accounts, all months", "criteria": {"user_ids": tuple(fifty)}},
        {"label": "(t) busiest API token, all months", "criteria": {"token_ids": (1,)}},
        {"label": f"(c) one /24 ({ordinary}), all months", "criteria": {"networks": (ordinary,)}},
        {"label": "(d) busiest organisation, all months", "criteria": {"organisation_ids": (busiest_org,)}},
    ]


def measure(root: Path, runs: int, months: int = 0) -> list[dict]:
    """Each scope ``runs`` times, timed from start to end as a scope reads the archive, with its steps."""
    from types import SimpleNamespace

    from rempart.ledger import archive_manifest as am
    from rempart.ledger import archive_read

    results = []
    for subject in subjects():
        criteria = SimpleNamespace(**{**dict(user_ids=(), token_ids=(), organisation_ids=(), networks=(),
                                             channels=(), purposes=(), since=None, until=None),
                                      **subject["criteria"]})  # fmt: skip
        times, steps = [], []
        for _ in range(runs):
            started = time.perf_counter()
            manifests, problems = am.load_all(root)  # as archive_read.for_scope: signatures, then sizes
            manifests = manifests[:months] if months else manifests
            problems += [p for m in manifests for p in am.check_files(m, full=False)]
            assert not problems, problems
            checked = time.perf_counter()
            archive = archive_read.Archive(manifests=manifests)
            archive_read.scoped(archive, criteria)
            scanned = time.perf_counter()
            totals = archive_read.scope_totals(archive, criteria)  # summarise()
            people = archive_read.scope_people_counts(archive, criteria)
            summed = time.perf_counter()
            entries = archive_read.scope_entries(
                archive, criteria
            )  # a freeze's grouped entries, as Python tuples
            ended = time.perf_counter()
            archive.db.close()
            times.append(ended - started)
            steps.append((checked - started, scanned - checked, summed - scanned, ended - summed))
        rows = sum(d + m for d, m in totals.values())
        median_steps = [statistics.median(s[i] for s in steps[1:] or steps) for i in range(4)]
        results.append({"label": subject["label"], "rows": rows, "people": sum(people.values()),
                        "entries": len(entries), "first": times[0], "median": statistics.median(times[1:] or times),
                        "steps": median_steps})  # fmt: skip
        print(f"  {subject['label']}: {rows:,} rows, first {times[0]:.2f} s, median {results[-1]['median']:.2f} s "
              f"(manifests {median_steps[0]:.2f}, scan {median_steps[1]:.2f}, totals and people "
              f"{median_steps[2]:.2f}, entries {median_steps[3]:.2f})", flush=True)  # fmt: skip
    return results


def main(args, out: Path) -> None:
    from rempart.ledger import archive_manifest as am

    root = out / f"ledger-archive-{args.rows}"
    free = os.statvfs(out).f_bavail * os.statvfs(out).f_frsize
    print(f"archive of {args.rows:,} rows in {root} ({free / 1e9:.0f} GB free)", flush=True)
    built = build(root, args.rows, args.jobs)
    print(
        f"built in {built['seconds']:.0f} s: {built['files']} chain files, {built['bytes'] / 1e9:.1f} GB "
        f"({built['chain_bytes'] / args.rows:.1f} + {built['copy_bytes'] / args.rows:.1f} bytes a row)",
        flush=True,
    )
    load = os.getloadavg()[0]
    months = args.archive_months or MONTHS
    measured = sum(m.rows for m in am.load_all(root)[0][:months])
    print(f"scopes over {months} of {MONTHS} months: {measured:,} archived rows", flush=True)
    results = measure(root, args.runs, months)
    lines = [
        f"Archive scope bench: scopes over {measured:,} archived rows ({months} of {MONTHS} months of an archive of "
        f"{args.rows:,}), {built['files']} chain files + {2 * MONTHS} scope copies, "
        f"{built['bytes'] / 1e9:.1f} GB ({built['chain_bytes'] / 1e9:.1f} GB chain files, "
        f"{built['copy_bytes'] / 1e9:.1f} GB copies; build {built['seconds']:.0f} s this run), {os.cpu_count()} CPUs, "
        f"load average {load:.2f} before the scopes, target {TARGET_SECONDS:.0f} s",
        "",
        "| scope | rows matched | people | entries | 1st run | median | manifests | scan | totals, people | entries | vs target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        steps = " | ".join(f"{v:.2f} s" for v in r["steps"])
        lines.append(f"| {r['label']} | {r['rows']:,} | {r['people']:,} | {r['entries']:,} | {r['first']:.2f} s | "
                     f"{r['median']:.2f} s | {steps} | {max(r['first'], r['median']) / TARGET_SECONDS:.0%} |")  # fmt: skip
    report = out / f"scope-archive-{args.rows}-{months}m.md"
    report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"(written to {report})")
