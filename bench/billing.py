#!/usr/bin/env python3
"""Insurer billing benchmark (issue 15, docs/benchmarks.md "Billing").

    python3 bench/billing.py [--lines 5000000] [--insurers 80] [--quick] [--rebuild] [--seed 1]

Steps (each Django step in a child process: production mode, secrets of bench/out/var/secrets.env, PostgreSQL):

1. **Base (cached, not timed).** A database ``rempart_bench_billing_l<L>_i<I>`` is migrated and filled once, then
   kept as a template (reused while its sizes, seed and secrets are the same and the migrations it was built
   under are unedited — newer ones are applied to the run copy; ``--rebuild`` starts again; ``--base-only``
   stops there). It holds **one month of paid claim lines** — the calendar month before today — over I insurers
   (skewed: a few big ones) with their receivables, billing contracts (monthly) and fee schedules (a default one,
   and for one insurer in eight a new schedule from the 16th: a change mid-period); P professional
   organisations (skewed senders) with their payables; contracts and beneficiaries (two per contract) of each
   insurer; L accepted claims with one claim line each (5 % reduced), a credit note on 0.5 % of them; four weekly
   payment runs (cut-off on Thursdays, approved on Fridays, all inside the month; the claims of the week before
   the month's first Thursday were accepted in the previous month and are paid, so billed, in this one), one
   ``sent`` payment per organisation and run with its ``payment`` transaction, one ``PaymentItem`` per claim
   and per credit note. **Everything is written set-wise (COPY and INSERT … SELECT), not through the claims or
   payments services** (bench/claims.py and bench/payments.py measure those): the same rows, keys, kinds and
   sources as ``claims.postings`` and ``payments.runs`` write, sealed by the ledger's triggers. The expected
   results (lines, amounts, fees per insurer, recomputed from the generator's own tables with the rule of
   docs/billing.md) go to ``bench_meta``.
2. **Run database.** ``rempart_bench_billing`` is dropped and re-created from the template; the detail
   directory is emptied.
3. **Timed, in one child process**: ``billing.statements.prepare_statements(first day, last day, user=…)`` for
   the month, every insurer (items, totals, fees posted, PDF); then ``billing.detail.write_details(statements)``
   for the month's statements (a CSV row per paid claim line, the beneficiaries read through the recording gate, purpose
   ``billing``); preparing the month again (must bill nothing). Then the checks (statements = the generator's
   expectation to the cent, detail rows and digests, each transaction billed once) and
   ``rempart accounts check`` in its own process.

Prints a table (step, seconds, rows, µs per line, peak RSS, CPU of the Python process and of its PostgreSQL
backend) and writes it to bench/out/billing.md. Target: statements + detail files ≤ 180 s; memory bounded.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import payments as pb  # noqa: E402 - the sibling benchmark's helpers (Probe, FINESS, migrations hash)
import rights_check as rc  # noqa: E402 - venv, secrets, PostgreSQL, Django

OUT = rc.OUT / "billing"
RUN_DB = "rempart_bench_billing"
TARGET_SECONDS = 180  # statements for the month + their detail files
RUNS = 4  # weekly payment runs in the month
DOMAINS = ("PHAR", "OPTI", "AUDI", "LABO", "DENT", "AUXI", "PHAR", "TRAN")
CODES = {"PHAR": ("CIP", "3400930000000"), "OPTI": ("LPP", "2200393"), "AUDI": ("LPP", "2355084"),
         "LABO": ("NABM", "1104"), "DENT": ("CCAM", "HBLD036"), "AUXI": ("NGAP", "AMI"),
         "TRAN": ("NGAP", "TAX")}  # fmt: skip
DEFAULT_FEES = {"per_invoice_cents": 15, "paid_share_basis_points": 50}
CHANGED_FEES = {"per_invoice_cents": 12, "paid_share_basis_points": 40}  # from the 16th, one insurer in 8
BILLER = "facturation@bench.invalid"


def say(message: str) -> None:
    rc.say(message)


def month_of(today: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar month before ``today``: the one the benchmark bills."""
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def cutoffs(start: dt.date) -> list[dt.date]:
    """The month's first RUNS Thursdays: the runs' cut-offs (each approved the next day, inside the month)."""
    first = start + dt.timedelta(days=(3 - start.weekday()) % 7)
    days = [first + dt.timedelta(weeks=k) for k in range(RUNS)]
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    assert days[-1] + dt.timedelta(days=1) <= end
    return days


# ---------------------------------------------------------------------------------------------- the base


