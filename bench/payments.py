#!/usr/bin/env python3
"""Payment-run benchmark (issue 14, docs/benchmarks.md "Payments").

    python3 bench/payments.py [--professionals 50000] [--claims 1000000] [--quick] [--rebuild] [--seed 1]

Steps (each Django step in a child process: production mode, secrets of bench/out/var/secrets.env, PostgreSQL):

1. **Base (cached, not timed).** A database ``rempart_bench_payments_p<P>_c<C>`` is migrated and filled once,
   then kept as a template (reused while its sizes, seed, secrets and migrations are the same; ``--rebuild``
   starts again): P professional organisations with synthetic, valid French IBANs (schwifty, public bank codes,
   random branch and account numbers; encrypted and blind-indexed as ``Professional.set_iban`` does) and BICs,
   their payable accounts; C accepted claims before the cut-off with their ``claim_accepted`` postings, plus
   1 % accepted after the cut-off (the run must leave them), 2 % rejected claims (statement lines without money)
   and credit notes on 0.5 % of the claims (``claim_reversed``). The sprinkle: organisations with no IBAN, a
   new IBAN on hold (paid on the previous one), a new IBAN on hold and no previous one, an IBAN the bank
   rejected, a suspended organisation. **Claims and postings are written with set-based SQL**, the same rows,
   keys, kinds and sources as ``claims.postings.post_adjudication`` writes, sealed by the ledger's triggers;
   **not through the claims service**, which is not what is measured here (bench/claims.py measures it).
2. **Run database.** ``rempart_bench_payments`` is dropped and re-created from the template; the holds' dates
   are moved to now (a hold lasts 5 days: the cached base may be older).
3. **Timed, in one child process**: ``runs.prepare_run(cutoff, user=<treasury 1>)``; ``runs.approve_run(run,
   user=<treasury 2>, request=…)`` with a request whose session proved a second factor a moment ago (the
   service checks the step-up on it), which re-reads the IBANs, writes and validates the pain.001 (XSD and
   control sums), posts one ``payment`` transaction per transfer and stores the file; approving again (must
   change nothing); reading the stored file back (SHA-256, XSD again, count, control sum, every end-to-end id,
   amount and IBAN against the database and against the generator's own expectation); preparing again at the
   same cut-off (nothing left to pay). Then ``rempart accounts check`` in its own process.

Prints a table (step, seconds, rows, peak RSS, CPU of the Python process and of its PostgreSQL backend) and writes
it to bench/out/payments.md. Target: prepare + write + validate ≤ 60 s.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rights_check as rc  # noqa: E402 - the sibling benchmark's helpers (venv, secrets, PostgreSQL, Django)

OUT = rc.OUT / "payments"
RUN_DB = "rempart_bench_payments"
TARGET_SECONDS = 60  # prepare + write + validate the pain.001
INSURERS = 20
# Public French bank codes (établissement); branch and account numbers are random: no real account.
BANKS = ("30006", "30004", "30003", "10278", "20041", "11315", "10107", "30066", "16006", "18206", "13335")
NAMES = ("Pharmacie de l'Étoile", "Optique Œil & Vision", "Audition Señor Müller", "Laboratoire Saint-Éloi",
         "Centre dentaire Ørsted", "Cabinet d'infirmières Zoë", "Pharmacie du Marché", "Ambulances Léa_Transports")  # fmt: skip
DOMAINS = ("PHAR", "OPTI", "AUDI", "LABO", "DENT", "AUXI", "PHAR", "TRAN")
SPRINKLE = (  # kind, share of the organisations: what the run must hold, or pay elsewhere
    ("no_iban", 0.004),  # held: no_iban
    ("hold_previous", 0.004),  # new IBAN on hold: paid on the previous one
    ("hold_new", 0.001),  # new IBAN on hold, none before: held (iban_on_hold)
    ("failed", 0.001),  # the bank rejected the IBAN: held (iban_failed)
    ("suspended", 0.001),  # held: organisation_suspended
)
HELD_REASONS = {"no_iban": "no_iban", "hold_new": "iban_on_hold", "failed": "iban_failed",
                "suspended": "organisation_suspended"}  # fmt: skip
TREASURY = ("tresorerie-prepare@bench.invalid", "tresorerie-approuve@bench.invalid")


def say(message: str) -> None:
    rc.say(message)


def finess(n: int) -> str:
    body = f"75{n:06d}"
    total = sum(
        d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(map(int, body))
    )
    return body + str((10 - total % 10) % 10)


def schema_hash() -> str:
    """The project's migrations: a base built under other ones is rebuilt (its INSERTs name every column)."""
    digest = hashlib.sha256()
    for path in sorted((rc.ROOT / "rempart").glob("*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- the base


def build(args) -> None:
    """Child (Django): fill the freshly migrated base database; the expected results go to bench_meta."""
    rc.setup_django()
    from django.db import connection, transaction
    from django.utils import timezone

    cutoff = dt.date.fromisoformat(args.cutoff)
    started = time.monotonic()
    with transaction.atomic():
        _people_and_accounts(args)
        say(
            f"  {args.professionals:,} professionals, organisations, accounts in {time.monotonic() - started:.0f} s"
        )
        _claims_and_postings(args, cutoff)
        expected = _expected(cutoff)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        for key, value in {**expected, "built_at": timezone.now().isoformat()}.items():
            cursor.execute("INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
                           "EXCLUDED.value", [key, str(value)])  # fmt: skip
    say(f"  base filled in {time.monotonic() - started:.0f} s: {expected}")


def _people_and_accounts(args) -> None:
    import pyotp
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP
    from django.db import connection
    from django.utils import timezone
    from schwifty import IBAN

    from rempart.accounting import service as accounting
    from rempart.accounts.models import Membership, Organisation, Role, User
    from rempart.lib.crypto import field_cipher
    from rempart.lib.identifiers import mask_iban, validate_iban
    from rempart.registry.models import BankDetailsChange, Insurer

    rng = random.Random(f"payments-bench-{args.seed}")
    operator = Organisation.objects.create(kind="operator", name="Opérateur (banc d'essai)")
    for email in TREASURY:
        user = User.objects.create_user(email, None, full_name="Trésorerie banc d'essai")
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        Membership.objects.create(user=user, organisation=operator, role=Role.TREASURY)
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        TOTP.activate(user, pyotp.random_base32())
    for n in range(INSURERS):
        insurer = Insurer.objects.create(amc_number=f"9{n:08d}", name=f"Mutuelle banc {n}", kind="mutuelle")
        accounting.insurer_receivable(insurer)
    accounting.operator_bank()

    kinds = ["normal"] * args.professionals
    at = 0
    for kind, share in SPRINKLE:
        count = max(1, round(args.professionals * share))
        kinds[at : at + count] = [kind] * count
        at += count
    rng.shuffle(kinds)
    cipher, now = field_cipher(), timezone.now()

    def new_iban() -> tuple[str, str]:
        bank = rng.choice(BANKS)
        iban = IBAN.generate("FR", bank_code=f"{bank}{rng.randrange(10**5):05d}",
                             account_code=f"{rng.randrange(10**11):011d}")  # fmt: skip
        compact = validate_iban(str(iban))  # what the registry accepts from an owner
        bic = "" if rng.random() < 0.1 else str(iban.bic or "")  # some without BIC: SEPA pays on the IBAN
        return compact, bic

    rows, changes = [], []
    for n, kind in enumerate(kinds):
        name = f"{NAMES[n % len(NAMES)]} n°{n + 1}"
        iban, bic = new_iban()
        has_iban = kind not in ("no_iban", "hold_new")
        rows.append((
            finess(n + 1), "", name, json.dumps([DOMAINS[n % len(DOMAINS)]]), "", "", "",
            cipher.encrypt("iban", iban) if has_iban else None,
            cipher.blind_index("iban", iban) if has_iban else None, bic if has_iban else "",
            now - dt.timedelta(days=3) if kind == "failed" else None, "AC04" if kind == "failed" else "",
            "[]", "conventionne",
        ))  # fmt: skip
        if kind in ("hold_previous", "hold_new"):
            changes.append((n, iban, bic, *new_iban()))
    columns = ("finess, siret, name, domains, address, postal_code, city, iban_cipher, iban_index, bic, "
               "iban_failed_at, iban_failed_reason, networks, convention")  # fmt: skip
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY registry_professional ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute("CREATE TEMPORARY TABLE bench_kinds (n int PRIMARY KEY, kind text, domain text)")
        with cursor.cursor.copy("COPY bench_kinds FROM STDIN") as copy:
            for n, kind in enumerate(kinds):
                copy.write_row((n, kind, DOMAINS[n % len(DOMAINS)]))
        cursor.execute("""
            CREATE TABLE bench_payee AS
            SELECT k.n, k.kind, k.domain, p.id AS professional_id
              FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM registry_professional) p
              JOIN bench_kinds k ON k.n = p.n""")
        cursor.execute("""
            INSERT INTO accounts_organisation (kind, name, professional_id, status, created_at, insurer_id)
            SELECT 'professional', p.name, p.id, CASE WHEN b.kind = 'suspended' THEN 'suspended' ELSE 'active' END,
                   now(), NULL
              FROM registry_professional p JOIN bench_payee b ON b.professional_id = p.id ORDER BY p.id""")
        cursor.execute("ALTER TABLE bench_payee ADD COLUMN organisation_id bigint")
        cursor.execute("""UPDATE bench_payee b SET organisation_id = o.id FROM accounts_organisation o
                           WHERE o.professional_id = b.professional_id""")
        cursor.execute("ALTER TABLE bench_payee ADD PRIMARY KEY (n)")
        cursor.execute("""
            INSERT INTO accounting_account (code, name, purpose, kind, organisation_id, insurer_id, created_at)
            SELECT '401-ORG' || o.id, 'Dette envers ' || o.name || ' (FINESS ' || p.finess || ')',
                   'professional_payable', 'liability', o.id, NULL, now()
              FROM accounts_organisation o JOIN registry_professional p ON p.id = o.professional_id
             ORDER BY o.id""")
        cursor.execute(
            "SELECT n, professional_id FROM bench_payee WHERE kind IN ('hold_previous', 'hold_new')"
        )
        professional_of = dict(cursor.fetchall())
    BankDetailsChange.objects.bulk_create(
        BankDetailsChange(
            professional_id=professional_of[n], iban_cipher=cipher.encrypt("iban", new),
            iban_index=cipher.blind_index("iban", new), iban_masked=mask_iban(new), bic=new_bic,
            previous_iban_cipher=None,  # the professional's own cipher, below
            previous_iban_masked=mask_iban(old) if kinds[n] == "hold_previous" else "",
            previous_bic=old_bic if kinds[n] == "hold_previous" else "",
            requested_at=now - dt.timedelta(days=1), hold_until=now + dt.timedelta(days=4),
        )
        for n, old, old_bic, new, new_bic in changes
    )  # fmt: skip
    # The pending change of a "hold_previous" organisation keeps its current IBAN as the previous one.
    with connection.cursor() as cursor:
        cursor.execute("""UPDATE registry_bankdetailschange c SET previous_iban_cipher = p.iban_cipher
                            FROM registry_professional p WHERE p.id = c.professional_id AND p.iban_cipher IS NOT NULL""")


# Claims: g in 1..C accepted on or before the cut-off (5 % partly), C < g ≤ C + late accepted the day after
# (the run must leave them), then rejected ones. Organisations drawn skewed (a few big senders, the smallest
# about a third of the mean) by a Weyl sequence: deterministic, no random() in SQL.
_CLAIMS = """
WITH s AS (
  SELECT g,
         LEAST(%(p)s - 1, FLOOR(%(p)s * POWER(((g * 2654435761) %% 4294967296)::float8 / 4294967296, 2)))::int AS n,
         500 + (g * 7919) %% 29500 AS claimed,
         CASE WHEN g <= %(c)s THEN CASE WHEN g %% 20 = 3 THEN 'partially_accepted' ELSE 'accepted' END
              WHEN g <= %(c)s + %(late)s THEN 'accepted' ELSE 'rejected' END AS status,
         CASE WHEN g > %(c)s AND g <= %(c)s + %(late)s THEN %(cutoff)s::date + 1
              ELSE %(cutoff)s::date - (g %% 30)::int END AS day
    FROM generate_series(1::bigint, %(c)s + %(late)s + %(rejected)s) g
)
INSERT INTO claims_claim (organisation_id, invoice_number, channel, lot_line, beneficiary_id, domain, invoice_date,
    care_date, prescriber_rpps, pec_number, status, total_price_cents, total_amo_cents, claimed_cents,
    accepted_cents, decision, rule_version, data_version, request_fingerprint, ledger_reference, created_at,
    reviewed_at, review_reason, review_note, insurer_id, pec_id, reviewed_by_id, token_id, user_id, lot_id)
SELECT b.organisation_id, 'F' || lpad(s.g::text, 9, '0'), 'lot', NULL, s.g, b.domain, s.day, s.day, '10001234565',
       '', s.status, s.claimed * 3, s.claimed * 2, s.claimed, a.accepted,
       jsonb_build_object('status', s.status, 'claimed_cents', s.claimed, 'accepted_cents', a.accepted,
           'lines', jsonb_build_array(jsonb_build_object('number', 1, 'status', s.status, 'claimed_cents', s.claimed,
               'accepted_cents', a.accepted, 'reasons', CASE WHEN s.status = 'rejected' THEN '["RIGHTS_CLOSED"]'::jsonb
               ELSE '[]'::jsonb END, 'explanation', '')),
           'reasons', '[]'::jsonb, 'review_reasons', '[]'::jsonb, 'rule_version', 'bench-1', 'data_version', 'bench-1',
           'explanation', ''),
       'bench-1', 'bench-1', md5('bench-claim-' || s.g), 'B' || lpad(s.g::text, 12, '0'),
       (s.day + time '10:00') AT TIME ZONE 'Europe/Paris', NULL, '', '', (%(insurers)s::bigint[])[1 + s.g %% %(ni)s],
       NULL, NULL, NULL, NULL, NULL
  FROM s JOIN bench_payee b ON b.n = s.n
  CROSS JOIN LATERAL (SELECT CASE s.status WHEN 'rejected' THEN 0 WHEN 'partially_accepted' THEN s.claimed * 8 / 10
                                 ELSE s.claimed END AS accepted) a
 ORDER BY s.g
"""
# One credit note on every 200th accepted claim before the cut-off: half of what it was accepted for.
_CREDIT_NOTES = """
INSERT INTO claims_creditnote (number, amount_cents, reason, created_at, claim_id, organisation_id, token_id, user_id)
SELECT 'AV' || c.invoice_number, c.accepted_cents / 2, 'avoir (banc d''essai)', c.created_at + interval '1 hour',
       c.id, c.organisation_id, NULL, NULL
  FROM claims_claim c
 WHERE c.status IN ('accepted', 'partially_accepted') AND c.care_date <= %s AND c.beneficiary_id %% 200 = 7
"""
# What claims.postings.post_adjudication posts: claim:<id>:1 claim_accepted (receivable +, payable −), and
# claim:<id>:2 claim_reversed for a credit note (the opposite), with the claim as source.
_ENTRIES = """
CREATE TEMPORARY TABLE bench_entry AS
SELECT row_number() OVER (ORDER BY e.claim_id, e.version) AS rn, e.* FROM (
  SELECT c.id AS claim_id, 1 AS version, 'claim_accepted' AS kind, c.accepted_cents AS amount, c.care_date AS day,
         c.invoice_number, c.organisation_id, c.insurer_id
    FROM claims_claim c WHERE c.status IN ('accepted', 'partially_accepted')
  UNION ALL
  SELECT c.id, 2, 'claim_reversed', -n.amount_cents, c.care_date, c.invoice_number, c.organisation_id, c.insurer_id
    FROM claims_creditnote n JOIN claims_claim c ON c.id = n.claim_id
) e
"""
_POSTINGS = """
INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date)
SELECT %s + e.rn, leg.account_id, leg.amount, e.day
  FROM bench_entry e
  JOIN accounting_account pay ON pay.organisation_id = e.organisation_id AND pay.purpose = 'professional_payable'
  JOIN accounting_account rec ON rec.insurer_id = e.insurer_id AND rec.purpose = 'insurer_receivable'
 CROSS JOIN LATERAL (VALUES (rec.id, e.amount::bigint), (pay.id, -e.amount::bigint)) leg(account_id, amount)
 ORDER BY e.rn
"""
_TRANSACTIONS = """
INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, created_at,
                                    effective_date, reverses_id)
SELECT %s + e.rn, e.kind, 'claim:' || e.claim_id || ':' || e.version, 'facture ' || e.invoice_number, 'claim',
       e.claim_id::text, (e.day + time '10:00') AT TIME ZONE 'Europe/Paris', e.day, NULL
  FROM bench_entry e ORDER BY e.rn
"""


def _claims_and_postings(args, cutoff: dt.date) -> None:
    from django.db import connection

    from rempart.accounting.models import Account

    insurers = list(
        Account.objects.filter(purpose="insurer_receivable")
        .order_by("pk")
        .values_list("insurer_id", flat=True)
    )
    late, rejected = args.claims // 100, args.claims // 50
    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute(_CLAIMS, {"p": args.professionals, "c": args.claims, "late": late, "rejected": rejected,
                                 "cutoff": cutoff, "insurers": insurers, "ni": len(insurers)})  # fmt: skip
        say(f"  {cursor.rowcount:,} claims in {time.monotonic() - started:.0f} s")
        cursor.execute(_CREDIT_NOTES, [cutoff])
        cursor.execute(_ENTRIES)
        cursor.execute("SELECT COUNT(*) FROM bench_entry")
        [entries] = cursor.fetchone()
        cursor.execute("SELECT nextval(pg_get_serial_sequence('accounting_transaction', 'id'))")
        [base] = cursor.fetchone()
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('accounting_transaction', 'id'), %s)", [base + entries]
        )
        started = time.monotonic()
        cursor.execute(_POSTINGS, [base - 1])
        postings = cursor.rowcount
        cursor.execute(_TRANSACTIONS, [base - 1])  # the ledger's seal trigger checks every one of them
        say(f"  {entries:,} transactions, {postings:,} postings in {time.monotonic() - started:.0f} s")


