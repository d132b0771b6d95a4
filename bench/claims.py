#!/usr/bin/env python3
"""Claims throughput benchmark (issue 13, docs/benchmarks.md "Claims").

    python3 bench/claims.py [--invoices 1000000] [--beneficiaries 2000000] [--lot-size 1000]
                            [--db postgres|sqlite] [--quick] [--profile] [--rebuild]

Steps (each in a child process with its own environment, production mode, bench/out/var/secrets.env):

1. **Beneficiaries.** ``rempart generate --beneficiaries M --seed 1`` into a PostgreSQL database
   ``rempart_bench_claims_b<M>`` (rights_check.ensure_data: kept and reused between runs). Each run copies it
   (``CREATE DATABASE … TEMPLATE``) into ``rempart_bench_claims``, so a re-run never reloads and always starts
   from the same registry. ``--db sqlite`` uses ``bench/out/claims/bench-<M>.sqlite3`` the same way.
2. **Setup (not timed).** Professional organisations (pharmacies, opticians, audiologists) and an API token of
   each; the cards of sampled beneficiaries are regenerated from the synthetic generator (same seed and day,
   the database is never read for them); the PECs for the optics and audiology invoices are asked **through the
   real service** (``authorizations.service.request_pec``, with its gate ledger row). Then the lots are written
   in the lot format v1 (``lot_format.write_lot``) with the mix below, half for the run with surveillance on,
   half for the run with surveillance off.
3. **Runs (timed).** Each lot goes through ``claims.lots.receive_lot`` exactly as ``rempart import-claims``
   and the API do (whole-file pass, gate identification and its ledger row, adjudication, storage, PEC
   consumption, money postings), as the organisation's API token. Surveillance on: Redis counters on
   127.0.0.1:6379 db 12 (``REMPART_SURVEILLANCE_STORE=redis``, the production configuration); off:
   ``REMPART_SURVEILLANCE_ENABLED=0``. A third child sends a few lots ten times bigger, for the peak RSS.
4. ``rempart accounts check`` and ``rempart ledger verify --incremental``, the row counts, then the table
   (also written to bench/out/claims.md). ``--profile`` records the surveillance-on run with py-spy.

Mix (per invoice): 78 % pharmacy (1 to 3 CIP13 lines with valid keys, AMO 65 % of the base and the rest
claimed), 6 % optics and 2 % audiology against granted PECs, and rejections of several kinds: an unknown PEC,
a PEC already consumed by an earlier invoice, a duplicate of an earlier invoice under a new number, a domain the
organisation does not practise, a care date beyond the time limit, totals that do not add up; 2 % no-matches
(another valid NIR, a birth date a year off) and 1 % invoices re-sent identically (replayed). Rights closed at
the care date come with the synthetic registry (about 5 % of its people).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rights_check as rc  # noqa: E402 - the sibling benchmark's helpers (venv, secrets, data, Django)

OUT = rc.OUT / "claims"
RUN_DB = "rempart_bench_claims"
REDIS_DB = 12  # surveillance counters of this benchmark (the surveillance tests use 15)
TARGET = 2000  # invoices/s end to end
MIX = (  # kind, share
    ("pharmacy", 0.78),
    ("optics", 0.06),
    ("audio", 0.02),
    ("unknown_pec", 0.015),
    ("consumed_pec", 0.015),
    ("duplicate", 0.02),
    ("wrong_domain", 0.015),
    ("too_old", 0.015),
    ("bad_totals", 0.01),
    ("no_match", 0.02),
    ("replay", 0.01),
)
OPTICS_LINES = [("2290100", "A", None, 3000), ("2290200", "A", "right", 3250), ("2290200", "A", "left", 3250)]
AUDIO_LINES = [("2390100", "I", "right", 95000), ("2390100", "I", "left", 95000)]
KINDS = {"PHAR": 12, "OPTI": 3, "AUDI": 2}  # organisations of each domain


def say(message: str) -> None:
    rc.say(message)


def cip13(rng: random.Random) -> str:
    body = f"34009{rng.randint(0, 9_999_999):07d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def finess(n: int) -> str:
    body = f"75{n:06d}"
    digits = [int(d) for d in body]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return body + str((10 - total % 10) % 10)


# ---------------------------------------------------------------------------------------------- setup


def _people(seed: int, beneficiaries: int, wanted: int, day: dt.date) -> list[list[str]]:
    """Rows of `wanted` people regenerated from the synthetic generator (the database is not read)."""
    import math
    import multiprocessing

    from rempart.registry import synthetic

    specs = synthetic.plan_insurers(seed, beneficiaries)
    tasks = [
        (spec, seed, day, math.ceil(wanted * spec.beneficiaries / beneficiaries * 1.1) + 2, 7)
        for spec in specs
        if spec.beneficiaries
    ]
    rows = []
    with multiprocessing.get_context("fork").Pool(processes=2) as pool:
        for _index, picked in pool.imap_unordered(rc._sample_insurer, tasks):
            rows += picked
    rows.sort(key=lambda row: (row[0], row[1], row[12]))
    random.Random(f"claims-{seed}").shuffle(rows)
    adults = [row for row in rows if int(row[11][:4]) <= day.year - 21]
    return adults[:wanted]


_PEC_CONTEXT: dict = {}


def _ask_pecs(tasks: list, by_pk: dict, today: dt.date):
    """The PECs asked through the real service (gate, ledger row, engine) by two processes at once."""
    import multiprocessing

    from django.db import connections

    _PEC_CONTEXT.update(actors={pk: actor for pk, (_o, actor) in by_pk.items()}, today=today)
    connections.close_all()  # each worker opens its own connection
    halves = [tasks[0::2], tasks[1::2]]
    results = []
    with multiprocessing.get_context("fork").Pool(processes=2) as pool:
        for part in pool.imap_unordered(_ask_pec_part, halves):
            results += part
    return results


def _ask_pec_part(tasks: list) -> list:
    from django.db import connections

    from rempart.authorizations import rules as pec_rules
    from rempart.authorizations.optics import Correction
    from rempart.authorizations.service import request_pec
    from rempart.rights.cards import read_card_data

    today, actors, done = _PEC_CONTEXT["today"], _PEC_CONTEXT["actors"], []
    for domain, org_pk, person in tasks:
        card = read_card_data(**{"birth_rank": None, **person}, domain=domain, today=today)
        optics = domain == "OPTI"
        prescription = pec_rules.Prescription(
            date=today - dt.timedelta(days=20), prescriber_id="10001234567",
            right=Correction(sphere=Decimal("-1.25")) if optics else None,
            left=Correction(sphere=Decimal("-1.00")) if optics else None,
        )  # fmt: skip
        lines = OPTICS_LINES if optics else AUDIO_LINES
        request = pec_rules.PecRequest(
            domain, today, prescription,
            tuple(pec_rules.QuoteLine(code, klass, side, 1, price) for code, klass, side, price in lines),
        )  # fmt: skip
        try:
            outcome = request_pec(actors[org_pk], dataclasses.replace(card, care_date=today), request)
        except Exception as exc:  # noqa: BLE001 - counted and reported, the setup goes on
            done.append((domain, org_pk, person, None, type(exc).__name__))
            continue
        if outcome.pec is None or outcome.pec.status != "accepted":
            done.append((domain, org_pk, person, None, "not granted" if outcome.pec else "no match"))
            continue
        done.append((domain, org_pk, person, outcome.pec.pk, ""))
    connections.close_all()
    return done


def _invoice(number: str, person: dict, domain: str, lines: list[dict], care: dt.date, **extra) -> dict:
    body = {
        "invoice_number": number,
        "invoice_date": care.isoformat(),
        "care_date": care.isoformat(),
        **person,
        "birth_rank": person.get("birth_rank"),
        "domain": domain,
        "prescriber_rpps": "10001234565",  # Luhn-valid; every domain here needs a prescription
        "pec_number": None,
        "lines": lines,
        "total_price_cents": sum(line["unit_price_cents"] * line["quantity"] for line in lines),
        "total_amo_cents": sum(line["amo_paid_cents"] for line in lines),
        "total_amc_cents": sum(line["amc_claimed_cents"] for line in lines),
    }
    body.update(extra)
    return body


def _pharmacy_lines(rng: random.Random) -> list[dict]:
    lines = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        price, quantity = rng.randint(150, 4000), rng.choice((1, 1, 1, 2))
        base = price * quantity
        amo = base * 65 // 100
        lines.append({"code_system": "CIP13", "code": cip13(rng), "lpp_class": None, "side": None,
                      "quantity": quantity, "unit_price_cents": price, "base_cents": base,
                      "amo_paid_cents": amo, "amc_claimed_cents": base - amo})  # fmt: skip
    return lines


def _pec_lines(pec) -> list[dict]:
    lines = []
    for line in pec.decision["lines"]:
        if line.get("status") != "accepted":
            continue
        lines.append({"code_system": "LPP", "code": line["lpp_code"], "lpp_class": line.get("class") or None,
                      "side": line.get("side") or None, "quantity": 1, "unit_price_cents": line["price_cents"],
                      "base_cents": line["base_cents"], "amo_paid_cents": line["amo_cents"],
                      "amc_claimed_cents": line["amc_cents"]})  # fmt: skip
    return lines


def setup(args) -> None:
    """Child (Django set up): organisations, tokens, PECs through the service, and the lot files."""
    rc.setup_django()
    from django.utils import timezone

    from rempart.accounts import tokens
    from rempart.accounts.models import Membership, Organisation, User
    from rempart.authorizations.models import new_number as new_pec_number
    from rempart.claims.lot_format import write_lot
    from rempart.gate import Actor
    from rempart.ledger.models import Disclosure
    from rempart.lib.identifiers import nir_check_key
    from rempart.registry.models import Professional

    today = timezone.localdate()
    rng = random.Random(f"claims-bench-{args.seed}")
    owner, _ = User.objects.get_or_create(email="claims-bench@bench.invalid")
    orgs = {}  # domain -> [(organisation, actor)]
    n = 0
    for domain, count in KINDS.items():
        for _ in range(count):
            n += 1
            professional = Professional.objects.create(
                finess=finess(n), name=f"Banc {domain} {n}", domains=[domain]
            )
            organisation = Organisation.objects.create(
                kind="professional", name=professional.name, professional=professional
            )
            token, _raw = tokens.create_token(
                organisation, "bench/claims.py", ["pec:write", "claims:write"], owner, lifetime_days=7
            )
            actor = Actor(
                channel=Disclosure.Channel.API,
                organisation_id=organisation.pk,
                token_id=token.pk,
                ip="127.0.0.1",
                session_ref=f"token:{token.prefix}",
            )
            orgs.setdefault(domain, []).append((organisation, actor))
    if not Membership.objects.filter(user=owner).exists():
        Membership.objects.create(user=owner, organisation=orgs["PHAR"][0][0])
    shares = dict(MIX)
    people_needed = int(args.invoices * 1.05) + 100
    say(f"regenerating the cards of {people_needed:,} people …")
    people = [rc._presented(row) for row in _people(args.seed, args.beneficiaries, people_needed, today)]
    pec_count = round(args.invoices * (shares["optics"] + shares["audio"] + shares["consumed_pec"])) + 4
    say(f"asking {pec_count:,} PECs through authorizations.service.request_pec …")
    started = time.monotonic()
    pecs = {"OPTI": [], "AUDI": []}
    person_iter = iter(people)
    refused = collections.Counter()
    by_pk = {
        organisation.pk: (organisation, actor) for domain in orgs for organisation, actor in orgs[domain]
    }
    while sum(len(v) for v in pecs.values()) < pec_count:
        missing = pec_count - sum(len(v) for v in pecs.values())
        tasks = []
        for _ in range(int(missing * 1.1) + 2):
            domain = "OPTI" if rng.random() < 0.75 else "AUDI"
            organisation, _actor = rng.choice(orgs[domain])
            tasks.append((domain, organisation.pk, next(person_iter)))
        for domain, org_pk, person, pec_pk, failure in _ask_pecs(tasks, by_pk, today):
            if failure:
                refused[failure] += 1
                if sum(refused.values()) > pec_count:
                    sys.exit(f"PEC requests keep failing: {dict(refused)}")
                continue
            if len(pecs["OPTI"]) + len(pecs["AUDI"]) < pec_count:
                pecs[domain].append((pec_pk, person, by_pk[org_pk][0]))
    from rempart.authorizations.models import Pec

    found = Pec.objects.in_bulk([pk for domain in pecs for pk, _p, _o in pecs[domain]])
    pecs = {domain: [(found[pk], person, org) for pk, person, org in pecs[domain]] for domain in pecs}
    say(f"{pec_count:,} PECs granted in {time.monotonic() - started:.0f} s (not granted: {dict(refused)})")
    pec_pool = [*pecs["OPTI"], *pecs["AUDI"]]
    rng.shuffle(pec_pool)

    kinds = [kind for kind, _share in MIX]
    weights = [share for _kind, share in MIX]
    old = today - dt.timedelta(days=800)
    sent: list[tuple[object, dict]] = []  # (organisation, invoice) of earlier pharmacy invoices
    consumed: list[tuple[object, dict]] = []
    done: list[tuple[object, dict]] = []  # invoices of lots already written (for replays)
    pharmacy: set[str] = set()  # numbers of the plain pharmacy invoices
    per_org = collections.defaultdict(list)  # organisation id -> invoices of the current lot
    counters = collections.Counter()
    written = {"on": [], "off": []}
    lot_no = collections.Counter()

    def flush(organisation, mode: str) -> None:
        invoices = per_org.pop((organisation.pk, mode), [])
        if not invoices:
            return
        done.extend((organisation, i) for i in invoices[-20:] if i["invoice_number"] in pharmacy)
        if len(done) > 5000:
            del done[: len(done) - 5000]
        lot_no[organisation.pk] += 1
        number = f"{mode.upper()}-{lot_no[organisation.pk]:06d}"
        data = write_lot(invoices, {"finess": organisation.professional.finess, "lot_number": number,
                                    "total_amc_cents": sum(i["total_amc_cents"] for i in invoices)})  # fmt: skip
        path = OUT / "lots" / mode / f"{organisation.pk:04d}-{number}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[mode].append({"path": str(path), "organisation": organisation.pk, "invoices": len(invoices)})

    for index in range(args.invoices):
        mode = "on" if index < args.invoices // 2 else "off"
        kind = rng.choices(kinds, weights)[0]
        number = f"B{index:09d}"
        if kind in ("optics", "audio", "consumed_pec") and not pec_pool:
            kind = "pharmacy"
        if kind in ("consumed_pec",) and not consumed:
            kind = "optics"
        if kind in ("duplicate", "replay") and not sent:
            kind = "pharmacy"
        if kind in ("optics", "audio"):
            pec, person, organisation = pec_pool.pop()
            invoice = _invoice(number, person, pec.domain, _pec_lines(pec), today, pec_number=pec.number)
            consumed.append((organisation, invoice))
        elif kind == "consumed_pec":
            organisation, first = rng.choice(consumed)
            invoice = {**first, "invoice_number": number}
        elif kind == "unknown_pec":  # a well-formed number that no PEC has
            model, _person, organisation = pec_pool[-1]
            invoice = _invoice(number, next(person_iter, None) or rng.choice(people), model.domain,
                               _pec_lines(model), today, pec_number=new_pec_number())  # fmt: skip
        elif kind == "duplicate":
            organisation, first = rng.choice(sent)
            invoice = {**first, "invoice_number": number}
        elif kind == "replay":  # an invoice of an earlier lot, sent again as it was
            if not done:
                kind, (organisation, invoice) = "duplicate", rng.choice(sent)
                invoice = {**invoice, "invoice_number": number}
            else:
                organisation, invoice = rng.choice(done)
        else:
            organisation, _actor = rng.choice(orgs["PHAR"])
            person = next(person_iter, None) or rng.choice(people)
            extra, domain = {}, "DENT" if kind == "wrong_domain" else "PHAR"
            if kind == "too_old":
                extra.update(care_date=old.isoformat(), invoice_date=old.isoformat())
            elif kind == "no_match":
                person = dict(person)
                if index % 2:
                    body = person["nir"][:7] + f"{(int(person['nir'][7:13]) % 999_999) + 1:06d}"
                    person["nir"] = body + nir_check_key(body)
                else:
                    year, rest = person["birth_date"].split("-", 1)
                    person["birth_date"] = f"{int(year) - 1:04d}-{rest}"
            invoice = _invoice(number, person, domain, _pharmacy_lines(rng), today, **extra)
            if kind == "bad_totals":
                invoice["total_amc_cents"] += 1
            if kind == "pharmacy":
                pharmacy.add(number)
                sent.append((organisation, invoice))
                if len(sent) > 5000:
                    del sent[: len(sent) - 5000]
        counters[kind] += 1
        per_org[(organisation.pk, mode)].append(invoice)
        if len(per_org[(organisation.pk, mode)]) >= args.lot_size:
            flush(organisation, mode)
        if mode == "on" and index + 1 == args.invoices // 2:
            for org_pk, m in list(per_org):
                if m == "on":
                    flush(Organisation.objects.get(pk=org_pk), "on")
    for org_pk, m in list(per_org):
        flush(Organisation.objects.get(pk=org_pk), m)
    big = []  # lots 10 times bigger (fresh pharmacy invoices) for the peak RSS
    organisation, _actor = orgs["PHAR"][0]
    for b in range(1):
        invoices = [
            _invoice(f"BIG{b}-{i:08d}", rng.choice(people), "PHAR", _pharmacy_lines(rng), today)
            for i in range(args.lot_size * 10)
        ]
        data = write_lot(invoices, {"finess": organisation.professional.finess, "lot_number": f"BIG-{b}",
                                    "total_amc_cents": sum(i["total_amc_cents"] for i in invoices)})  # fmt: skip
        path = OUT / "lots" / "big" / f"BIG-{b}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        big.append({"path": str(path), "organisation": organisation.pk, "invoices": len(invoices)})
    written["big"] = big
    tokens_by_org = {org.pk: dataclasses.asdict(actor) for v in orgs.values() for org, actor in v}
    (OUT / "plan.json").write_text(json.dumps({"lots": written, "actors": tokens_by_org, "mix": counters}))
    say(f"wrote {sum(len(v) for v in written.values())} lots: {dict(counters)}")


# ---------------------------------------------------------------------------------------------- runs


def run_lots(args) -> None:
    """Child: every lot of one mode through lots.receive_lot; times, counts and peak RSS to a JSON file."""
    rc.setup_django()
    from django.conf import settings
    from django.db import connection

    if os.environ.get("BENCH_SURVEILLANCE_THRESHOLDS") == "raised":
        settings.REMPART_SURVEILLANCE = raised_thresholds()

    from rempart.accounts.models import Organisation
    from rempart.claims import lots
    from rempart.gate import Actor

    plan = json.loads((OUT / "plan.json").read_text())
    mine = plan["lots"][args.mode][args.worker :: args.workers] if args.mode != "big" else plan["lots"]["big"]
    actors = {int(k): Actor(**v) for k, v in plan["actors"].items()}
    organisations = {
        o.pk: o for o in Organisation.objects.select_related("professional").filter(pk__in=actors)
    }
    latencies, counts, invoices = [], collections.Counter(), 0
    started = time.perf_counter()
    for item in mine:
        t0 = time.perf_counter()
        with open(item["path"], "rb") as handle:
            try:
                lot, _replayed = lots.receive_lot(
                    actors[item["organisation"]], organisations[item["organisation"]], handle
                )
            except lots.LotRejected as exc:
                counts[f"lot refused: {exc.code}"] += 1
                continue
        latencies.append(time.perf_counter() - t0)
        counts.update(lot.counts)
        invoices += item["invoices"]
    seconds = time.perf_counter() - started
    connection.close()
    result = {
        "mode": args.mode,
        "invoices": invoices,
        "lots": len(latencies),
        "seconds": seconds,
        "latencies": sorted(latencies),
        "counts": dict(counts),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(args.result).write_text(json.dumps(result))


def run_in_parallel(command: list[str], result: Path, workers: int, env: dict[str, str]) -> dict:
    """The mode's lots shared between ``workers`` processes sending at once (as many senders do); one result."""
    started = time.perf_counter()
    children = []
    for worker in range(workers):
        part = result.with_name(f"{result.stem}-{worker}.json")
        argv = [*command, "--worker", str(worker), "--workers", str(workers)]
        argv[argv.index("--result") + 1] = str(part)
        children.append((subprocess.Popen(argv, cwd=rc.ROOT, env=env), part))
    for child, _part in children:
        if child.wait():
            sys.exit(f"a worker failed ({child.returncode})")
    wall = time.perf_counter() - started
    parts = [json.loads(part.read_text()) for _child, part in children]
    counts = collections.Counter()
    for part in parts:
        counts.update(part["counts"])
    return {
        "mode": parts[0]["mode"],
        "invoices": sum(p["invoices"] for p in parts),
        "lots": sum(p["lots"] for p in parts),
        "seconds": wall,  # the wall time of the whole group, process start-up included
        "latencies": sorted(x for p in parts for x in p["latencies"]),
        "counts": dict(counts),
        "rss_mb": max(p["rss_mb"] for p in parts),
        "workers": workers,
    }