def build(args) -> None:
    """Child (Django): fill the freshly migrated base database; the expected results go to bench_meta."""
    rc.setup_django()
    from django.db import connection, transaction
    from django.utils import timezone

    start = dt.date.fromisoformat(args.month)
    started = time.monotonic()
    with transaction.atomic():
        _parties(args, start)
        say(
            f"  {args.insurers} insurers, {args.professionals:,} professionals in {time.monotonic() - started:.0f} s"
        )
        _beneficiaries(args)
        say(f"  {args.beneficiaries:,} beneficiaries in {time.monotonic() - started:.0f} s")
        _claims(args, start)
        _ledger_and_payments(args, start)
        expected = _expected(start)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value text NOT NULL)")
        for key, value in {**expected, "built_at": timezone.now().isoformat()}.items():
            cursor.execute("INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = "
                           "EXCLUDED.value", [key, str(value)])  # fmt: skip
    say(f"  base filled in {time.monotonic() - started:.0f} s")


def _parties(args, start: dt.date) -> None:
    """Operator, billing user, insurers (receivables, contracts, products, fee schedules), professionals."""
    from django.db import connection

    from rempart.accounting import service as accounting
    from rempart.accounts.models import Membership, Organisation, Role, User
    from rempart.billing.models import BillingContract, FeeSchedule
    from rempart.registry.models import Insurer, Product

    operator = Organisation.objects.create(kind="operator", name="Opérateur (banc d'essai)")
    user = User.objects.create_user(BILLER, None, full_name="Facturation banc d'essai")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    Membership.objects.create(user=user, organisation=operator, role=Role.TREASURY)
    FeeSchedule.objects.create(insurer=None, effective_from=dt.date(2020, 1, 1), source="banc d'essai",
                               **DEFAULT_FEES)  # fmt: skip
    rows = []
    for n in range(args.insurers):
        insurer = Insurer.objects.create(amc_number=f"8{n:08d}", name=f"Mutuelle banc {n}", kind="mutuelle")
        Organisation.objects.create(kind="insurer", name=insurer.name, insurer=insurer)
        receivable = accounting.insurer_receivable(insurer)
        product = Product.objects.create(insurer=insurer, code="BENCH", label="Produit banc d'essai")
        BillingContract.objects.create(insurer=insurer, period=BillingContract.Period.MONTHLY, due_days=10)
        if n % 8 == 5:
            FeeSchedule.objects.create(insurer=insurer, effective_from=start.replace(day=16),
                                       source="avenant banc d'essai", **CHANGED_FEES)  # fmt: skip
        rows.append((n, insurer.pk, product.pk, receivable.pk))
    accounting.operator_bank()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_insurer (n int PRIMARY KEY, insurer_id bigint, product_id bigint, "
                       "receivable_id bigint)")  # fmt: skip
        with cursor.cursor.copy("COPY bench_insurer FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with cursor.cursor.copy("COPY registry_professional (finess, siret, name, domains, address, postal_code, "
                                "city, bic, iban_failed_reason, networks, convention) FROM STDIN") as copy:  # fmt: skip
            for n in range(args.professionals):
                domain = DOMAINS[n % len(DOMAINS)]
                copy.write_row((pb.finess(n + 1), "", f"{pb.NAMES[n % len(pb.NAMES)]} n°{n + 1}",
                                json.dumps([domain]), "", "", "", "", "", "[]", "conventionne"))  # fmt: skip
        cursor.execute("""
            CREATE TABLE bench_payee AS
            SELECT row_number() OVER (ORDER BY id) - 1 AS n, id AS professional_id, domains->>0 AS domain
              FROM registry_professional""")
        cursor.execute("""
            INSERT INTO accounts_organisation (kind, name, professional_id, status, created_at, insurer_id)
            SELECT 'professional', p.name, p.id, 'active', now(), NULL FROM registry_professional p ORDER BY p.id""")
        cursor.execute(
            "ALTER TABLE bench_payee ADD COLUMN organisation_id bigint, ADD COLUMN payable_id bigint"
        )
        cursor.execute("""UPDATE bench_payee b SET organisation_id = o.id FROM accounts_organisation o
                           WHERE o.professional_id = b.professional_id""")
        cursor.execute("""
            INSERT INTO accounting_account (code, name, purpose, kind, organisation_id, insurer_id, created_at)
            SELECT '401-ORG' || o.id, 'Dette envers ' || o.name || ' (FINESS ' || p.finess || ')',
                   'professional_payable', 'liability', o.id, NULL, now()
              FROM accounts_organisation o JOIN registry_professional p ON p.id = o.professional_id ORDER BY o.id""")
        cursor.execute("""UPDATE bench_payee b SET payable_id = a.id FROM accounting_account a
                           WHERE a.organisation_id = b.organisation_id AND a.purpose = 'professional_payable'""")
        cursor.execute("ALTER TABLE bench_payee ADD PRIMARY KEY (n)")


# Contracts drawn over the insurers skewed (power 1.6 of a Weyl sequence: a few big insurers, a long tail),
# two beneficiaries each (the member and a child).
_CONTRACTS = """
INSERT INTO registry_contract (insurer_id, adherent_number, product_id, start_date, end_date, status, fingerprint)
SELECT i.insurer_id, 'ADH' || lpad(c::text, 9, '0'), i.product_id, date '2020-01-01', NULL, 'active', c
  FROM generate_series(1, %(contracts)s) c
  JOIN bench_insurer i
    ON i.n = LEAST(%(ni)s - 1, FLOOR(%(ni)s * POWER(((c * 2654435761) %% 4294967296)::float8 / 4294967296, 1.6)))::int
 ORDER BY c
"""
_BENEFICIARIES = """
INSERT INTO registry_beneficiary (contract_id, member_number, quality, last_name, first_name, sex, birth_year,
    birth_month, birth_day, birth_rank, nir_cipher, nir_index, od_nir_cipher, od_nir_index, coverage_start,
    coverage_end, fingerprint)
SELECT c.id, m, CASE m WHEN 1 THEN 'A' ELSE 'E' END, 'BANC', 'Essai', CASE WHEN (c.id + m) %% 2 = 0 THEN 'F' ELSE 'M' END,
       CASE m WHEN 1 THEN 1960 + c.id %% 40 ELSE 2005 + c.id %% 15 END, 1 + c.id %% 12, 1 + c.id %% 28, 1,
       NULL, NULL, NULL, NULL, date '2020-01-01', NULL, c.id * 2 + m
  FROM registry_contract c CROSS JOIN generate_series(1, 2) m
 ORDER BY c.id, m
"""


def _beneficiaries(args) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_CONTRACTS, {"contracts": args.beneficiaries // 2, "ni": args.insurers})
        cursor.execute(_BENEFICIARIES, [])
        cursor.execute("""
            CREATE TABLE bench_ben AS
            SELECT row_number() OVER (ORDER BY b.id) - 1 AS n, b.id, c.insurer_id
              FROM registry_beneficiary b JOIN registry_contract c ON c.id = b.contract_id""")
        cursor.execute("ALTER TABLE bench_ben ADD PRIMARY KEY (n)")


# Claims g in 1..L: run k = g mod RUNS, accepted (effective) 0–6 days before that run's cut-off; the beneficiary
# by a Weyl sequence (its contract's insurer is the claim's), the organisation skewed (power 2). 5 % reduced to
# 80 %; one claim line each.
_CLAIMS = """
CREATE TABLE bench_claim AS
SELECT g, g %% %(runs)s AS k, (%(cutoffs)s::date[])[1 + g %% %(runs)s] - ((g / %(runs)s) %% 7)::int AS day,
       b.id AS beneficiary_id, b.insurer_id, p.organisation_id, p.payable_id, p.domain,
       500 + (g * 7919) %% 29500 AS claimed, g %% 20 = 3 AS reduced
  FROM generate_series(1::bigint, %(lines)s) g
  JOIN bench_ben b ON b.n = (g * 40503) %% %(nb)s
  JOIN bench_payee p
    ON p.n = LEAST(%(np)s - 1, FLOOR(%(np)s * POWER(((g * 2654435761) %% 4294967296)::float8 / 4294967296, 2)))::int
"""
_CLAIM_ROWS = """
INSERT INTO claims_claim (organisation_id, invoice_number, channel, lot_line, beneficiary_id, domain, invoice_date,
    care_date, prescriber_rpps, pec_number, status, total_price_cents, total_amo_cents, claimed_cents,
    accepted_cents, decision, rule_version, data_version, request_fingerprint, ledger_reference, created_at,
    reviewed_at, review_reason, review_note, insurer_id, pec_id, reviewed_by_id, token_id, user_id, lot_id)
SELECT s.organisation_id, 'F' || lpad(s.g::text, 9, '0'), 'lot', NULL, s.beneficiary_id, s.domain, s.day, s.day - 1,
       '10001234565', '', CASE WHEN s.reduced THEN 'partially_accepted' ELSE 'accepted' END, s.claimed * 3,
       s.claimed * 2, s.claimed, CASE WHEN s.reduced THEN s.claimed * 8 / 10 ELSE s.claimed END,
       '{"status": "accepted", "lines": [], "reasons": [], "review_reasons": [], "rule_version": "bench-1",
         "data_version": "bench-1", "explanation": ""}'::jsonb,
       'bench-1', 'bench-1', md5('bench-billing-' || s.g), 'B' || lpad(s.g::text, 12, '0'),
       (s.day + time '10:00') AT TIME ZONE 'Europe/Paris', NULL, '', '', s.insurer_id, NULL, NULL, NULL, NULL, NULL
  FROM bench_claim s ORDER BY s.g
"""
_CLAIM_LINES = """
INSERT INTO claims_claimline (claim_id, number, organisation_id_copy, beneficiary_id, care_date, code_system, code,
    lpp_class, side, quantity, unit_price_cents, base_cents, amo_paid_cents, amc_claimed_cents, status,
    accepted_cents, reasons)
SELECT c.id, 1, c.organisation_id, c.beneficiary_id, c.care_date, x.system, x.code, '', '', 1, c.total_price_cents,
       c.total_price_cents, c.total_amo_cents, c.claimed_cents,
       CASE WHEN c.status = 'partially_accepted' THEN 'reduced' ELSE 'accepted' END, c.accepted_cents, '[]'::jsonb
  FROM claims_claim c JOIN bench_code x ON x.domain = c.domain ORDER BY c.id
"""
_CREDIT_NOTES = """
INSERT INTO claims_creditnote (number, amount_cents, reason, created_at, claim_id, organisation_id, token_id, user_id)
SELECT 'AV' || c.invoice_number, c.accepted_cents / 2, 'avoir (banc d''essai)', c.created_at + interval '1 hour',
       c.id, c.organisation_id, NULL, NULL
  FROM claims_claim c WHERE c.id %% 200 = 7
"""


def _claims(args, start: dt.date) -> None:
    from django.db import connection

    days = cutoffs(start)
    with connection.cursor() as cursor:
        began = time.monotonic()
        cursor.execute(_CLAIMS, {"runs": RUNS, "cutoffs": days, "lines": args.lines, "nb": args.beneficiaries,
                                 "np": args.professionals})  # fmt: skip
        cursor.execute(_CLAIM_ROWS)
        say(f"  {cursor.rowcount:,} claims in {time.monotonic() - began:.0f} s")
        cursor.execute("CREATE TEMPORARY TABLE bench_code (domain text, system text, code text)")
        for domain, (system, code) in CODES.items():
            cursor.execute("INSERT INTO bench_code VALUES (%s, %s, %s)", [domain, system, code])
        cursor.execute(_CLAIM_LINES)
        say(f"  {cursor.rowcount:,} claim lines in {time.monotonic() - began:.0f} s")
        cursor.execute(_CREDIT_NOTES, [])


# The ledger as claims.postings writes it (claim:<id>:1 claim_accepted; claim:<id>:2 claim_reversed for a
# credit note, effective the same day), then per run and organisation one payment (payments.runs: reference
# <run>-O<organisation>, key payment:<id>, source payment) and one PaymentItem per claim transaction.
_ENTRIES = """
CREATE TABLE bench_entry AS
SELECT row_number() OVER (ORDER BY e.claim_id, e.version) AS rn, e.* FROM (
  SELECT c.id AS claim_id, 1 AS version, 'claim_accepted' AS kind, c.accepted_cents::bigint AS amount, s.day, s.k,
         c.invoice_number, s.organisation_id, s.payable_id, i.receivable_id, s.insurer_id
    FROM claims_claim c JOIN bench_claim s ON s.g = substr(c.invoice_number, 2)::bigint
    JOIN bench_insurer i ON i.insurer_id = s.insurer_id
  UNION ALL
  SELECT c.id, 2, 'claim_reversed', -n.amount_cents::bigint, s.day, s.k, c.invoice_number, s.organisation_id,
         s.payable_id, i.receivable_id, s.insurer_id
    FROM claims_creditnote n JOIN claims_claim c ON c.id = n.claim_id
    JOIN bench_claim s ON s.g = substr(c.invoice_number, 2)::bigint
    JOIN bench_insurer i ON i.insurer_id = s.insurer_id
) e
"""
_POSTINGS = """
INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date)
SELECT %s + e.rn, leg.account_id, leg.amount, e.day
  FROM bench_entry e
 CROSS JOIN LATERAL (VALUES (e.receivable_id, e.amount), (e.payable_id, -e.amount)) leg(account_id, amount)
 ORDER BY e.rn
"""
_TRANSACTIONS = """
INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, created_at,
                                    effective_date, reverses_id)
SELECT %s + e.rn, e.kind, 'claim:' || e.claim_id || ':' || e.version,
       CASE e.version WHEN 1 THEN 'facture ' ELSE 'avoir AV' END || e.invoice_number, 'claim', e.claim_id::text,
       (e.day + time '10:00') AT TIME ZONE 'Europe/Paris', e.day, NULL
  FROM bench_entry e ORDER BY e.rn
"""
_RUNS = """
INSERT INTO payments_paymentrun (reference, cutoff, execution_date, status, prepared_by_id, prepared_at,
    approved_by_id, approved_at, cancelled_by_id, cancelled_at, cancel_reason, transfer_count, total_cents,
    file_name, file_content, file_sha256, file_written_at)
SELECT 'PR-' || to_char(d, 'YYYYMMDD') || '-001', d, d + 1, 'approved', NULL,
       (d + time '18:00') AT TIME ZONE 'Europe/Paris', NULL, (d + 1 + time '09:00') AT TIME ZONE 'Europe/Paris',
       NULL, NULL, '', 0, 0, '', NULL, '', NULL
  FROM unnest(%s::date[]) d ORDER BY d
"""
_PAYMENTS = """
CREATE TABLE bench_pay AS
SELECT row_number() OVER (ORDER BY e.k, e.organisation_id) AS rn, e.k, e.organisation_id, e.payable_id,
       SUM(e.amount) AS amount, r.id AS run_id, r.reference AS run_reference, r.execution_date AS day
  FROM bench_entry e
  JOIN payments_paymentrun r ON r.cutoff = (%s::date[])[1 + e.k]
 GROUP BY e.k, e.organisation_id, e.payable_id, r.id, r.reference, r.execution_date
"""
_PAYMENT_ROWS = """
INSERT INTO payments_payment (run_id, organisation_id, reference, amount_cents, status, creditor_name, iban_cipher,
    iban_masked, bic, held_reason, transaction_id, return_transaction_id, return_reason, returned_at, settled_at,
    created_at)
SELECT p.run_id, p.organisation_id, p.run_reference || '-O' || p.organisation_id, p.amount, 'sent', 'BANC ESSAI',
       NULL, 'FR76 •••• 0000', '', '', NULL, NULL, '', NULL, NULL, (p.day - 1 + time '18:00') AT TIME ZONE 'Europe/Paris'
  FROM bench_pay p ORDER BY p.rn
"""
_PAY_POSTINGS = """
INSERT INTO accounting_posting (transaction_id, account_id, amount_cents, effective_date)
SELECT %s + p.rn, leg.account_id, leg.amount, p.day
  FROM bench_pay p
 CROSS JOIN LATERAL (VALUES (p.payable_id, p.amount), (%s::bigint, -p.amount)) leg(account_id, amount)
 ORDER BY p.rn
"""
_PAY_TRANSACTIONS = """
INSERT INTO accounting_transaction (id, kind, idempotency_key, memo, source_type, source_id, created_at,
                                    effective_date, reverses_id)
SELECT %s + p.rn, 'payment', 'payment:' || pay.id, 'virement ' || pay.reference, 'payment', pay.id::text,
       (p.day + time '09:00') AT TIME ZONE 'Europe/Paris', p.day, NULL
  FROM bench_pay p JOIN payments_payment pay ON pay.reference = p.run_reference || '-O' || p.organisation_id
 ORDER BY p.rn
"""
_ITEMS = """
INSERT INTO payments_paymentitem (payment_id, kind, transaction_id, claim_id, amount_cents)
SELECT pay.id, CASE e.version WHEN 1 THEN 'claim' ELSE 'credit_note' END, %s + e.rn, e.claim_id, e.amount
  FROM bench_entry e
  JOIN bench_pay p ON p.k = e.k AND p.organisation_id = e.organisation_id
  JOIN payments_payment pay ON pay.reference = p.run_reference || '-O' || p.organisation_id
 ORDER BY e.rn
"""


def _reserve_ids(cursor, count: int) -> int:
    """``count`` transaction ids taken from the sequence; returns the one before the first."""
    cursor.execute("SELECT nextval(pg_get_serial_sequence('accounting_transaction', 'id'))")
    [base] = cursor.fetchone()
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence('accounting_transaction', 'id'), %s)", [base + count]
    )
    return base - 1


