"""Posting: validation, idempotency and conflicts, reversals, accounts, and the cost of one post."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction

from rempart.accounting import service
from rempart.accounting.models import Account, Posting, Purpose, Transaction
from rempart.accounting.tests.conftest import DAY, accept

K = service.Kind


def test_a_claim_makes_the_insurer_owe_and_the_operator_owe_the_shop(parties):
    tx = accept(parties, 4250, memo="facture F-1")
    assert tx.pk and tx.kind == K.CLAIM_ACCEPTED and tx.effective_date == DAY
    assert service.balance(parties.receivables[0]) == 4250  # debit: the insurer owes
    assert service.balance(parties.payables[0]) == -4250  # credit: owed to the shop
    assert sorted(Posting.objects.values_list("amount_cents", flat=True)) == [-4250, 4250]
    stored = Transaction.objects.get()
    assert (stored.pk, stored.memo, stored.source_type, stored.source_id) == (
        tx.pk,
        "facture F-1",
        "claim",
        "1",
    )
    assert stored.created_at == tx.created_at


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([(0, 100)], "at least two legs"),
        ([(0, 100), (1, -99)], "sum to 1 cents"),
        ([(0, 100), (1, -100), (0, 0)], "non-zero"),
        ([(0, 100.0), (1, -100.0)], "integer cents, not float"),
        ([(0, Decimal("1.00")), (1, Decimal("-1.00"))], "integer cents, not Decimal"),
        ([(0, True), (1, -1)], "integer cents, not bool"),
        ([(0, "100"), (1, -100)], "integer cents, not str"),
        ([(0, 10**16), (1, -(10**16))], r"at most 10\^15"),
    ],
)
def test_bad_legs_are_refused_before_anything_is_written(parties, legs, message):
    accounts = [parties.receivables[0], parties.payables[0]]
    with pytest.raises(service.InvalidPosting, match=message):
        service.post(K.CLAIM_ACCEPTED, [(accounts[i], amount) for i, amount in legs],
                     idempotency_key="k", source=("claim", "1"))  # fmt: skip
    assert not Transaction.objects.exists() and not Posting.objects.exists()


def test_other_bad_fields_are_refused(parties):
    legs = [(parties.receivables[0], 1), (parties.payables[0], -1)]
    with pytest.raises(service.InvalidPosting, match="unsaved|saved Account"):
        service.post(
            K.FEE, [(Account(code="x"), 1), (parties.bank, -1)], idempotency_key="k", source=("fee", "1")
        )
    with pytest.raises(service.InvalidPosting, match="unknown transaction kind"):
        service.post("gift", legs, idempotency_key="k", source=("claim", "1"))
    with pytest.raises(service.InvalidPosting, match="idempotency key"):
        service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="", source=("claim", "1"))
    with pytest.raises(service.InvalidPosting, match="source"):
        service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="k", source=("claim", 1))
    with pytest.raises(service.InvalidPosting, match="effective date"):
        service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="k", source=("claim", "1"),
                     effective_date=dt.datetime(2026, 1, 1))  # fmt: skip
    assert not Transaction.objects.exists()


def test_the_same_key_and_legs_return_the_first_transaction(parties):
    first = accept(parties, 1000)
    again = accept(
        parties, 1000, memo="renvoi", effective_date=DAY + dt.timedelta(days=3)
    )  # memo, date may differ
    assert again.pk == first.pk and again.memo == ""
    assert Transaction.objects.count() == 1 and service.balance(parties.payables[0]) == -1000


def test_legs_in_another_order_are_the_same_transaction(parties):
    first = accept(parties, 1000)
    again = service.post(K.CLAIM_ACCEPTED, [(parties.payables[0], -1000), (parties.receivables[0], 1000)],
                         idempotency_key="claim:1:1", source=("claim", "1"))  # fmt: skip
    assert again.pk == first.pk


@pytest.mark.parametrize(
    "change",
    [
        {"cents": 1001},
        {"shop": 1},
        {"insurer": 1},
        {"source": ("claim", "2")},
    ],
)
def test_the_same_key_with_other_content_is_a_conflict(parties, change):
    first = accept(parties, 1000)
    kwargs = {"cents": 1000, **change}
    with pytest.raises(service.IdempotencyConflict, match=rf"#{first.pk}"):
        accept(parties, kwargs.pop("cents"), **kwargs)
    assert Transaction.objects.count() == 1


def test_a_conflict_leaves_the_callers_transaction_usable(parties):
    accept(parties, 1000)
    with transaction.atomic():
        with pytest.raises(service.IdempotencyConflict):
            accept(parties, 999)
        accept(parties, 500, key="claim:2:1")  # the outer transaction goes on
    assert Transaction.objects.count() == 2


def test_another_kind_under_the_same_key_is_a_conflict(parties):
    accept(parties, 1000)
    with pytest.raises(service.IdempotencyConflict):
        service.post(K.REVIEW_ADJUSTED, [(parties.receivables[0], 1000), (parties.payables[0], -1000)],
                     idempotency_key="claim:1:1", source=("claim", "1"))  # fmt: skip


def test_reverse_posts_the_exact_opposite_once(parties):
    tx = accept(parties, 4250)
    credit_note = service.reverse(tx, idempotency_key="avoir:1", memo="avoir A-1")
    assert credit_note.kind == K.CLAIM_REVERSED and credit_note.reverses_id == tx.pk
    assert (credit_note.source_type, credit_note.source_id) == ("claim", "1")
    assert service.balance(parties.receivables[0]) == 0 == service.balance(parties.payables[0])
    assert service.reverse(tx, idempotency_key="avoir:1").pk == credit_note.pk  # replay
    with pytest.raises(service.AlreadyReversed):
        service.reverse(tx, idempotency_key="avoir:2")
    assert Transaction.objects.count() == 2
    payment = service.post(K.PAYMENT, [(parties.payables[0], 300), (parties.bank, -300)],
                           idempotency_key="pay:1", source=("payment", "1"))  # fmt: skip
    assert service.reverse(payment, idempotency_key="pain002:1").kind == K.PAYMENT_RETURNED
    fee = service.post(K.FEE, [(parties.receivables[0], 50), (parties.revenue, -50)],
                       idempotency_key="fee:1", source=("statement", "1"))  # fmt: skip
    assert service.reverse(fee, idempotency_key="fee:1:undo").kind == K.REVERSAL


def test_the_database_allows_one_reversal_per_transaction_even_if_python_is_bypassed(parties):
    tx = accept(parties, 100)
    service.reverse(tx, idempotency_key="r1")
    item = service._entry(K.REVERSAL, ((parties.receivables[0].pk, -100), (parties.payables[0].pk, 100)), "r2", "",
                          ("claim", "1"), DAY, reverses_id=tx.pk)  # fmt: skip
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        service.post_many([item])


def test_post_many_posts_all_or_nothing_and_replays_known_keys(parties):
    def item(n, cents):
        return service.entry(K.CLAIM_ACCEPTED, [(parties.receivables[n % 3], cents), (parties.payables[n % 2], -cents)],
                             idempotency_key=f"claim:{n}:1", source=("claim", str(n)), effective_date=DAY)  # fmt: skip

    first = accept(parties, 100, key="claim:0:1")
    txs = service.post_many([item(0, 100), item(1, 200), item(2, 300), item(1, 200)])
    assert txs[0].pk == first.pk and txs[1].pk == txs[3].pk and len({tx.pk for tx in txs}) == 3
    assert Transaction.objects.count() == 3
    with pytest.raises(service.IdempotencyConflict):
        service.post_many([item(5, 100), item(2, 301)])  # one conflict: nothing of the batch is written
    with pytest.raises(service.IdempotencyConflict):
        service.post_many([item(6, 100), item(6, 101)])  # a conflict inside the batch
    assert Transaction.objects.count() == 3
    assert service.post_many([]) == []


def test_a_big_batch_is_four_statements(parties):
    items = [
        service.entry(
            K.CLAIM_ACCEPTED,
            [(parties.receivables[n % 3], 100 + n), (parties.payables[n % 3], -100 - n)],
            idempotency_key=f"claim:{n}:1",
            source=("claim", str(n)),
        )  # fmt: skip
        for n in range(1200)
    ]
    with counting() as statements:
        txs = service.post_many(items)
    assert len(txs) == 1200 and Posting.objects.count() == 2400
    expected = (
        3 if connection.vendor == "postgresql" else 6
    )  # SQLite: 3 look-up chunks, the next id, 2 inserts
    assert len(statements) == expected, statements


def test_one_post_is_three_statements_on_postgresql(parties):
    with counting() as statements:
        accept(parties, 100)
    assert len(statements) == (3 if connection.vendor == "postgresql" else 4), statements
    assert not any("SAVEPOINT" in sql for sql in statements)
    with counting() as statements:
        accept(parties, 100)  # a replay reads the first transaction back
    assert not any(sql.lstrip().upper().startswith("INSERT") for sql in statements)


class counting:
    """Every statement the connection runs (Django's queries and the prepared hot-path ones)."""

    def __enter__(self):
        self.statements = []

        def observe(execute, sql, params, many, context):
            self.statements.append(sql)
            return execute(sql, params, many, context)

        self._wrapper = connection.execute_wrapper(observe)
        self._wrapper.__enter__()
        return self.statements

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)