def raised_thresholds() -> dict:
    """Every counter still counted, no ceiling reached: a few bench organisations send a nation's volume."""
    from rempart.surveillance.policy import DEFAULTS

    raised = {}
    for key, value in DEFAULTS.items():
        if "days" in key or "seconds" in key or not isinstance(value, int | float):
            continue
        raised[key] = (
            1.01 if isinstance(value, float) else (99 if key == "sequential_neighbours" else value * 10**6)
        )
    return raised


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def measured_env(env: dict[str, str], surveillance: bool) -> dict[str, str]:
    if surveillance:
        return {**env, "REMPART_SURVEILLANCE_ENABLED": "1", "REMPART_SURVEILLANCE_STORE": "redis",
                "REMPART_SURVEILLANCE_REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
                "BENCH_SURVEILLANCE_THRESHOLDS": "raised"}  # fmt: skip
    return {**env, "REMPART_SURVEILLANCE_ENABLED": "0"}


def fresh_run_db(args, env: dict[str, str]) -> dict[str, str]:
    """The run's database: a copy of the cached registry (PostgreSQL template, or a copy of the SQLite file)."""
    if args.db == "sqlite":
        import shutil

        base = OUT / f"bench-{args.beneficiaries}.sqlite3"
        run_file = OUT / "run.sqlite3"
        if not base.exists() or args.rebuild:
            say(f"building {base.name} with {args.beneficiaries:,} beneficiaries …")
            base.unlink(missing_ok=True)
            benv = {**env, "DATABASE_URL": f"sqlite:///{base}"}
            rc.run(rc.rempart_cli("migrate", "--verbosity", "0"), benv)
            day = rc.paris_today().isoformat()
            cmd = ["generate", "--beneficiaries", str(args.beneficiaries), "--seed", str(args.seed)]
            rc.run(rc.rempart_cli(*cmd, "--reference-date", day), benv)
        shutil.copyfile(base, run_file)
        return {**env, "DATABASE_URL": f"sqlite:///{run_file}", **_fresh_anchors()}
    base_name = f"rempart_bench_claims_b{args.beneficiaries}"
    ns = argparse.Namespace(
        db_name=base_name, beneficiaries=args.beneficiaries, seed=args.seed, rebuild=args.rebuild
    )
    rc.ensure_data(ns, rc.bench_secrets(), rc.base_env(rc.bench_secrets(), base_name))
    with rc.pg_connect(rc.PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{base_name}"')
    env = {**env, "DATABASE_URL": rc.pg_url(RUN_DB), **_fresh_anchors()}
    rc.run(rc.rempart_cli("migrate", "--verbosity", "0"), env)
    return env


def _fresh_anchors() -> dict[str, str]:
    """The run's database is new, so are its external anchors: those of a dropped run would (rightly) fail verify."""
    import shutil

    anchors = OUT / "anchors"
    shutil.rmtree(anchors, ignore_errors=True)
    anchors.mkdir(parents=True)
    return {"REMPART_LEDGER_ANCHOR_DIR": str(anchors)}


def count_rows(env: dict[str, str]) -> dict[str, int]:
    code = (
        "import json,django;django.setup();from django.db import connection as c;cur=c.cursor();r={}\n"
        "for t in ('ledger_disclosure','claims_claim','claims_claimline','accounting_transaction',"
        "'accounting_posting','authorizations_pec'):\n"
        " cur.execute(f'SELECT COUNT(*) FROM {t}');r[t]=cur.fetchone()[0]\nprint(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=rc.ROOT, env=env, capture_output=True, text=True)
    return (
        json.loads(out.stdout.strip().splitlines()[-1])
        if out.returncode == 0
        else {"error": out.stderr[-300:]}
    )


def status_of(command: list[str], env: dict[str, str]) -> str:
    started = time.monotonic()
    out = subprocess.run(rc.rempart_cli(*command), cwd=rc.ROOT, env=env, capture_output=True, text=True)
    last = (out.stdout.strip() or out.stderr.strip()).splitlines()[-1:] or [""]
    return f"exit {out.returncode} in {time.monotonic() - started:.0f} s: {last[0][:150]}"


PROFILE_PARTS = [  # label, marker: a substring of the stack, or (caller, callee) adjacent frames
    ("whole-file pass (lot_format, pass 1)", "_check_whole ("),
    ("shape checks and schema (intake.from_dict)", "from_dict ("),
    ("invoice checks before the lookup (rules.check_invoice)", "check_invoice ("),
    ("invoice-number lookup (replay or conflict)", ("submit_claim (", "QuerySet.first (")),
    ("gate: identification lookup (one statement)", "find (rempart/gate/core"),
    ("gate: PEC/guarantee facts (gate.pec.pec_facts)", "pec_facts ("),
    ("gate: ledger row (recording.record)", "record (rempart/ledger/recording"),
    ("surveillance (admission, Redis counters)", "rempart/surveillance/"),
    ("adjudication: rights + year total (_rights)", "_rights ("),
    ("adjudication: convention (_convention)", "_convention ("),
    ("adjudication: PEC lock (_pec)", "_pec (rempart/claims"),
    ("adjudication: duplicates query (_prior_lines)", "_prior_lines ("),
    ("adjudication: pure rules (rules.adjudicate)", "adjudicate (rempart/claims/rules"),
    ("ORM inserts claim + lines (_store)", "_store ("),
    ("PEC consumption (update)", ("submit_claim.<locals>.decide (", "QuerySet.update (")),
    ("money postings (postings.post_adjudication)", "post_adjudication ("),
    ("ledger reference update", ("submit_claim (", "QuerySet.update (")),
    ("savepoints per invoice (atomic enter/exit)", ("identify_and_record (", "Atomic.__")),
    ("lot transaction commit", ("_adjudicate_all (", "Atomic.__exit__")),
    ("*across:* waiting in psycopg (round trips, server)", "psycopg/"),
    ("*across:* Django ORM building SQL (as_sql)", "as_sql ("),
]


def _has(frames: list[str], marker) -> bool:
    if isinstance(marker, str):
        return any(marker in frame for frame in frames)
    caller, callee = marker
    return any(
        a.startswith(caller) and b.startswith(callee) for a, b in zip(frames, frames[1:], strict=False)
    )


def summarise_profile(raw: Path) -> list[tuple[str, float]]:
    """Shares of the time under receive_lot, by part of an invoice's path (parts overlap)."""
    total, counts = 0, collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "receive_lot" not in stack:
            continue
        frames = stack.split(";")
        total += int(count)
        for label, marker in PROFILE_PARTS:
            if _has(frames, marker):
                counts[label] += int(count)
    return [(label, counts[label] / total) for label, _marker in PROFILE_PARTS] if total else []


def main(argv: list[str] | None = None) -> None:
    rc.ensure_venv(__file__)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", nargs="?", default="all", choices=("all", "setup", "run"))
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--beneficiaries", type=int, default=2_000_000)
    parser.add_argument(
        "--lot-size", type=int, default=None, help="invoices per lot (default 1,000; --quick 250)"
    )
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="4,000 invoices over 50,000 beneficiaries, lots of 250"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy record of the surveillance-on run")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--mode", default="on")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes sending the on/off runs' lots at once (default 1)"
    )
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--result", default="")
    args = parser.parse_args(argv)
    if args.quick:
        args.invoices, args.beneficiaries = 4_000, 50_000
    if args.lot_size is None:
        args.lot_size = 250 if args.quick else 1000
    if args.step == "setup":
        return setup(args)
    if args.step == "run":
        return run_lots(args)
    import shutil

    shutil.rmtree(OUT / "lots", ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    secrets = rc.bench_secrets()
    env = fresh_run_db(args, rc.base_env(secrets, RUN_DB))
    common = ["--invoices", str(args.invoices), "--beneficiaries", str(args.beneficiaries),
              "--lot-size", str(args.lot_size), "--seed", str(args.seed)]  # fmt: skip
    started = time.monotonic()
    rc.child("setup", *common, env=measured_env(env, False), script=__file__)
    setup_seconds = time.monotonic() - started
    subprocess.run(["redis-cli", "-n", str(REDIS_DB), "FLUSHDB"], capture_output=True)
    results = {}
    for mode, on in (("on", True), ("off", False), ("big", True)):
        result = OUT / f"result-{mode}.json"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "run",
            "--mode",
            mode,
            "--result",
            str(result),
            *common,
        ]
        if mode == "on" and args.profile:
            if not (rc.VENV / "bin" / "py-spy").exists():
                rc.run([str(rc.VENV / "bin" / "pip"), "install", "-q", "py-spy"], os.environ.copy())
            raw = OUT / "profile-raw.txt"
            command = [str(rc.VENV / "bin" / "py-spy"), "record", "--format", "raw", "--rate", "50",
                       "--nonblocking", "-o", str(raw), "--", *command]  # fmt: skip
        say(f"run: {mode} (surveillance {'on, Redis' if on else 'off'}, {args.workers} worker(s)) …")
        if args.workers == 1 or mode == "big":
            rc.run(command, measured_env(env, on))
            results[mode] = json.loads(result.read_text())
        else:
            results[mode] = run_in_parallel(command, result, args.workers, measured_env(env, on))
    checks = {
        "rempart accounts check": status_of(["accounts", "check"], env),
        "rempart ledger verify --incremental": status_of(["ledger", "verify", "--incremental"], env),
    }
    rows = count_rows(env)
    report = render(args, results, checks, rows, setup_seconds)
    if args.profile and (OUT / "profile-raw.txt").exists():
        shares = summarise_profile(OUT / "profile-raw.txt")
        report += "\n\nProfile (py-spy, surveillance-on run, share of the time under receive_lot; parts overlap):\n\n"
        report += "| part | share |\n|---|---:|\n" + "\n".join(f"| {k} | {v:.1%} |" for k, v in shares)
    print(report)
    (rc.OUT / "claims.md").write_text(report + "\n")


