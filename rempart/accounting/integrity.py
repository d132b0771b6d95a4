"""``rempart accounts check``: the ledger's invariant verified from the data, not trusted from the triggers.

The triggers stop the application (and a careless hand) from breaking the books; someone with the
database owner's rights can still drop them. This check reads everything again with plain queries: each
transaction balances, no posting lives outside one, each reversal is the exact opposite of its original,
every account's balance as the reports derive it equals an independent sum, and the guards are in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from rempart.accounting import books
from rempart.accounting.models import PURPOSES, Account, Posting, Transaction

SQLITE_TRIGGERS = [
    "accounting_posting_integer",
    "accounting_posting_open",
    "accounting_posting_no_update",
    "accounting_posting_no_delete",
    "accounting_transaction_seal",
    "accounting_transaction_no_update",
    "accounting_transaction_no_delete",
    "accounting_account_identity",
]
PG_TRIGGERS = [
    "accounting_posting_append_only",
    "accounting_transaction_append_only",
    "accounting_posting_open",
    "accounting_transaction_seal",
    "accounting_account_identity",
]
SHOWN = 5  # ids quoted per problem

UNBALANCED_TRANSACTIONS = """
    SELECT t.id FROM accounting_transaction t LEFT JOIN accounting_posting p ON p.transaction_id = t.id
     GROUP BY t.id HAVING COUNT(p.id) < 2 OR COALESCE(SUM(p.amount_cents), 0) <> 0 ORDER BY t.id"""
_QUERIES = {
    "transactions that do not balance (fewer than two legs, or legs not summing to zero)": UNBALANCED_TRANSACTIONS,
    "postings without a sealed transaction": """
        SELECT p.id FROM accounting_posting p LEFT JOIN accounting_transaction t ON t.id = p.transaction_id
         WHERE t.id IS NULL ORDER BY p.id""",
    "postings dated otherwise than their transaction": """
        SELECT p.id FROM accounting_posting p JOIN accounting_transaction t ON t.id = p.transaction_id
         WHERE p.effective_date <> t.effective_date ORDER BY p.id""",
    "postings of zero": "SELECT id FROM accounting_posting WHERE amount_cents = 0 ORDER BY id",
    "postings to an unknown account": """
        SELECT p.id FROM accounting_posting p LEFT JOIN accounting_account a ON a.id = p.account_id
         WHERE a.id IS NULL ORDER BY p.id""",
    "reversals that are not the exact opposite of their original": """
        SELECT DISTINCT r.id FROM accounting_transaction r
          JOIN accounting_posting p ON p.transaction_id = r.id OR p.transaction_id = r.reverses_id
         WHERE r.reverses_id IS NOT NULL
         GROUP BY r.id, p.account_id HAVING SUM(p.amount_cents) <> 0 ORDER BY r.id""",
}
_SQLITE_QUERIES = {
    "postings whose amount is not an integer": (
        "SELECT id FROM accounting_posting WHERE typeof(amount_cents) <> 'integer' ORDER BY id"
    ),
}
# The independent sum: through the transactions (so a posting outside one does not count), by account.
_SUM_THROUGH_TRANSACTIONS = """
    SELECT p.account_id, SUM(p.amount_cents) FROM accounting_transaction t
      JOIN accounting_posting p ON p.transaction_id = t.id GROUP BY p.account_id"""


@dataclass
class Report:
    accounts: int = 0
    transactions: int = 0
    postings: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _ids(sql: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def _quote(ids: list) -> str:
    shown = ", ".join(f"#{i}" for i in ids[:SHOWN])
    return shown + (f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else "")


def missing_guards() -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'accounting%' AND tgenabled <> 'D'"
            )
            expected = PG_TRIGGERS
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'accounting%'"
            )
            expected = SQLITE_TRIGGERS
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in expected if name not in present]


def verify() -> Report:
    report = Report(
        accounts=Account.objects.count(),
        transactions=Transaction.objects.count(),
        postings=Posting.objects.count(),
    )
    problems = report.problems
    queries = dict(_QUERIES, **(_SQLITE_QUERIES if connection.vendor == "sqlite" else {}))
    for what, sql in queries.items():
        ids = _ids(sql)
        if ids:
            problems.append(f"{len(ids)} {what}: {_quote(ids)}")

    derived = {row.account.pk: row for row in books.balances()}
    with connection.cursor() as cursor:
        cursor.execute(_SUM_THROUGH_TRANSACTIONS)
        independent = {account_id: int(total) for account_id, total in cursor.fetchall()}
    wrong = [row.account.code for pk, row in derived.items() if row.balance_cents != independent.get(pk, 0)]
    if wrong:
        problems.append(f"{len(wrong)} accounts whose balance differs from the sum of their postings: "
                        + ", ".join(wrong[:SHOWN]))  # fmt: skip
    total = sum(row.balance_cents for row in derived.values())
    if total != 0:
        problems.append(f"the balances of all accounts sum to {total} cents, not 0")
    trial = books.trial_balance()
    if not trial.balanced:
        problems.append(f"trial balance: debits {trial.debits_cents} ≠ credits {trial.credits_cents} cents")

    misfiled = [
        row.account.code
        for row in derived.values()
        if (row.account.kind, _owner(row.account))
        != PURPOSES.get(row.account.purpose, (None, None, None))[:2]
    ]
    if misfiled:
        problems.append(f"{len(misfiled)} accounts whose kind or owner contradicts their purpose: "
                        + ", ".join(misfiled[:SHOWN]))  # fmt: skip
    missing = missing_guards()
    if missing:
        problems.append("database guards missing or disabled: " + ", ".join(missing))
    return report


def _owner(account: Account) -> str:
    if account.insurer_id and not account.organisation_id:
        return "insurer"
    if account.organisation_id and not account.insurer_id:
        return "organisation"
    return "operator" if not account.insurer_id and not account.organisation_id else "both"