def _ledger_and_payments(args, start: dt.date) -> None:
    from django.db import connection

    from rempart.accounting import service as accounting

    days = cutoffs(start)
    bank = accounting.operator_bank().pk
    with connection.cursor() as cursor:
        began = time.monotonic()
        cursor.execute(_ENTRIES)
        cursor.execute("SELECT COUNT(*) FROM bench_entry")
        [entries] = cursor.fetchone()
        base = _reserve_ids(cursor, entries)
        cursor.execute(_POSTINGS, [base])
        cursor.execute(_TRANSACTIONS, [base])  # the ledger's seal trigger checks every one of them
        say(f"  {entries:,} claim transactions in {time.monotonic() - began:.0f} s")
        cursor.execute(_RUNS, [days])
        cursor.execute(_PAYMENTS, [days])
        cursor.execute(_PAYMENT_ROWS)
        payments = cursor.rowcount
        pay_base = _reserve_ids(cursor, payments)
        cursor.execute(_PAY_POSTINGS, [pay_base, bank])
        cursor.execute(_PAY_TRANSACTIONS, [pay_base])
        cursor.execute("""UPDATE payments_payment pay SET transaction_id = t.id FROM accounting_transaction t
                           WHERE t.source_type = 'payment' AND t.source_id = pay.id::text""")
        cursor.execute("""UPDATE payments_paymentrun r SET transfer_count = s.n, total_cents = s.total
                            FROM (SELECT run_id, COUNT(*) AS n, SUM(amount_cents) AS total FROM payments_payment
                                   GROUP BY run_id) s WHERE s.run_id = r.id""")
        cursor.execute(_ITEMS, [base])
        say(f"  {payments:,} payments, {cursor.rowcount:,} payment items in {time.monotonic() - began:.0f} s")


