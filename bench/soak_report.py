"""The soak test's rules and report: fault windows, error accounting, ledger accounting, memory, plot, files.

Pure functions over the client's records (bench/soak_load.Record), the ledger rows found for them and the memory
samples, so that every rule that decides the verdict (what a fault window is, which errors a restart may cost,
what a lost ledger row is, what a memory bound is) is tested without a server (rempart/ops/tests/test_soak_smoke.py).
"""

from __future__ import annotations

import bisect
import collections
import csv
import json
import math
from pathlib import Path

QUIET_SECONDS = 5.0  # a fault's window ends with the first stretch this long where every request was answered
MEMORY_BOUND_SHARE = 0.20  # growth allowed after the warm-up: the larger of 20 % ...
MEMORY_BOUND_BYTES = 50 * 1024 * 1024  # ... and 50 MB
MB = 1024 * 1024
# What a request may meet while PostgreSQL or Redis restarts: the API's JSON 503, no answer in time, a connection
# closed or refused, or the client's own cap. Anything else (a 500, an HTML page, another 4xx/5xx, a 2xx without
# its reference) is a defect wherever it happens, and any error at all outside a fault's window is one too.
RESTART_ERRORS = frozenset({"http_503:unavailable", "timeout", "reset", "refused", "client_overload"})
# The gate's purpose that each endpoint's ledger row must carry.
PURPOSES = {"rights": "rights_check", "pec": "pec", "claim": "claim"}
# Process groups whose memory is bounded on their PSS without shared memory rather than on RSS: a PostgreSQL
# process's RSS (and PSS) counts every page of shared buffers it has touched, so it grows with the pages read (up
# to shared_buffers, as the database grows), not with a leak; what a leak would grow is the processes' own memory.
PSS_GROUPS = ("postgres primary", "postgres replica")


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
        t = min(width - 1, max(0, int(r.due)))
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


# ---------------------------------------------------------------------------------------------- faults


def _met_fault(r, mark: float) -> bool:
    """The request was due after the fault began, or was still out when it began (its answer came after)."""
    return r.due >= mark or r.done >= mark


def disturbance(records, mark: float, quiet: float = QUIET_SECONDS, until: float = math.inf) -> dict:
    """After a fault at `mark`: how long until the first `quiet` s stretch (by due time) without any error.

    The fault's window holds the requests that met the fault (due after `mark`, or out when it began) and were due
    before the quiet stretch began; `until` (the next fault) bounds the search. ``seconds`` is None when no quiet
    stretch came before `until` or the end of the run; the window then runs to `until`. ``members`` are the
    window's request numbers, so that errors outside every window can be found.
    """
    after = sorted((r for r in records if _met_fault(r, mark) and r.due < until), key=lambda r: r.due)
    if not after:
        return {"seconds": None, "end": until, "errors": 0, "error_kinds": {}, "max_latency_ms": 0.0,
                "members": set()}  # fmt: skip
    dues = [r.due for r in after]
    error_dues = [r.due for r in after if r.error]
    candidates = [max(mark, after[0].due)] + [
        dues[i] for i in (bisect.bisect_right(dues, e) for e in error_dues) if i < len(dues)
    ]
    last = dues[-1]
    found = None
    for start in candidates:
        following = bisect.bisect_left(error_dues, start)
        next_error = error_dues[following] if following < len(error_dues) else math.inf
        if next_error >= start + quiet and last >= start + quiet - 1.0:
            found = start
            break
    end = found if found is not None else until
    in_window = [r for r in after if r.due < end]
    slow = [
        r.latency for r in after if r.due < (found if found is not None else last) + quiet and r.done >= 0
    ]
    return {
        "seconds": None if found is None else round(max(0.0, found - mark), 2),
        "end": end,
        "errors": sum(1 for r in in_window if r.error),
        "error_kinds": error_kinds(in_window),
        "max_latency_ms": round(max(slow, default=0.0) * 1000, 1),
        "members": {r.n for r in in_window},
    }


