"""Property-based (hypothesis): random sequences of claims, reviews, credit notes, replays, receipts and payments.

After each sequence every transaction balances, all balances add up to zero, each party's balance is what
the sequence says it should be, the trial balance balances, ageing adds up, and `accounts check` passes.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict

from django.core.management import call_command
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.accounting import integrity, service
from rempart.accounting.models import Transaction
from rempart.accounting.tests.conftest import DAY

K = service.Kind
PARTIES = 3

SEQUENCES = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DAYS = st.integers(0, 40)  # days since the previous operation
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("accept"),
            DAYS,
            st.integers(0, PARTIES - 1),
            st.integers(0, PARTIES - 1),
            st.integers(1, 2_000_000),
        ),  # fmt: skip
        st.tuples(st.just("review"), DAYS, st.integers(0, 999), st.integers(1, 2_000_000)),
        st.tuples(st.just("credit_note"), DAYS, st.integers(0, 999)),
        st.tuples(st.just("replay"), DAYS, st.integers(0, 999)),
        st.tuples(st.just("receipt"), DAYS, st.integers(0, PARTIES - 1), st.integers(1, 3_000_000)),
        st.tuples(st.just("pay"), DAYS, st.integers(0, PARTIES - 1)),
    ),
    max_size=30,
)


class Claim:
    def __init__(self, n: int, insurer: int, shop: int, cents: int, accepted: Transaction) -> None:
        self.n, self.insurer, self.shop, self.cents = n, insurer, shop, cents
        self.accepted, self.reviews, self.reduced, self.cancelled = accepted, [], 0, False

    @property
    def worth(self) -> int:
        return 0 if self.cancelled else self.cents - self.reduced


def play(parties, operations) -> dict:
    """Apply the operations to the ledger and to a plain model of what each party owes."""
    claims: list[Claim] = []
    received, paid = defaultdict(int), defaultdict(int)
    expected_transactions = 0
    day = DAY
    for op, gap, *args in operations:
        day += dt.timedelta(days=gap)
        if op == "accept":
            insurer, shop, cents = args
            n = len(claims)
            tx = service.post(K.CLAIM_ACCEPTED, [(parties.receivables[insurer], cents), (parties.payables[shop], -cents)],
                              idempotency_key=f"claim:{n}:1", source=("claim", str(n)), effective_date=day)  # fmt: skip
            claims.append(Claim(n, insurer, shop, cents, tx))
            expected_transactions += 1
        elif op in ("review", "credit_note", "replay") and claims:
            claim = claims[args[0] % len(claims)]
            if op == "replay":  # the practice software sends the same invoice again
                again = service.post(K.CLAIM_ACCEPTED, [(parties.payables[claim.shop], -claim.cents),
                                     (parties.receivables[claim.insurer], claim.cents)],
                                     idempotency_key=f"claim:{claim.n}:1", source=("claim", str(claim.n)))  # fmt: skip
                assert again.pk == claim.accepted.pk
            elif claim.worth == 0:
                continue
            elif op == "review":  # a reviewer reduces what was accepted
                cut = 1 + (args[1] - 1) % claim.worth
                claim.reviews.append(service.post(
                    K.REVIEW_ADJUSTED, [(parties.receivables[claim.insurer], -cut), (parties.payables[claim.shop], cut)],
                    idempotency_key=f"claim:{claim.n}:review:{len(claim.reviews)}", source=("claim", str(claim.n)),
                    effective_date=day))  # fmt: skip
                claim.reduced += cut
                expected_transactions += 1
            else:  # a credit note cancels the claim: every posting it made is reversed
                for k, tx in enumerate([claim.accepted, *claim.reviews]):
                    service.reverse(tx, idempotency_key=f"claim:{claim.n}:avoir:{k}", effective_date=day)
                    expected_transactions += 1
                claim.cancelled = True
        elif op == "receipt":
            insurer, cents = args
            service.post(K.RECEIPT, [(parties.bank, cents), (parties.receivables[insurer], -cents)],
                         idempotency_key=f"receipt:{expected_transactions}", source=("receipt", str(insurer)),
                         effective_date=day)  # fmt: skip
            received[insurer] += cents
            expected_transactions += 1
        elif op == "pay":
            (shop,) = args
            owed = sum(c.worth for c in claims if c.shop == shop) - paid[shop]
            if owed > 0:  # a payment run pays the whole payable
                service.post(K.PAYMENT, [(parties.payables[shop], owed), (parties.bank, -owed)],
                             idempotency_key=f"pay:{expected_transactions}", source=("payment", str(shop)),
                             effective_date=day)  # fmt: skip
                paid[shop] += owed
                expected_transactions += 1
    return {
        "claims": claims,
        "received": received,
        "paid": paid,
        "transactions": expected_transactions,
        "day": day,
    }


@SEQUENCES
@given(operations=OPERATIONS)
def test_random_sequences_keep_the_books_exact(parties, operations):
    with transaction.atomic():  # each example starts from an empty ledger
        model = play(parties, operations)
        claims, received, paid = model["claims"], model["received"], model["paid"]

        assert Transaction.objects.count() == model["transactions"]
        with connection.cursor() as cursor:  # every transaction balances, with at least two legs
            cursor.execute(integrity.UNBALANCED_TRANSACTIONS)
            assert cursor.fetchall() == []
        rows = service.balances()
        assert sum(row.balance_cents for row in rows) == 0
        for shop in range(PARTIES):
            owed = sum(c.worth for c in claims if c.shop == shop) - paid[shop]
            assert service.balance(parties.payables[shop]) == -owed
        for insurer in range(PARTIES):
            owed = sum(c.worth for c in claims if c.insurer == insurer) - received[insurer]
            receivable = parties.receivables[insurer]
            assert service.balance(receivable) == owed
            aged = service.ageing(receivable, model["day"])
            assert aged.total_cents == owed and min(aged.current_cents, aged.days_30_cents, aged.days_60_cents,
                                                    aged.days_90_plus_cents, aged.unapplied_cents) >= 0  # fmt: skip
        assert service.balance(parties.bank) == sum(received.values()) - sum(paid.values())
        assert (
            service.trial_balance().balanced and service.trial_balance(DAY + dt.timedelta(days=20)).balanced
        )
        out = io.StringIO()
        call_command("accounts", "check", stdout=out)
        assert out.getvalue().startswith("OK")
        transaction.set_rollback(True)