_EXPECTED = """
WITH owed AS (
  SELECT c.organisation_id, SUM(c.accepted_cents - COALESCE(n.amount_cents, 0)) AS cents,
         COUNT(*) + COUNT(n.id) AS lines
    FROM claims_claim c LEFT JOIN claims_creditnote n ON n.claim_id = c.id
   WHERE c.status IN ('accepted', 'partially_accepted') AND c.care_date <= %s
   GROUP BY c.organisation_id
), rejected AS (
  SELECT organisation_id, COUNT(*) AS lines FROM claims_claim WHERE status = 'rejected' GROUP BY organisation_id
)
SELECT b.kind IN ('normal', 'hold_previous') AS paid, COUNT(*), SUM(o.cents), SUM(o.lines + COALESCE(r.lines, 0))
  FROM owed o JOIN bench_payee b ON b.organisation_id = o.organisation_id
  LEFT JOIN rejected r ON r.organisation_id = o.organisation_id
 WHERE o.cents > 0 GROUP BY 1
"""


def _expected(cutoff: dt.date) -> dict:
    """What the run must pay, from the claims and credit notes (not from the ledger the run reads)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_EXPECTED, [cutoff])
        by = {paid: (count, int(cents), int(lines)) for paid, count, cents, lines in cursor.fetchall()}
        cursor.execute(
            "SELECT COUNT(*) FROM claims_claim WHERE status <> 'rejected' AND care_date <= %s", [cutoff]
        )
        [claims] = cursor.fetchone()
    paid, held = by.get(True, (0, 0, 0)), by.get(False, (0, 0, 0))
    return {"expected_transfers": paid[0], "expected_total_cents": paid[1], "expected_lines": paid[2],
            "expected_held": held[0], "claims_before_cutoff": claims}  # fmt: skip


def ensure_base(args, secrets: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The cached base database (built if missing or stale), analysed and vacuumed; its meta."""
    name = f"{RUN_DB}_p{args.professionals}_c{args.claims}"
    wanted = {"status": "complete", "professionals": str(args.professionals), "claims": str(args.claims),
              "seed": str(args.seed), "key": rc.key_fingerprint(secrets), "schema": schema_hash()}  # fmt: skip
    meta = rc.read_meta(name)
    if not args.rebuild and all(meta.get(k) == v for k, v in wanted.items()):
        say(f"reusing {name} (built {meta['built_at'][:16]}, cut-off {meta['cutoff']})")
        return name, meta
    if meta:
        stale = [k for k, v in wanted.items() if meta.get(k) != v]
        say(f"{name}: rebuilding ({'--rebuild' if args.rebuild else 'differs: ' + ', '.join(stale)})")
    started = time.monotonic()
    with rc.pg_connect(rc.PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = rc.base_env(secrets, name)
    rc.run(rc.rempart_cli("migrate", "--verbosity", "0"), env)
    cutoff = rc.paris_today() - dt.timedelta(days=1)
    say(f"building {name}: {args.professionals:,} professionals, {args.claims:,} claims, cut-off {cutoff} …")
    rc.child("build", *_common(args), "--cutoff", cutoff.isoformat(), env=env, script=__file__)
    with rc.pg_connect(rc.pg_url(name)) as conn:
        conn.execute("VACUUM (ANALYZE)")
    rc.write_meta(
        name, **wanted, cutoff=cutoff.isoformat(), build_seconds=f"{time.monotonic() - started:.0f}"
    )
    say(f"built {name} in {time.monotonic() - started:.0f} s")
    return name, rc.read_meta(name)


def _common(args) -> list[str]:
    return [
        "--professionals",
        str(args.professionals),
        "--claims",
        str(args.claims),
        "--seed",
        str(args.seed),
    ]


# ---------------------------------------------------------------------------------------------- the timed run


class Probe:
    """Wall time, CPU of this process and of its PostgreSQL backend, peak RSS, SQL statements, for one step."""

    def __init__(self, backend_pid: int | None) -> None:
        self.backend_pid, self.sql = backend_pid, collections.defaultdict(lambda: [0, 0.0])
        self.calls: dict[str, float] = collections.defaultdict(float)

    def _db_cpu(self) -> float | None:
        try:
            fields = Path(f"/proc/{self.backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        self.sql.clear()
        self.calls.clear()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.t0, self.cpu0, self.db0 = time.perf_counter(), usage.ru_utime + usage.ru_stime, self._db_cpu()

    def stop(self, step: str, rows: int, **extra) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        db = self._db_cpu()
        top = sorted(self.sql.items(), key=lambda item: -item[1][1])[:6]
        return {"step": step, "seconds": time.perf_counter() - self.t0, "rows": rows,
                "rss_mb": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime - self.cpu0,
                "db_cpu": db - self.db0 if db is not None and self.db0 is not None else None,
                "statements": sum(n for n, _s in self.sql.values()),
                "top_sql": [(label, n, s) for label, (n, s) in top], "calls": dict(self.calls), **extra}  # fmt: skip

    def execute(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = self.sql[" ".join(sql.split())[:72]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def wrap(self, module, name: str) -> None:
        """Time every call of module.name (a measurement only: the call and its result are unchanged)."""
        original = getattr(module, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls[name] += time.perf_counter() - started

        setattr(module, name, timed)


def step_up_request(user):
    """A request as the console sends it, whose session proved the second factor (TOTP) just now."""
    from allauth.account.internal.flows import login as allauth_login
    from allauth.mfa.models import Authenticator
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from rempart.accounts.sessions import CONTEXT_FIELD, context_of

    request = RequestFactory().post("/operateur/paiements/approuver/", REMOTE_ADDR="127.0.0.1",
                                    HTTP_USER_AGENT="bench/payments.py")  # fmt: skip
    request.user, request.session = user, SessionStore()
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    request.session[allauth_login._AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)
    request.session[allauth_login.AUTHENTICATION_METHODS_SESSION_KEY] = [
        {"method": "mfa", "at": time.time(), "id": authenticator.pk, "type": "totp",
         CONTEXT_FIELD: context_of(request).id}
    ]  # fmt: skip
    return request


def run_bench(args) -> None:
    """Child (Django): the timed steps and the checks; results to args.result (JSON)."""
    rc.setup_django()
    from django.db import connection
    from django.utils import timezone

    from rempart.accounts.models import User
    from rempart.payments import postings, runs, sepa
    from rempart.payments.models import Payment, PaymentItem, PaymentRun
    from rempart.registry.models import BankDetailsChange

    meta = json.loads(args.meta)
    cutoff = dt.date.fromisoformat(meta["cutoff"])
    now = timezone.now()  # the base may be days old: its holds start now again (not timed)
    BankDetailsChange.objects.filter(status="pending").update(
        requested_at=now - dt.timedelta(days=1), hold_until=now + dt.timedelta(days=4)
    )
    if PaymentRun.objects.exists():
        sys.exit("the run database already holds payment runs")
    preparer, approver = (User.objects.get(email=email) for email in TREASURY)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    probe, steps, checks = Probe(pid), [], []
    timed_calls = (
        (runs, "accounts_to_pay"), (runs, "_fill"), (runs, "_insert"), (sepa, "write_pain001"),
        (sepa, "check_pain001"), (postings, "payables_of_run"), (postings, "post_payments"), (runs, "_mark_sent"),
    )  # fmt: skip
    for module, name in timed_calls:
        probe.wrap(module, name)
    probe.wrap(connection, "_commit")  # the commit: deferred foreign-key checks, WAL flush

    def check(what: str, ok: bool) -> None:
        checks.append((what, bool(ok)))
        if not ok:
            say(f"CHECK FAILED: {what}")

    load = [os.getloadavg()]
    with connection.execute_wrapper(probe.execute):
        say("prepare_run …")
        probe.start()
        run = runs.prepare_run(cutoff, user=preparer)
        steps.append(probe.stop("prepare_run (snapshot, payments, statement lines)", run.transfer_count))
        lines = steps[-1]["lines"] = PaymentItem.objects.filter(payment__run=run).count()  # not timed
        held = dict(
            collections.Counter(run.payments.filter(status="held").values_list("held_reason", flat=True))
        )
        say(f"  {steps[-1]['seconds']:.1f} s: {run.transfer_count:,} transfers, {lines:,} lines, held {held}")

        say("approve_run (second treasury member, fresh second factor) …")
        request = step_up_request(approver)
        probe.start()
        run = runs.approve_run(run, user=approver, request=request)
        steps.append(probe.stop("approve_run (IBANs, pain.001 written + validated, postings)", run.transfer_count,
                                file_mb=len(run.file_content) / 1e6))  # fmt: skip
        say(f"  {steps[-1]['seconds']:.1f} s, file {steps[-1]['file_mb']:.1f} MB")

        probe.start()
        again = runs.approve_run(run, user=approver, request=step_up_request(approver))
        steps.append(probe.stop("approve_run again (a double click)", 0))
        check("approving again returns the same file and posts nothing",
              again.file_sha256 == run.file_sha256 and Payment.objects.filter(run=run, status="sent")
              .count() == run.transfer_count)  # fmt: skip

        probe.start()
        rows = read_back(run, meta, check)
        steps.append(probe.stop("read the stored file back and check it against the database", rows))

        probe.start()
        try:
            runs.prepare_run(cutoff, user=preparer)
            refused = ""
        except runs.PaymentRunError as exc:
            refused = exc.code
        steps.append(probe.stop("prepare_run again at the same cut-off (nothing left)", 0))
        check(
            "preparing again at the same cut-off pays nothing more (nothing_to_pay)",
            refused == "nothing_to_pay",
        )
    load.append(os.getloadavg())
    check("transfers = organisations owed with a usable IBAN (from the claims)",
          run.transfer_count == int(meta["expected_transfers"]))  # fmt: skip
    check("total = accepted claims − credit notes of those organisations, to the cent",
          run.total_cents == int(meta["expected_total_cents"]))  # fmt: skip
    check(
        "statement lines = their claims, credit notes and rejected invoices",
        lines == int(meta["expected_lines"]),
    )
    check(
        "held = organisations owed without a usable IBAN or suspended",
        sum(held.values()) == int(meta["expected_held"]),
    )
    connection.close()
    Path(args.result).write_text(json.dumps({
        "steps": steps, "checks": checks, "held": held, "load": load, "run": run.reference,
        "transfers": run.transfer_count, "total_cents": run.total_cents, "lines": lines,
    }))  # fmt: skip


def read_back(run, meta: dict, check) -> int:
    """The stored file, parsed again on its own: digest, XSD, header and every transfer against the database."""
    from django.db import connection
    from lxml import etree

    from rempart.lib.crypto import field_cipher
    from rempart.payments import sepa
    from rempart.payments.models import Payment, PaymentRun

    stored = PaymentRun.objects.get(pk=run.pk)
    content = bytes(stored.file_content)
    check("the stored file matches its SHA-256", hashlib.sha256(content).hexdigest() == stored.file_sha256)
    sepa.validate_pain001(content)  # raises if the XSD refuses it
    check("the stored file is valid against the pain.001.001.09 XSD", True)
    ns = f"{{{sepa.NAMESPACE}}}"
    header, transfers = {}, {}
    for _event, node in etree.iterparse(io.BytesIO(content), tag=(f"{ns}GrpHdr", f"{ns}CdtTrfTxInf")):
        if node.tag == f"{ns}GrpHdr":
            header = {
                "count": int(node.findtext(f"{ns}NbOfTxs")),
                "sum": sepa.cents_of(node.findtext(f"{ns}CtrlSum")),
            }
        else:
            reference = node.findtext(f"{ns}PmtId/{ns}EndToEndId")
            transfers[reference] = (sepa.cents_of(node.findtext(f"{ns}Amt/{ns}InstdAmt")),
                                    node.findtext(f"{ns}CdtrAcct/{ns}Id/{ns}IBAN"))  # fmt: skip
        node.clear()
    total = sum(amount for amount, _iban in transfers.values())
    check("header NbOfTxs/CtrlSum = the transfers in the file = the run",
          header == {"count": len(transfers), "sum": total} and (len(transfers), total)
          == (run.transfer_count, run.total_cents))  # fmt: skip
    sent = {p.reference: p for p in Payment.objects.filter(run=run).exclude(status="held")
            .select_related("organisation__professional")}  # fmt: skip
    check("every sent transfer is in the file once, with its amount; no held one is",
          set(sent) == set(transfers) and all(transfers[r][0] == p.amount_cents for r, p in sent.items()))  # fmt: skip
    cipher = field_cipher()
    with connection.cursor() as cursor:
        cursor.execute("SELECT organisation_id, kind FROM bench_payee")
        kinds = dict(cursor.fetchall())
        cursor.execute("""SELECT o.id, c.iban_cipher FROM registry_bankdetailschange c
                            JOIN accounts_organisation o ON o.professional_id = c.professional_id
                           WHERE c.status = 'pending'""")
        pending = {org: cipher.decrypt("iban", bytes(blob)) for org, blob in cursor.fetchall()}
    wrong = on_new = 0
    for reference, payment in sent.items():
        professional = payment.organisation.professional
        iban = transfers[reference][1]
        wrong += iban != cipher.decrypt(
            "iban", bytes(professional.iban_cipher)
        )  # the current (previous) IBAN
        on_new += iban == pending.get(payment.organisation_id)
    check("each transfer goes to the organisation's current IBAN (encrypted in the registry)", wrong == 0)
    check("no transfer goes to an IBAN still on hold", on_new == 0)
    in_run = Payment.objects.filter(run=run).values_list("organisation_id", flat=True)
    owed_on_hold = {org for org in in_run if kinds[org] == "hold_previous"}
    paid_on_hold = {p.organisation_id for p in sent.values() if kinds[p.organisation_id] == "hold_previous"}
    check("every organisation owed, with a new IBAN on hold and an old one, is paid (on the old one, above)",
          bool(owed_on_hold) and paid_on_hold == owed_on_hold and owed_on_hold <= set(pending))  # fmt: skip
    held = Payment.objects.filter(run=run, status="held").values_list("organisation_id", "held_reason")
    check("each held organisation is held for its reason (no IBAN, on hold, failed, suspended)",
          all(HELD_REASONS.get(kinds[org]) == reason for org, reason in held))  # fmt: skip
    with connection.cursor() as cursor:  # every paid organisation's payable is back to 0 at the cut-off
        cursor.execute("""
            SELECT COUNT(*) FROM payments_payment pay
              JOIN accounting_account a ON a.organisation_id = pay.organisation_id AND a.purpose = 'professional_payable'
             CROSS JOIN LATERAL (SELECT COALESCE(SUM(p.amount_cents), 0) AS owed FROM accounting_posting p
                                  WHERE p.account_id = a.id AND p.effective_date <= %s) before
             CROSS JOIN LATERAL (SELECT COALESCE(SUM(p.amount_cents), 0) AS paid FROM accounting_posting p
                                  WHERE p.transaction_id = pay.transaction_id AND p.account_id = a.id) payment
             WHERE pay.run_id = %s AND pay.status = 'sent' AND before.owed + payment.paid <> 0""",
            [run.cutoff, run.pk],
        )  # fmt: skip
        [unpaid] = cursor.fetchone()
    check("every paid organisation's payable at the cut-off is 0 after the payment posting", unpaid == 0)
    return len(transfers)


# ---------------------------------------------------------------------------------------------- report


def render(args, meta: dict, result: dict, accounts: tuple[float, str], setup: dict) -> str:
    prepare, approve = result["steps"][0], result["steps"][1]
    calls = approve["calls"]
    check_seconds = calls.get("check_pain001", 0.0)
    write_seconds = calls.get("write_pain001", 0.0) - check_seconds
    target = prepare["seconds"] + write_seconds + check_seconds
    transfers, lines = result["transfers"], result["lines"]
    per10k = 10_000 / transfers if transfers else 0
    cpus = os.cpu_count()
    lines_out = [
        f"payments benchmark: {args.professionals:,} professionals, {int(meta['claims_before_cutoff']):,} accepted "
        f"claims before the cut-off {meta['cutoff']} (+{args.claims // 100:,} after it, {args.claims // 50:,} "
        f"rejected, credit notes on 0.5 %); PostgreSQL; {cpus} CPUs; load average "
        f"{result['load'][0][0]:.1f} at the start, {result['load'][1][0]:.1f} at the end",
        f"setup (not timed): base {setup['base']}, run database copied from it in {setup['copy']:.0f} s",
        "",
        "| step | seconds | rows | peak RSS | CPU (Python) | CPU (PostgreSQL backend) | SQL statements |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["steps"]:
        db = f"{s['db_cpu']:.1f} s" if s["db_cpu"] is not None else "—"
        lines_out.append(f"| {s['step']} | {s['seconds']:.2f} | {s['rows']:,} | {s['rss_mb']:.0f} MB | "
                         f"{s['cpu']:.1f} s | {db} | {s['statements']:,} |")  # fmt: skip
    lines_out.append(f"| `rempart accounts check` (own process) | {accounts[0]:.2f} | — | — | — | — | — |")
    verdict = "met" if target <= TARGET_SECONDS else "missed"
    approve_parts = [
        ("IBANs re-read (account_to_pay, decryption)", calls.get("accounts_to_pay", 0.0)),
        ("pain.001 written (sepaxml)", write_seconds),
        ("pain.001 validated (XSD with lxml, control sums)", check_seconds),
        ("payable accounts loaded (payables_of_run, ORM)", calls.get("payables_of_run", 0.0)),
        ("payment postings (post_many)", calls.get("post_payments", 0.0)),
        ("transfers marked sent (one UPDATE … FROM unnest)", calls.get("_mark_sent", 0.0)),
        ("commit (deferred foreign-key checks, WAL)", calls.get("_commit", 0.0)),
    ]
    rest = approve["seconds"] - sum(seconds for _label, seconds in approve_parts)
    approve_parts.append(
        (
            "the rest (payments and professionals loaded, IBANs encrypted for the transfers, run row with its file, event)",
            rest,
        )
    )
    pcalls = prepare["calls"]
    prepare_parts = [
        (
            "where each organisation is paid (account_to_pay: holds, IBAN decryption)",
            pcalls.get("accounts_to_pay", 0.0),
        ),
        ("payments inserted (one INSERT … unnest)", pcalls.get("_insert", 0.0)),
        (
            "the rest of _fill (snapshot, ANALYZE, owed, statement lines: SQL)",
            pcalls.get("_fill", 0.0) - pcalls.get("accounts_to_pay", 0.0) - pcalls.get("_insert", 0.0),
        ),
        ("commit (deferred foreign-key checks, WAL)", pcalls.get("_commit", 0.0)),
        (
            "the rest (lock, reference, run row, held count, event)",
            prepare["seconds"] - pcalls.get("_fill", 0.0) - pcalls.get("_commit", 0.0),
        ),
    ]
    lines_out += [
        "",
        f"**Target: prepare + write + validate = {prepare['seconds']:.1f} + {write_seconds:.1f} + "
        f"{check_seconds:.1f} = {target:.1f} s ≤ {TARGET_SECONDS} s: {verdict}** (the whole approval, postings "
        f"included: prepare + approve = {prepare['seconds'] + approve['seconds']:.1f} s).",
        "",
        f"{transfers:,} transfers ({result['total_cents'] / 100:,.2f} €), {lines:,} statement lines, held: "
        + (", ".join(f"{k} {v}" for k, v in sorted(result["held"].items())) or "none")
        + f"; file {approve.get('file_mb', 0):.1f} MB.",
        "",
        "Ratios (same run): "
        f"prepare {prepare['seconds'] * per10k:.2f} s per 10,000 transfers, "
        f"{prepare['seconds'] / lines * 1e6 if lines else 0:.1f} µs per statement line; "
        f"approve {approve['seconds'] * per10k:.2f} s per 10,000 transfers "
        f"(write {write_seconds * per10k:.2f} s, validate {check_seconds * per10k:.2f} s, "
        f"file {approve.get('file_mb', 0) * per10k:.2f} MB per 10,000).",
        "",
        "Where the time goes:",
        "",
        "| step | part | seconds |",
        "|---|---|---:|",
        *[f"| prepare | {label} | {seconds:.2f} |" for label, seconds in prepare_parts],
        *[f"| approve | {label} | {seconds:.2f} |" for label, seconds in approve_parts],
        "",
        "Slowest SQL statements of the preparation and the approval:",
        "",
        "| step | statement (start) | calls | seconds |",
        "|---|---|---:|---:|",
    ]
    for s in (prepare, approve):
        for label, n, seconds in s["top_sql"][:5]:
            lines_out.append(
                f"| {s['step'].split(' (')[0]} | `{label.replace('|', '/')}` | {n} | {seconds:.2f} |"
            )
    lines_out += ["", "Checks:", ""]
    lines_out += [f"- {'ok' if ok else 'FAILED'}: {what}" for what, ok in result["checks"]]
    lines_out.append(f"- `rempart accounts check`: {accounts[1]}")
    return "\n".join(lines_out)


def main(argv: list[str] | None = None) -> None:
    rc.ensure_venv(__file__)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", nargs="?", default="all", choices=("all", "build", "run"))
    parser.add_argument("--professionals", type=int, default=50_000)
    parser.add_argument("--claims", type=int, default=1_000_000, help="accepted claims before the cut-off")
    parser.add_argument("--quick", action="store_true", help="2,000 professionals, 40,000 claims")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="build the cached base database again")
    parser.add_argument("--cutoff", help=argparse.SUPPRESS)
    parser.add_argument("--meta", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.professionals, args.claims = 2_000, 40_000
    if args.step == "build":
        return build(args)
    if args.step == "run":
        return run_bench(args)
    OUT.mkdir(parents=True, exist_ok=True)
    secrets = rc.bench_secrets()
    base, meta = ensure_base(args, secrets)
    started = time.monotonic()
    with rc.pg_connect(rc.PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{base}"')
    copy_seconds = time.monotonic() - started
    env = rc.base_env(secrets, RUN_DB)
    with rc.pg_connect(rc.pg_url(base)) as conn:
        meta.update(conn.execute("SELECT key, value FROM bench_meta").fetchall())
    result_path = OUT / "result.json"
    result_path.unlink(missing_ok=True)
    say(f"run database {RUN_DB} copied from {base} in {copy_seconds:.0f} s; timed steps …")
    rc.child("run", *_common(args), "--meta", json.dumps(meta), "--result", str(result_path), env=env,
             script=__file__)  # fmt: skip
    result = json.loads(result_path.read_text())
    say("rempart accounts check …")
    started = time.monotonic()
    out = subprocess.run(
        rc.rempart_cli("accounts", "check"), cwd=rc.ROOT, env=env, capture_output=True, text=True
    )
    last = ((out.stdout.strip() or out.stderr.strip()).splitlines() or [""])[-1]
    accounts = (
        time.monotonic() - started,
        f"{'OK' if out.returncode == 0 else 'FAILED'} (exit {out.returncode}): {last[:160]}",
    )
    report = render(args, meta, result, accounts, {"base": base, "copy": copy_seconds})
    print(report)
    (rc.OUT / "payments.md").write_text(report + "\n")
    if out.returncode or not all(ok for _what, ok in result["checks"]):
        sys.exit("some checks failed (above)")


if __name__ == "__main__":
    main()