def fault_table(
    records, marks: list[dict], quiet: float = QUIET_SECONDS
) -> tuple[list[dict], dict[str, int]]:
    """Each fault with its disturbance, and the errors (by kind) that fall in no fault's window."""
    ordered = sorted(marks, key=lambda m: m["at"])
    faults, inside = [], set()
    for i, mark in enumerate(ordered):
        until = ordered[i + 1]["at"] if i + 1 < len(ordered) else math.inf
        found = disturbance(records, mark["at"], quiet, until)
        inside |= found.pop("members")
        faults.append({**mark, **found})
    outside = error_kinds(r for r in records if r.error and r.n not in inside)
    return faults, outside


# ---------------------------------------------------------------------------------------------- ledger


def ledger_accounting(records, rows: dict[str, list[tuple[str, int | None]]], token_rows: int,
                      token_id: int | None) -> dict:  # fmt: skip
    """Match every answered request with its ledger row.

    ``rows``: for each reference that was looked up, the (purpose, token id) of every ledger row carrying it.
    ``token_rows``: every ledger row the soak's token wrote (answered or not).

    A request is *found* when exactly its reference has a row of the soak's token with the purpose of its endpoint;
    *lost* when no row carries the reference; *mismatched* when rows carry it but none with that token and purpose.
    A reference answered twice, or carried by several rows, is a *duplicate*. The token's rows not matched by any
    answer are *unanswered rows*: requests recorded whose answer never reached the client (a 503 or a timeout after
    the commit); there can be no more of them than requests sent and not answered.
    """
    answered = [r for r in records if r.answered]
    references = collections.Counter(r.reference for r in answered)
    lost, mismatched, found = [], [], 0
    for r in answered:
        carried = rows.get(r.reference, [])
        if not carried:
            lost.append(r.reference)
        elif (PURPOSES.get(r.kind), token_id) in carried:
            found += 1
        else:
            mismatched.append(r.reference)
    duplicates = sorted(
        {ref for ref, n in references.items() if n > 1} | {ref for ref, c in rows.items() if len(c) > 1}
    )
    matched_rows = sum(1 for ref in references for purpose, tok in rows.get(ref, []) if tok == token_id)
    unanswered_possible = sum(1 for r in records if r.sent >= 0 and not r.answered)
    unanswered_rows = token_rows - matched_rows
    return {
        "answered": len(answered),
        "found": found,
        "lost": len(lost),
        "mismatched": len(mismatched),
        "duplicates": len(duplicates),
        "token_rows": token_rows,
        "unanswered_rows": unanswered_rows,
        "unanswered_possible": unanswered_possible,
        "missing": sorted(lost)[:1000],
        "mismatched_references": sorted(mismatched)[:1000],
        "duplicate_references": duplicates[:1000],
        "ok": not lost
        and not mismatched
        and not duplicates
        and 0 <= unanswered_rows <= unanswered_possible
        and found == len(answered),
    }


# ---------------------------------------------------------------------------------------------- memory


def _measured(group: str, point: tuple) -> int:
    """The bounded value of a sample: RSS, or for the PSS_GROUPS the PSS less its shared-memory part."""
    if group in PSS_GROUPS:
        return point[2] - (point[4] if len(point) > 4 else 0)
    return point[1]