def _expected(start: dt.date) -> dict:
    """What the month's statements must say, from the generator's tables (not from the ledger they read):
    per insurer the paid and reversed amounts, the lines and the fees by the rule of docs/billing.md (each
    item on its day brought into the month, that day's schedule; the share rounded once, half up)."""
    from django.db import connection

    changed_from = start.replace(day=16)
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT e.insurer_id, i.n, GREATEST(e.day, %s) AS day, e.version, COUNT(*), SUM(e.amount)
              FROM bench_entry e JOIN bench_insurer i ON i.insurer_id = e.insurer_id
             GROUP BY 1, 2, 3, 4""", [start])  # fmt: skip
        rows = cursor.fetchall()
        cursor.execute("SELECT COUNT(*) FROM bench_claim")
        [claims] = cursor.fetchone()
        cursor.execute("SELECT COUNT(DISTINCT beneficiary_id) FROM bench_claim")
        [people] = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM bench_entry WHERE version = 2")
        [credit_notes] = cursor.fetchone()
    per: dict[int, dict] = {}
    for insurer_id, n, day, version, count, cents in rows:
        entry = per.setdefault(insurer_id, {"paid": 0, "reversals": 0, "lines": 0, "unit": 0, "share": 0})
        fees = CHANGED_FEES if (n % 8 == 5 and day >= changed_from) else DEFAULT_FEES
        cents = int(cents)
        if version == 1:
            entry["paid"] += cents
            entry["lines"] += count
            entry["unit"] += count * fees["per_invoice_cents"]
        else:
            entry["reversals"] += cents
        entry["share"] += cents * fees["paid_share_basis_points"]
    expected = {
        str(insurer_id): [e["paid"], e["reversals"], e["lines"],
                          e["unit"] + ((2 * e["share"] + 10_000) // 20_000 if e["share"] > 0 else 0)]
        for insurer_id, e in per.items()
    }  # fmt: skip
    return {"expected": json.dumps(expected), "lines": claims, "beneficiaries_billed": people, "credit_notes": credit_notes,
            "month": start.isoformat()}  # fmt: skip


def ensure_base(args, secrets: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The cached base database (built if missing or stale), analysed and vacuumed; its meta."""
    name = f"{RUN_DB}_l{args.lines}_i{args.insurers}"
    wanted = {"status": "complete", "lines": str(args.lines), "insurers": str(args.insurers),
              "professionals": str(args.professionals), "beneficiaries": str(args.beneficiaries),
              "seed": str(args.seed), "key": rc.key_fingerprint(secrets)}  # fmt: skip
    meta = rc.read_meta(name)
    same = all(meta.get(k) == v for k, v in wanted.items())
    fresh = same and _migrations_kept(meta)
    if same and not fresh and args.keep_base:
        say(f"warning: {name} was built under migrations edited since; kept anyway (--keep-base)")
        fresh = True
    if not args.rebuild and fresh:
        say(f"reusing {name} (built {meta['built_at'][:16]}, month {meta['month']})")
        return name, meta
    if meta:
        stale = [k for k, v in wanted.items() if meta.get(k) != v] or ["an edited or removed migration"]
        say(f"{name}: rebuilding ({'--rebuild' if args.rebuild else 'differs: ' + ', '.join(stale)})")
    started = time.monotonic()
    with rc.pg_connect(rc.PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = rc.base_env(secrets, name)
    rc.run(rc.rempart_cli("migrate", "--verbosity", "0"), env)
    start, _end = month_of(rc.paris_today())
    say(
        f"building {name}: {args.lines:,} paid claim lines over {args.insurers} insurers, month {start:%Y-%m} …"
    )
    rc.child("build", *_common(args), "--month", start.isoformat(), env=env, script=__file__)
    with rc.pg_connect(rc.pg_url(name)) as conn:
        conn.execute("VACUUM (ANALYZE)")
    rc.write_meta(
        name, **wanted, migrations=json.dumps(migration_digests()),
        build_seconds=f"{time.monotonic() - started:.0f}",
    )  # fmt: skip
    say(f"built {name} in {time.monotonic() - started:.0f} s")
    return name, rc.read_meta(name)


def migration_digests() -> dict[str, str]:
    """Each migration file's digest, by path: what the base was built under."""
    return {
        str(path.relative_to(rc.ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted((rc.ROOT / "rempart").glob("*/migrations/*.py"))
    }


def _migrations_kept(meta: dict) -> bool:
    """The base's migrations are all still there, unedited: it is reused and only newer ones are applied to the
    run copy (``migrate``, not timed); an edited or removed one means a rebuild (the base's rows follow it)."""
    try:
        built_under = json.loads(meta.get("migrations") or "")
    except ValueError:
        return False
    now = migration_digests()
    return bool(built_under) and all(now.get(path) == digest for path, digest in built_under.items())


def _common(args) -> list[str]:
    return ["--lines", str(args.lines), "--insurers", str(args.insurers), "--professionals",
            str(args.professionals), "--beneficiaries", str(args.beneficiaries), "--seed", str(args.seed)]  # fmt: skip


# ---------------------------------------------------------------------------------------------- the timed run


def run_bench(args) -> None:
    """Child (Django): the timed steps and the checks; results to args.result (JSON)."""
    rc.setup_django()
    from django.db import connection

    from rempart.accounts.models import User

    try:
        from rempart.billing import detail, statements
    except ImportError as exc:  # another helper's module, not there yet: the base is built, nothing to time
        sys.exit(f"rempart.billing.statements / detail not importable yet ({exc}): base built, nothing timed")
    from rempart.billing.models import Statement, StatementItem

    meta = json.loads(args.meta)
    start = dt.date.fromisoformat(meta["month"])
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    expected = {int(k): v for k, v in json.loads(meta["expected"]).items()}
    lines_total = int(meta["lines"])
    if Statement.objects.exists():
        sys.exit("the run database already holds statements")
    user = User.objects.get(email=BILLER)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    probe, steps, checks = pb.Probe(pid), [], []
    for module, name in ((statements, "_bill_items"), (statements, "_period_fees"), (statements, "_totals"),
                         (detail, "_chunk_rows"), (detail, "read_for_billing"), (detail, "copy_details"),
                         (detail, "_payment_references"), (statements, "_aggregate")):  # fmt: skip
        if hasattr(module, name):  # the modules' internals may be renamed: time what is there
            probe.wrap(module, name)
    probe.wrap(connection, "_commit")

    def check(what: str, ok: bool) -> None:
        checks.append((what, bool(ok)))
        if not ok:
            say(f"CHECK FAILED: {what}")

    load = [os.getloadavg()]
    with connection.execute_wrapper(probe.execute):
        say(f"prepare_statements {start} … {end} (all insurers) …")
        probe.start()
        issued = statements.prepare_statements(start, end, user=user)
        steps.append(
            probe.stop("prepare_statements (items, totals, fees posted, PDF), all insurers", lines_total)
        )
        say(f"  {steps[-1]['seconds']:.1f} s: {len(issued)} statements")
        items = StatementItem.objects.count()  # not timed

        say("write_details for the month's statements …")
        probe.start()
        files = list(detail.write_details(issued).values())
        rows = sum(f.rows for f in files)
        size = sum(f.path.stat().st_size for f in files)
        steps.append(probe.stop("write_details, every statement (CSV, gate reads recorded)", rows,
                                file_mb=size / 1e6))  # fmt: skip
        say(f"  {steps[-1]['seconds']:.1f} s: {rows:,} rows, {size / 1e6:.0f} MB")

        probe.start()
        again = statements.prepare_statements(start, end, user=user)
        steps.append(probe.stop("prepare_statements again (a replay: nothing billed)", 0))
    load.append(os.getloadavg())

    check(f"one statement per insurer ({len(expected)})",
          sorted(s.insurer_id for s in issued) == sorted(expected))  # fmt: skip
    check("the replay returns the same statements and bills nothing",
          sorted(s.pk for s in again) == sorted(s.pk for s in issued) and StatementItem.objects.count() == items)  # fmt: skip
    wrong = []
    for s in issued:
        paid, reversals, lines, fees = expected.get(s.insurer_id, [None] * 4)
        if (s.paid_cents, s.reversals_cents, s.fees_cents) != (paid, reversals, fees):
            wrong.append((s.number, s.paid_cents, paid, s.reversals_cents, reversals, s.fees_cents, fees))
    check("each statement's paid, reversals and fees = the generator's expectation, to the cent", not wrong)
    if wrong:
        say(f"  first differences (number, paid, expected, reversals, expected, fees, expected): {wrong[:3]}")
    check("each statement's total = paid + reversals + fees",
          all(s.total_cents == s.paid_cents + s.reversals_cents + s.fees_cents for s in issued))  # fmt: skip
    check("each claim transaction of the month billed once (items = claims + credit notes)",
          items == StatementItem.objects.values("transaction_id").distinct().count()
          and items == lines_total + int(meta["credit_notes"]))  # fmt: skip
    check(f"detail rows = paid claim lines ({lines_total:,})", rows == lines_total)
    check("each detail file matches the SHA-256 kept on its statement",
          all(detail.file_digest(f.path) == f.sha256 for f in files))  # fmt: skip
    connection.close()
    Path(args.result).write_text(json.dumps({"steps": steps, "checks": checks, "load": load,
                                             "statements": len(issued), "rows": rows, "items": items}))  # fmt: skip


# ---------------------------------------------------------------------------------------------- report


def render(args, meta: dict, result: dict, accounts: tuple[float, str], setup: dict) -> str:
    prepare, write = result["steps"][0], result["steps"][1]
    lines = int(meta["lines"])
    target = prepare["seconds"] + write["seconds"]
    out = [
        f"billing benchmark: {lines:,} paid claim lines (one line per claim, credit notes on 0.5 %) over "
        f"{args.insurers} insurers, {args.professionals:,} professionals, {args.beneficiaries:,} beneficiaries "
        f"({int(meta['beneficiaries_billed']):,} billed), month {meta['month'][:7]}, {RUNS} weekly runs; "
        f"PostgreSQL; {os.cpu_count()} CPUs; load average {result['load'][0][0]:.1f} at the start, "
        f"{result['load'][1][0]:.1f} at the end",
        f"setup (not timed): base {setup['base']} (built in {meta.get('build_seconds', '?')} s, set-wise SQL, "
        f"not through the services), run database copied from it in {setup['copy']:.0f} s",
        "",
        "| step | seconds | rows | µs per line | peak RSS | CPU (Python) | CPU (PostgreSQL backend) | SQL statements |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["steps"]:
        db = f"{s['db_cpu']:.1f} s" if s["db_cpu"] is not None else "—"
        per = f"{s['seconds'] / lines * 1e6:.1f}" if s["rows"] else "—"
        out.append(f"| {s['step']} | {s['seconds']:.2f} | {s['rows']:,} | {per} | {s['rss_mb']:.0f} MB | "
                   f"{s['cpu']:.1f} s | {db} | {s['statements']:,} |")  # fmt: skip
    out.append(f"| `rempart accounts check` (own process) | {accounts[0]:.2f} | — | — | — | — | — | — |")
    verdict = "met" if target <= TARGET_SECONDS else "missed"
    out += [
        "",
        f"**Target: statements + detail files = {prepare['seconds']:.1f} + {write['seconds']:.1f} = {target:.1f} s "
        f"≤ {TARGET_SECONDS} s: {verdict}** ({target / lines * 1e6:.1f} µs per line; {result['statements']} "
        f"statements, {result['items']:,} statement items, detail {write.get('file_mb', 0):.0f} MB, "
        f"{write.get('file_mb', 0) / lines * 1e6:.0f} bytes per line; peak RSS {write['rss_mb']:.0f} MB).",
        "",
        "Where the time goes:",
        "",
        "| step | part | seconds |",
        "|---|---|---:|",
    ]
    for s in (prepare, write):
        for name, seconds in sorted(s["calls"].items(), key=lambda item: -item[1]):
            out.append(f"| {s['step'].split(' (')[0]} | `{name}` | {seconds:.2f} |")
    out += [
        "",
        "Slowest SQL statements:",
        "",
        "| step | statement (start) | calls | seconds |",
        "|---|---|---:|---:|",
    ]
    for s in (prepare, write):
        for label, n, seconds in s["top_sql"][:5]:
            out.append(f"| {s['step'].split(' (')[0]} | `{label.replace('|', '/')}` | {n} | {seconds:.2f} |")
    out += ["", "Checks:", ""]
    out += [f"- {'ok' if ok else 'FAILED'}: {what}" for what, ok in result["checks"]]
    out.append(f"- `rempart accounts check`: {accounts[1]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    rc.ensure_venv(__file__)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", nargs="?", default="all", choices=("all", "build", "run"))
    parser.add_argument("--lines", type=int, default=5_000_000, help="paid claim lines in the month")
    parser.add_argument("--insurers", type=int, default=80)
    parser.add_argument("--professionals", type=int, default=20_000)
    parser.add_argument("--beneficiaries", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 lines, 8 insurers, 500 professionals")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="build the cached base database again")
    parser.add_argument(
        "--base-only", action="store_true", help="build (or check) the cached base, time nothing"
    )
    parser.add_argument(
        "--keep-base", action="store_true",
        help="reuse the base even if a migration it was built under was edited since",
    )  # fmt: skip
    parser.add_argument("--month", help=argparse.SUPPRESS)
    parser.add_argument("--meta", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.lines, args.insurers, args.professionals, args.beneficiaries = 50_000, 8, 500, 20_000
    if args.step == "build":
        return build(args)
    if args.step == "run":
        return run_bench(args)
    OUT.mkdir(parents=True, exist_ok=True)
    secrets = rc.bench_secrets()
    base, meta = ensure_base(args, secrets)
    if args.base_only:
        return None
    started = time.monotonic()
    with rc.pg_connect(rc.PG_ADMIN_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{RUN_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{RUN_DB}" TEMPLATE "{base}"')
    copy_seconds = time.monotonic() - started
    billing_dir = OUT / "files"
    shutil.rmtree(billing_dir, ignore_errors=True)
    env = {**rc.base_env(secrets, RUN_DB), "REMPART_BILLING_DIR": str(billing_dir)}
    newer = sorted(set(migration_digests()) - set(json.loads(meta.get("migrations") or "{}")))
    if newer:  # migrations added since the base was built: applied to the copy, not timed
        say(f"applying {len(newer)} newer migration(s) to {RUN_DB} …")
        rc.run(rc.rempart_cli("migrate", "--verbosity", "0"), env)
        with rc.pg_connect(rc.pg_url(RUN_DB)) as conn:
            conn.execute("ANALYZE")
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
    accounts = (time.monotonic() - started,
                f"{'OK' if out.returncode == 0 else 'FAILED'} (exit {out.returncode}): {last[:160]}")  # fmt: skip
    report = render(args, meta, result, accounts, {"base": base, "copy": copy_seconds})
    print(report)
    (rc.OUT / "billing.md").write_text(report + "\n")
    if out.returncode or not all(ok for _what, ok in result["checks"]):
        sys.exit("some checks failed (above)")


if __name__ == "__main__":
    main()
