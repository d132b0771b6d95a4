"""The soak test's figures and report: series per second, disturbance after each fault, memory, plot, files.

Pure functions over the client's records (bench/soak_load.Record) and the memory samples, so that the rules
(what a disturbance is, what a memory bound is) are tested without a server (rempart/ops/tests/test_soak_smoke.py).
"""

from __future__ import annotations

import bisect
import collections
import csv
import json
import math
from pathlib import Path

QUIET_SECONDS = 5.0  # a disturbance ends with the first window this long where every request was answered
MEMORY_BOUND_SHARE = 0.20  # growth allowed after the warm-up: the larger of 20 % ...
MEMORY_BOUND_BYTES = 50 * 1024 * 1024  # ... and 50 MB
MB = 1024 * 1024


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no value)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def error_kinds(records) -> dict[str, int]:
    return dict(sorted(collections.Counter(r.error for r in records if r.error).items()))


def series(records, seconds: float, latency_window: float = 5.0) -> list[dict]:
    """One row per second of due time: offered, answered, errors by kind, p50/p99 of the trailing window."""
    width = max(1, math.ceil(seconds))
    rows = [
        {"t": t, "offered": 0, "answered": 0, "errors": 0, "kinds": collections.Counter()}
        for t in range(width)
    ]
    latencies: list[list[float]] = [[] for _ in range(width)]
    for r in records:
        t = min(width - 1, int(r.due))
        rows[t]["offered"] += 1
        if r.error:
            rows[t]["errors"] += 1
            rows[t]["kinds"][r.error] += 1
        else:
            rows[t]["answered"] += 1
        if r.done >= 0 and not r.error:
            latencies[t].append(r.latency)
    span = max(1, int(latency_window))
    for t, row in enumerate(rows):
        window = [v for s in range(max(0, t - span + 1), t + 1) for v in latencies[s]]
        row["p50_ms"] = percentile(window, 0.50) * 1000
        row["p99_ms"] = percentile(window, 0.99) * 1000
    return rows


def disturbance(records, mark: float, quiet: float = QUIET_SECONDS) -> dict:
    """After a fault at `mark`: seconds until the first `quiet` s window (by due time) without any error.

    The window starts at the first request due after the last error that precedes it (or at the mark when no
    error followed it). ``seconds`` is None when no such window was seen before the end of the run.
    """
    after = sorted((r for r in records if r.due >= mark), key=lambda r: r.due)
    dues = [r.due for r in after]
    error_dues = [r.due for r in after if r.error]
    if not after:
        return {"seconds": None, "errors": 0, "max_latency_ms": 0.0}
    candidates = [after[0].due] + [
        dues[i] for i in (bisect.bisect_right(dues, e) for e in error_dues) if i < len(dues)
    ]
    end = dues[-1]
    found = None
    for start in candidates:
        following = bisect.bisect_left(error_dues, start)
        next_error = error_dues[following] if following < len(error_dues) else math.inf
        if next_error >= start + quiet and end >= start + quiet - 1.0:
            found = start
            break
    until = found if found is not None else math.inf
    in_window = [r for r in after if r.due < until]
    slow = [r.latency for r in after if r.due < (found or end) + quiet and r.done >= 0]
    return {
        "seconds": None if found is None else round(max(0.0, found - mark), 2),
        "errors": sum(1 for r in in_window if r.error),
        "error_kinds": error_kinds(in_window),
        "max_latency_ms": round(max(slow, default=0.0) * 1000, 1),
    }