def memory_table(samples: dict[str, list[tuple]], warmup: float) -> list[dict]:
    """Per process group: memory after the warm-up, at the end (median of the last 3 samples), peak, bound, verdict.

    A sample is (t, rss_bytes, pss_bytes, processes[, pss_shmem_bytes]). The bound is on RSS, or on PSS without
    shared memory for the PSS_GROUPS; it is the larger of MEMORY_BOUND_BYTES and MEMORY_BOUND_SHARE of the value
    after the warm-up.
    """
    rows = []
    for group, points in sorted(samples.items()):
        points = [p for p in points if p[1] > 0]
        if not points:
            continue
        settled = [p for p in points if p[0] >= warmup] or [points[-1]]
        first = settled[0]
        tail = sorted(points[-3:], key=lambda p: _measured(group, p))
        last = tail[len(tail) // 2]
        start, end = _measured(group, first), _measured(group, last)
        allowed = max(MEMORY_BOUND_BYTES, int(start * MEMORY_BOUND_SHARE))
        rows.append({
            "group": group, "measure": "PSS without shared memory" if group in PSS_GROUPS else "RSS",
            "processes": f"{first[3]} → {points[-1][3]}",
            "start_rss_mb": round(first[1] / MB, 1), "end_rss_mb": round(last[1] / MB, 1),
            "start_pss_mb": round(first[2] / MB, 1), "end_pss_mb": round(last[2] / MB, 1),
            "start_mb": round(start / MB, 1), "end_mb": round(end / MB, 1),
            "peak_mb": round(max(_measured(group, p) for p in points) / MB, 1),
            "growth_mb": round((end - start) / MB, 1), "bound_mb": round(allowed / MB, 1),
            "ok": end - start <= allowed,
        })  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------- summary


def summarise(records, seconds: float, marks: list[dict], samples: dict, warmup: float) -> dict:
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
    faults, outside = fault_table(records, marks)
    return {
        "offered": len(records),
        "sent": sum(1 for r in records if r.sent >= 0),
        "answered": len(ok),
        "errors": error_kinds(records),
        "errors_outside_faults": outside,
        "defects": {k: v for k, v in error_kinds(records).items() if k not in RESTART_ERRORS},
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


def problems(summary: dict) -> list[str]:
    """Everything that makes the run fail (exit 1); an empty list is a pass."""
    found = []
    ledger = summary.get("ledger") or {}
    if not summary.get("answered"):
        found.append("no request was answered")
    if ledger.get("lost"):
        found.append(f"{ledger['lost']} answered requests without a ledger row")
    if ledger.get("mismatched"):
        found.append(
            f"{ledger['mismatched']} answered requests whose ledger row has another purpose or token"
        )
    if ledger.get("duplicates"):
        found.append(f"{ledger['duplicates']} references answered or recorded more than once")
    if ledger and ledger.get("found") != ledger.get("answered"):
        found.append(f"ledger rows found for {ledger.get('found')} of {ledger.get('answered')} answers")
    if ledger and not 0 <= ledger.get("unanswered_rows", 0) <= ledger.get("unanswered_possible", 0):
        found.append(f"{ledger['unanswered_rows']} ledger rows of the token match no answer, "
                     f"more than the {ledger['unanswered_possible']} requests left unanswered")  # fmt: skip
    if ledger.get("replica_caught_up") is False:
        found.append("the replica did not catch up with the primary within 60 s after the load")
    if "replica_found" in ledger and ledger["replica_found"] != ledger.get("answered"):
        found.append(f"the replica has {ledger['replica_found']} of the {ledger['answered']} answered rows")
    for name, check in summary.get("checks", {}).items():
        if check.get("exit"):
            found.append(f"{name} exited {check['exit']}")
    for kind, n in summary.get("defects", {}).items():
        found.append(f"{n} × {kind} (not what a restart may cost)")
    for kind, n in summary.get("errors_outside_faults", {}).items():
        found.append(f"{n} × {kind} outside the fault windows")
    for fault in summary.get("faults", []):
        if "failure" in fault:
            found.append(f"{fault['label']} failed: {fault['failure']}")
        elif fault.get("seconds") is None:
            found.append(f"no recovery after the {fault['label']}")
    for m in summary.get("memory", []):
        if not m["ok"]:
            found.append(f"memory of {m['group']} grew {m['growth_mb']:.0f} MB ({m['measure']}), "
                         f"past its bound of {m['bound_mb']:.0f} MB")  # fmt: skip
    for e in summary.get("exits", []):
        found.append(f"{e['process']} exited ({e['code']}) at {e['at']:.0f} s")
    probe = summary.get("job_probe")
    if probe is not None and probe.get("status") != "succeeded":
        found.append(f"the worker did not run a job after the restarts ({probe.get('status')})")
    return found


# ---------------------------------------------------------------------------------------------- files


def plot(path: Path, rows: list[dict], marks: list[dict], title: str) -> None:
    """Throughput, p50/p99, errors by kind; a dashed line at each fault (``marks``: the faults of summarise, with
    their errors and recovery, or the bare marks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [row["t"] for row in rows]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 7.5), sharex=True)
    ax1.plot(t, [row["offered"] for row in rows], color="0.6", lw=0.8, label="offered /s")
    ax1.plot(t, [row["answered"] for row in rows], color="tab:blue", lw=0.9, label="answered /s")
    ax1.set_ylabel("requests / s")
    ax1.set_ylim(bottom=0)
    ax1.legend(loc="lower left", fontsize=8)
    ax2.plot(
        t, [max(row["p50_ms"], 0.1) for row in rows], color="tab:green", lw=0.9, label="p50 (5 s window)"
    )
    ax2.plot(t, [max(row["p99_ms"], 0.1) for row in rows], color="tab:red", lw=0.9, label="p99 (5 s window)")
    ax2.set_yscale("log")
    ax2.set_ylabel("latency (ms, log)")
    ax2.legend(loc="upper left", fontsize=8)
    # Errors in bins wide enough to be seen on a long run (1 s up to 5 min of load, 6 s for 30 min).
    width = max(1, math.ceil(len(rows) / 300))
    starts = list(range(0, len(rows), width))
    kinds = sorted({k for row in rows for k in row["kinds"]})
    bottom = [0] * len(starts)
    for kind in kinds:
        values = [sum(row["kinds"].get(kind, 0) for row in rows[b : b + width]) for b in starts]
        ax3.bar(starts, values, bottom=bottom, width=width, align="edge", label=kind, zorder=3)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax3.set_ylabel(f"errors per {width} s" if width > 1 else "errors / s")
    ax3.set_xlabel("seconds since the start of the load")
    if kinds:
        ax3.legend(loc="upper left", fontsize=8)
    else:
        ax3.text(0.5, 0.5, "no error", transform=ax3.transAxes, ha="center", va="center", color="0.5")
    for mark in marks:
        for ax in (ax1, ax2, ax3):
            ax.axvline(mark["at"], color="0.35", ls="--", lw=0.7, zorder=1)
        ax1.annotate(mark["label"], (mark["at"], ax1.get_ylim()[1]), fontsize=8, ha="left", va="top",
                     xytext=(3, -3), textcoords="offset points")  # fmt: skip
        if "errors" in mark:
            took = "no recovery" if mark.get("seconds") is None else f"{mark['seconds']:.1f} s"
            ax3.annotate(f"{mark['errors']} errors, {took}", (mark["at"], ax3.get_ylim()[1]), fontsize=8,
                         ha="left", va="top", xytext=(4, -14), textcoords="offset points")  # fmt: skip
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_series(path: Path, rows: list[dict]) -> None:
    kinds = sorted({k for row in rows for k in row["kinds"]})
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t", "offered", "answered", "errors", "p50_ms", "p99_ms", *kinds])
        for row in rows:
            writer.writerow([row["t"], row["offered"], row["answered"], row["errors"], f"{row['p50_ms']:.1f}",
                             f"{row['p99_ms']:.1f}", *(row["kinds"].get(k, 0) for k in kinds)])  # fmt: skip


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def table_rows(summary: dict) -> list[tuple[str, str]]:
    """The report's table as (item, value) pairs: report.md and report.csv show the same thing."""
    rows = [
        ("requests offered (due)", f"{summary['offered']:,}"),
        ("requests sent", f"{summary['sent']:,}"),
        ("requests answered (2xx with a reference)", f"{summary['answered']:,}"),
        ("throughput answered", f"{summary['throughput_rps']:.1f}/s"),
        ("latency p50 / p99 / max (from the due time)",
         f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f} / {summary['max_ms']:.1f} ms"),
        ("errors by kind", _kinds(summary["errors"])),
        *([("warm-up before the figures: answered / offered, errors",
            f"{w['answered']:,} / {w['offered']:,}, {_kinds(w['errors'])}")] if (w := summary.get("warmup")) else []),
        ("errors outside the fault windows", _kinds(summary.get("errors_outside_faults", {}))),
        ("errors no restart excuses (500, HTML, other codes)", _kinds(summary.get("defects", {}))),
    ]  # fmt: skip
    for kind, k in summary["by_kind"].items():
        rows.append((f"{kind}: answered / offered, p50 / p99",
                     f"{k['answered']:,} / {k['offered']:,}, {k['p50_ms']:.1f} / {k['p99_ms']:.1f} ms"))  # fmt: skip
    for fault in summary["faults"]:
        took = (
            "no recovery before the next fault or the end"
            if fault["seconds"] is None
            else f"{fault['seconds']:.1f} s"
        )
        extra = f"; {fault['note']}" if fault.get("note") else ""
        rows.append((f"{fault['label']} at {fault['at']:.0f} s (the restart took {fault['took']:.1f} s): errors for",
                     f"{took}: {fault['errors']:,} errors ({_kinds(fault.get('error_kinds', {}))}); "
                     f"slowest answer {fault['max_latency_ms']:.0f} ms{extra}"))  # fmt: skip
    ledger = summary.get("ledger", {})
    if ledger:
        rows.append(("ledger rows for answered requests (primary; reference, token and purpose matched)",
                     f"{ledger['found']:,} / {ledger['answered']:,} — lost {ledger['lost']:,}, "
                     f"mismatched {ledger['mismatched']:,}, duplicates {ledger['duplicates']:,}"))  # fmt: skip
        rows.append(("ledger rows of the token without an answer (recorded, answer lost)",
                     f"{ledger['unanswered_rows']:,} (at most {ledger['unanswered_possible']:,}: "
                     "requests sent and not answered)"))  # fmt: skip
        if "replica_found" in ledger:
            rows.append(
                ("the same rows on the replica", f"{ledger['replica_found']:,} / {ledger['answered']:,}")
            )
    if ready := summary.get("readyz"):
        replica = ready.get("replica") or {}
        rows.append(("/readyz after the load", f"{ready.get('status')}; replica {replica.get('state', 'none')}, "
                     f"lag {replica.get('lag_seconds')} s"))  # fmt: skip
    for name, check in summary.get("checks", {}).items():
        rows.append((name, f"exit {check['exit']} ({check['seconds']:.0f} s) — {check['last_line']}"))
    probe = summary.get("job_probe")
    if probe is not None:
        rows.append(("a job queued after the restarts (`ledger.verify`)",
                     f"{probe.get('status')} in {probe.get('seconds', 0):.1f} s; workers alive: "
                     f"{probe.get('workers_alive', '?')}"))  # fmt: skip
    for m in summary["memory"]:
        measured = (
            "" if m["measure"] == "RSS" else f", {m['measure']} {m['start_mb']:.0f} → {m['end_mb']:.0f} MB"
        )
        rows.append((f"memory {m['group']} ({m['processes']} processes; bound on {m['measure']})",
                     f"RSS {m['start_rss_mb']:.0f} → {m['end_rss_mb']:.0f} MB, PSS {m['start_pss_mb']:.0f} → "
                     f"{m['end_pss_mb']:.0f} MB{measured}; growth {m['growth_mb']:+.0f} MB (peak {m['peak_mb']:.0f}, "
                     f"bound +{m['bound_mb']:.0f} MB) {'ok' if m['ok'] else 'EXCEEDED'}"))  # fmt: skip
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
    ledger = summary.get("ledger", {})
    for title, key in (("without a ledger row", "missing"), ("with another purpose or token", "mismatched_references"),
                       ("answered or recorded more than once", "duplicate_references")):  # fmt: skip
        if ledger.get(key):
            lines += ["", f"Answered requests {title} ({len(ledger[key])}):", ""]
            lines += [f"- {ref}" for ref in ledger[key][:200]]
    if summary.get("problems"):
        lines += ["", "Problems:", "", *(f"- {p}" for p in summary["problems"])]
    lines += ["", "Files: `requests.csv` (one line per request: kind, due/sent/done times, status, error kind, "
              "outcome, ledger reference), `timeseries.csv` (per second), `memory.csv` (samples), `summary.json`, "
              "`logs/`.", ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
