#!/usr/bin/env python3
"""Prise-en-charge latency benchmark (issue 8: p99 ≤ 200 ms for a decision including the ledger write).

    python3 bench/pec.py [--requests 2000] [--concurrency 4] [--workers 2]

Reuses the rights-check benchmark's database (20 M beneficiaries, `python3 bench/rights_check.py --data-only`
builds it) and server setup (gunicorn with rempart.bench_settings, surveillance counting in Redis). Each request is
a class A pair of glasses for a different adult taken from the rights benchmark's hit bodies, sent to
POST /api/v1/pec with a token of scope pec:write. Prints the latency percentiles and the decisions, and writes
bench/out/pec.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rights_check as rc  # noqa: E402 - the sibling benchmark's helpers

TOKEN_SCOPES = ["pec:write"]


def create_token(out: Path) -> None:
    """Child process (Django set up): an organisation's token with the pec:write scope."""
    rc.setup_django()
    from rempart.accounts import tokens
    from rempart.accounts.models import ApiToken, User

    owner = User.objects.get(email=rc.BENCH_EMAIL)
    organisation = owner.membership.organisation
    professional = organisation.professional
    if "OPTI" not in professional.domains:  # the bench shop is an optician for this benchmark
        professional.domains = [*professional.domains, "OPTI"]
        professional.save(update_fields=["domains"])
    for old in ApiToken.objects.filter(
        organisation=organisation, name="bench/pec.py", revoked_at__isnull=True
    ):
        tokens.revoke_token(old)
    _token, raw = tokens.create_token(organisation, "bench/pec.py", TOKEN_SCOPES, owner, lifetime_days=7)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw)


def pec_bodies(bodies: Path, expected: Path, count: int) -> list[str]:
    today = rc.paris_today()
    delivery = (today + dt.timedelta(days=7)).isoformat()
    prescribed = (today - dt.timedelta(days=10)).isoformat()
    out = []
    kinds = expected.read_text().split("\n")
    for body, kind in zip(bodies.read_text().splitlines(), kinds, strict=False):
        if kind != "hit":
            continue
        card = json.loads(body)
        if int(card["birth_date"][:4]) > today.year - 20:
            continue
        card.update(
            domain="OPTI",
            delivery_date=delivery,
            prescription={"date": prescribed, "prescriber_id": "10001234567",
                          "right": {"sphere": "-1.25"}, "left": {"sphere": "-1.00"}},
            lines=[
                {"lpp_code": "2290100", "class": "A", "quantity": 1, "unit_price_eur": "30.00"},
                {"lpp_code": "2290200", "class": "A", "side": "right", "quantity": 1, "unit_price_eur": "32.50"},
                {"lpp_code": "2290200", "class": "A", "side": "left", "quantity": 1, "unit_price_eur": "32.50"},
            ],
        )  # fmt: skip
        out.append(json.dumps(card))
        if len(out) == count:
            break
    return out


def load(port: int, token: str, bodies: list[str], concurrency: int) -> tuple[list[float], dict]:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    queue = iter(bodies)

    def worker() -> None:
        while True:
            with lock:
                body = next(queue, None)
            if body is None:
                return
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/pec", data=body.encode(), method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )  # fmt: skip
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
                    answer = json.loads(response.read())
                    key = answer.get("status") or answer.get("outcome")
            except urllib.error.HTTPError as exc:
                key = f"http {exc.code}"
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                outcomes[key] = outcomes.get(key, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, outcomes


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_pec_token":
        create_token(Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(prog="bench/pec.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=rc.DEFAULT_WORKERS)
    parser.add_argument("--beneficiaries", type=int, default=20_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if (
        Path(sys.prefix).resolve() != rc.VENV.resolve() and rc.VENV_PYTHON.exists()
    ):  # the project's virtualenv
        os.execv(rc.VENV_PYTHON, [str(rc.VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    secrets = rc.bench_secrets()
    env = rc.base_env(secrets, rc.DB_NAME)
    day = rc.paris_today().isoformat()
    stem = f"rights-bodies-{args.beneficiaries}-seed{args.seed}-{day}-100000"
    bodies_path, expected_path = rc.OUT / f"{stem}.jsonl", rc.OUT / f"{stem}.expected"
    if not bodies_path.exists():
        sys.exit(f"run `python3 bench/rights_check.py --data-only` first ({bodies_path.name} is missing)")
    bodies = pec_bodies(bodies_path, expected_path, args.requests)
    rc.run(rc.rempart_cli("migrate", "--verbosity", "0"), env)
    token_file = rc.OUT / "pec-token.txt"
    rc.child("_pec_token", str(token_file), env=env, script=__file__)
    token = token_file.read_text().strip()
    token_file.unlink()
    probe = bodies_path.read_text().split("\n", 1)[0]
    server = rc.Server(rc.surveillance_env(env, "redis"), args.workers, "sync", 1, probe)
    try:
        load(server.port, token, bodies[:50], 2)  # warm-up (those people then have a PEC: renewals refused)
        started = time.monotonic()
        latencies, outcomes = load(server.port, token, bodies[50:], args.concurrency)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    ms = [v * 1000 for v in latencies]
    rows = [
        "| requests | concurrency | requests/s | p50 | p95 | p99 | max | decisions |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| {len(ms):,} | {args.concurrency} | {len(ms) / elapsed:,.0f} | {statistics.median(ms):.1f} ms "
        f"| {percentile(ms, 0.95):.1f} ms | {percentile(ms, 0.99):.1f} ms | {max(ms):.1f} ms "
        f"| {', '.join(f'{k}: {v}' for k, v in sorted(outcomes.items()))} |",
    ]
    verdict = "met" if percentile(ms, 0.99) <= 200 else "MISSED"
    text = "\n".join(
        [
            "# Prise-en-charge latency",
            "",
            f"`python3 bench/pec.py {' '.join(sys.argv[1:])}` — {dt.datetime.now().isoformat(timespec='seconds')}, "
            f"gunicorn {args.workers} × sync, surveillance counting in Redis, 20 M beneficiaries",
            "",
            *rows,
            "",
            f"p99 ≤ 200 ms (decision including the ledger write): {verdict}",
        ]
    )
    (rc.OUT / "pec.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