def memory_table(samples: dict[str, list[tuple[float, int]]], warmup: float) -> list[dict]:
    """Per process group: memory after the warm-up, at the end (median of the last 3 samples), the bound, a verdict."""
    rows = []
    for group, points in sorted(samples.items()):
        points = [(t, v) for t, v in points if v > 0]
        if not points:
            continue
        settled = [v for t, v in points if t >= warmup] or [points[-1][1]]
        start = settled[0]
        tail = sorted(v for _t, v in points[-3:])
        end = tail[len(tail) // 2]
        allowed = max(MEMORY_BOUND_BYTES, int(start * MEMORY_BOUND_SHARE))
        rows.append({
            "group": group, "start_mb": round(start / MB, 1), "end_mb": round(end / MB, 1),
            "peak_mb": round(max(v for _t, v in points) / MB, 1),
            "growth_mb": round((end - start) / MB, 1), "bound_mb": round(allowed / MB, 1),
            "ok": end - start <= allowed,
        })  # fmt: skip
    return rows


def summarise(records, seconds: float, marks: list[dict], samples: dict, warmup: float) -> dict:
    sent = [r for r in records if r.sent >= 0]
    ok = [r for r in records if not r.error]
    lat = [r.latency for r in ok]
    by_kind = {}
    for kind in sorted({r.kind for r in records}):
        mine = [r for r in records if r.kind == kind]
        good = [r.latency for r in mine if not r.error]
        by_kind[kind] = {
            "offered": len(mine), "answered": len(good), "errors": error_kinds(mine),
            "p50_ms": round(percentile(good, 0.5) * 1000, 1), "p99_ms": round(percentile(good, 0.99) * 1000, 1),
            "outcomes": dict(sorted(collections.Counter(r.outcome for r in mine if not r.error).items())),
        }  # fmt: skip
    faults = []
    for mark in marks:
        faults.append({**mark, **disturbance(records, mark["at"])})
    return {
        "offered": len(records),
        "sent": len(sent),
        "answered": len(ok),
        "errors": error_kinds(records),
        "throughput_rps": round(len(ok) / seconds, 2) if seconds else 0.0,
        "p50_ms": round(percentile(lat, 0.5) * 1000, 1),
        "p99_ms": round(percentile(lat, 0.99) * 1000, 1),
        "max_ms": round(max(lat, default=0.0) * 1000, 1),
        "by_kind": by_kind,
        "faults": faults,
        "memory": memory_table(samples, warmup),
        "quiet_seconds": QUIET_SECONDS,
        "memory_bound": f"growth after warm-up ≤ max({MEMORY_BOUND_BYTES // MB} MB, {MEMORY_BOUND_SHARE:.0%})",
    }


# ---------------------------------------------------------------------------------------------- files


def plot(path: Path, rows: list[dict], marks: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [row["t"] for row in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    ax1.plot(t, [row["offered"] for row in rows], color="0.6", lw=0.8, label="offered /s")
    ax1.plot(t, [row["answered"] for row in rows], color="tab:blue", lw=1.0, label="answered /s")
    ax1.set_ylabel("requests / s")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.plot(t, [row["p50_ms"] for row in rows], color="tab:green", lw=1.0, label="p50 (5 s window)")
    ax2.plot(t, [row["p99_ms"] for row in rows], color="tab:red", lw=1.0, label="p99 (5 s window)")
    ax2.set_yscale("log")
    ax2.set_ylabel("latency (ms, log)")
    ax2.legend(loc="upper right", fontsize=8)
    kinds = sorted({k for row in rows for k in row["kinds"]})
    bottom = [0] * len(rows)
    for kind in kinds:
        values = [row["kinds"].get(kind, 0) for row in rows]
        ax3.bar(t, values, bottom=bottom, width=1.0, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax3.set_ylabel("errors / s")
    ax3.set_xlabel("seconds since the start of the load")
    if kinds:
        ax3.legend(loc="upper right", fontsize=8)
    for mark in marks:
        for ax in (ax1, ax2, ax3):
            ax.axvline(mark["at"], color="black", ls="--", lw=0.9)
        ax1.annotate(mark["label"], (mark["at"], ax1.get_ylim()[1]), fontsize=8, ha="left", va="top",
                     xytext=(3, -3), textcoords="offset points")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_series(path: Path, rows: list[dict]) -> None:
    kinds = sorted({k for row in rows for k in row["kinds"]})
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "offered", "answered", "errors", "p50_ms", "p99_ms", *kinds])
        for row in rows:
            writer.writerow([row["t"], row["offered"], row["answered"], row["errors"], f"{row['p50_ms']:.1f}",
                             f"{row['p99_ms']:.1f}", *(row["kinds"].get(k, 0) for k in kinds)])  # fmt: skip


def table_rows(summary: dict) -> list[tuple[str, str]]:
    """The report's table as (item, value) pairs: report.md and report.csv show the same thing."""
    rows = [
        ("requests offered (due)", f"{summary['offered']:,}"),
        ("requests sent", f"{summary['sent']:,}"),
        ("requests answered (2xx with a reference)", f"{summary['answered']:,}"),
        ("throughput answered", f"{summary['throughput_rps']:.1f}/s"),
        ("latency p50 / p99 / max (from the due time)",
         f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} / {summary['max_ms']:.1f} ms"),
    ]  # fmt: skip
    errors = summary["errors"]
    rows.append(("errors by kind", ", ".join(f"{k} {v:,}" for k, v in errors.items()) or "none"))
    for kind, k in summary["by_kind"].items():
        rows.append((f"{kind}: answered / offered, p50 / p99",
                     f"{k['answered']:,} / {k['offered']:,}, {k['p50_ms']:.1f} / {k['p99_ms']:.1f} ms"))  # fmt: skip
    for fault in summary["faults"]:
        took = "not recovered before the end" if fault["seconds"] is None else f"{fault['seconds']:.1f} s"
        kinds = ", ".join(f"{k} {v}" for k, v in fault.get("error_kinds", {}).items()) or "no error"
        rows.append((f"{fault['label']} at {fault['at']:.0f} s (restart took {fault['took']:.1f} s): disturbance",
                     f"{took} ({kinds}; slowest answer {fault['max_latency_ms']:.0f} ms)"))  # fmt: skip
    ledger = summary.get("ledger", {})
    if ledger:
        rows.append(("ledger rows for answered requests (primary)",
                     f"{ledger['found']:,} / {ledger['answered']:,} — lost {ledger['lost']:,}"))  # fmt: skip
        if "replica_found" in ledger:
            rows.append(
                ("the same rows on the replica", f"{ledger['replica_found']:,} / {ledger['answered']:,}")
            )
    for name, check in summary.get("checks", {}).items():
        rows.append((name, f"exit {check['exit']} — {check['last_line']}"))
    for m in summary["memory"]:
        rows.append((f"memory {m['group']} (PSS)",
                     f"{m['start_mb']:.0f} → {m['end_mb']:.0f} MB (peak {m['peak_mb']:.0f}, bound +{m['bound_mb']:.0f} MB)"
                     f" {'ok' if m['ok'] else 'EXCEEDED'}"))  # fmt: skip
    for e in summary.get("exits", []):
        rows.append((f"{e['process']} exited unasked", f"code {e['code']} at {e['at']:.0f} s (restarted)"))
    rows.append(("verdict", summary.get("verdict", "")))
    return rows


def write_files(out: Path, summary: dict, rows: list[dict], header: list[str]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    pairs = table_rows(summary)
    with open(out / "report.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "value"])
        writer.writerows(pairs)
    write_series(out / "timeseries.csv", rows)
    lines = [
        "# Soak test with faults",
        "",
        *header,
        "",
        "![soak](soak.png)",
        "",
        "| item | value |",
        "|---|---|",
    ]
    lines += [f"| {item} | {value} |" for item, value in pairs]
    missing = summary.get("ledger", {}).get("missing", [])
    if missing:
        lines += ["", f"Answered requests without a ledger row ({len(missing)}):", ""]
        lines += [f"- {ref}" for ref in missing[:200]]
    lines += ["", "Files: `requests.csv` (one line per request: kind, due/sent/done times, status, error kind, "
              "outcome, ledger reference), `timeseries.csv` (per second), `memory.csv` (samples), `summary.json`, "
              "`logs/`.", ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