def test_accounts_are_one_per_purpose_and_owner(parties):
    insurer, shop = parties.insurers[0], parties.shops[0]
    assert service.insurer_receivable(insurer.pk) == parties.receivables[0]  # by id too
    assert service.professional_payable(shop) == parties.payables[0]
    receivable = parties.receivables[0]
    assert (receivable.code, receivable.kind, receivable.normal_sign) == (
        f"411-{insurer.amc_number}",
        "asset",
        1,
    )
    payable = parties.payables[0]
    assert (payable.code, payable.kind, payable.normal_sign) == (f"401-ORG{shop.pk}", "liability", -1)
    assert shop.professional.finess in payable.name
    assert service.operator_bank().code == "512" and service.operator_revenue().kind == "revenue"
    assert service.payments_in_transit().code == "580"
    assert Account.objects.filter(purpose=Purpose.OPERATOR_BANK).count() == 1
    assert Account.objects.count() == 3 + 3 + 3


def test_a_payable_belongs_to_a_professional_organisation(parties):
    from rempart.accounts.models import Organisation

    operator = Organisation.objects.create(kind="operator", name="Opérateur")
    with pytest.raises(service.InvalidPosting, match="professional"):
        service.professional_payable(operator)
    with pytest.raises(service.InvalidPosting):
        service.operator_account(Purpose.INSURER_RECEIVABLE)


def test_what_a_source_has_posted(parties):
    tx = accept(parties, 1000, key="claim:7:1")
    service.post(K.REVIEW_ADJUSTED, [(parties.receivables[0], -300), (parties.payables[0], 300)],
                 idempotency_key="claim:7:2", source=("claim", "7"))  # fmt: skip
    accept(parties, 50, key="claim:8:1")
    source = ("claim", "7")
    assert service.source_position(source, parties.receivables[0]) == (700, 2)
    assert service.source_balance(source, parties.payables[0]) == -700
    assert service.source_transaction_count(source) == 2
    assert [t.pk for t in service.source_transactions(source)][0] == tx.pk
    assert service.source_position(("claim", "404"), parties.receivables[0]) == (0, 0)
