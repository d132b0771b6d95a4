#!/usr/bin/env python3
"""Micro-benchmark of the surveillance counters in Redis (docs/redis.md, "Cost").

    .venv/bin/python bench/redis_counters.py [--url redis://127.0.0.1:6379/11] [--checks 20000] [--cluster URL]

Times ``RedisStore.update`` for the two shapes a rights check sends (a hit: the actor's minute and hour, the
organisation's day, the confirmed person in two windows; a miss: the same plus the actor's and the address's
misses), in one process, on 127.0.0.1. Prints µs per check (median of five rounds). The keys are one
throw-away actor's, deleted at the end; nothing else in the database is touched. ``--cluster`` measures the
same against a Redis Cluster (any node's URL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rempart.surveillance.counters import DAY, HOUR, MINUTE, Count, Distinct, RedisStore  # noqa: E402


def shapes(actor: str) -> dict[str, tuple[list[Count], list[Distinct]]]:
    organisation, ip = f"o:bench-{os.getpid()}", "ip:127.0.0.1"
    hit = [Count(actor, MINUTE), Count(actor, HOUR), Count(organisation, DAY)]
    return {
        "hit": (hit, [Distinct(f"{actor}:confirmed", "", (HOUR, DAY))]),
        "miss": (hit + [Count(f"{actor}:miss", HOUR), Count(f"{ip}:miss", HOUR)], []),
    }


def measure(store: RedisStore, checks: int, rounds: int = 5) -> dict[str, float]:
    actor = f"u:bench-{os.getpid()}"
    result = {}
    for name, (counts, distincts) in shapes(actor).items():
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            for i in range(checks):
                members = [Distinct(d.key, str(i % 5000), d.windows) for d in distincts]
                store.update(counts, members)
            timings.append((time.perf_counter() - started) / checks * 1e6)
        result[name] = statistics.median(timings)
    pattern = f"{store.PREFIX}*bench-{os.getpid()}*"
    for key in store.client.scan_iter(pattern):
        store.client.delete(key)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--cluster", default=None, help="a Redis Cluster node's URL (measured as well)")
    parser.add_argument("--checks", type=int, default=20000)
    args = parser.parse_args()
    targets = [("single server", RedisStore(args.url))]
    if args.cluster:
        targets.append(("cluster", RedisStore(args.cluster, cluster=True)))
    for label, store in targets:
        values = measure(store, max(1, min(args.checks, 1_000_000)))
        print(f"{label}: " + ", ".join(f"{k} {v:.1f} µs/check" for k, v in values.items()))


if __name__ == "__main__":
    main()