def render(args, results: dict, checks: dict, rows: dict, setup_seconds: float) -> str:
    lines = [
        f"claims benchmark: {args.invoices:,} invoices, {args.beneficiaries:,} beneficiaries, {args.db}, "
        f"lots of {args.lot_size:,}, {os.cpu_count()} CPUs, setup {setup_seconds:.0f} s (not timed)",
        "",
        "| run | invoices | lots | invoices/s | lot p50 | lot p95 | lot max | peak RSS | target ≥ 2,000/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    senders = f", {args.workers} senders at once" if args.workers > 1 else ""
    labels = {
        "on": f"surveillance on (Redis){senders}",
        "off": f"surveillance off{senders}",
        "big": f"surveillance on, lots of {args.lot_size * 10:,}",
    }
    for mode, r in results.items():
        rate = r["invoices"] / r["seconds"] if r["seconds"] else 0
        lat = r["latencies"]
        lines.append(
            f"| {labels[mode]} | {r['invoices']:,} | {r['lots']} | {rate:,.0f} | {_pct(lat, 0.5):.2f} s | "
            f"{_pct(lat, 0.95):.2f} s | {max(lat, default=0):.2f} s | {r['rss_mb']:.0f} MB | "
            f"{'met' if rate >= TARGET else 'missed'} |"
        )
    lines += ["", "Results per invoice:", ""]
    for mode, r in results.items():
        lines.append(f"- {labels[mode]}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["counts"].items())))
    lines += [
        "",
        "Rows at the end: "
        + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in rows.items()),
        "",
    ]
    lines += [f"- {name}: {status}" for name, status in checks.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
