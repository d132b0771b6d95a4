"""PostgreSQL: connections racing on one idempotency key make exactly one transaction."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from rempart.accounting import service
from rempart.accounting.models import Posting, Transaction
from rempart.accounting.tests.conftest import make_parties

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),  # SQLite serialises writers: nothing races
]
K = service.Kind


def _race(count: int, work) -> tuple[list, list]:
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results.append(work(n))
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_eight_connections_posting_one_key_make_one_transaction():
    parties = make_parties()
    legs = [(parties.receivables[0], 4250), (parties.payables[0], -4250)]
    results, errors = _race(
        8,
        lambda n: service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="claim:1:1", source=("claim", "1")).pk,
    )
    assert not errors, errors
    assert len(results) == 8 and len(set(results)) == 1
    assert Transaction.objects.count() == 1 and Posting.objects.count() == 2
    assert service.balance(parties.payables[0]) == -4250


def test_racing_different_legs_under_one_key_one_wins_the_others_conflict():
    parties = make_parties()

    def work(n: int):
        cents = 100 if n % 2 else 200
        legs = [(parties.receivables[0], cents), (parties.payables[0], -cents)]
        return service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="claim:9:1", source=("claim", "9")).pk

    results, errors = _race(6, work)
    assert Transaction.objects.count() == 1 and Posting.objects.count() == 2
    winner = Transaction.objects.get()
    assert set(results) == {winner.pk} and len(results) == 3  # the three with the winner's legs
    assert len(errors) == 3 and all(isinstance(e, service.IdempotencyConflict) for e in errors), errors


def test_a_loser_inside_its_callers_transaction_is_told_to_retry():
    """The caller's transaction holds the loser's legs, which must not commit: ConcurrentPost, and a retry works."""
    parties = make_parties()
    legs = [(parties.receivables[0], 700), (parties.payables[0], -700)]
    first_wrote = threading.Event()

    def first() -> None:
        try:
            with transaction.atomic():
                service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="claim:5:1", source=("claim", "5"))
                first_wrote.set()
                time.sleep(0.5)  # the second connection has looked the key up and now waits on it
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    first_wrote.wait(5)
    with pytest.raises(service.ConcurrentPost):
        with transaction.atomic():
            service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="claim:5:1", source=("claim", "5"))
    thread.join()
    assert not connection.in_atomic_block
    with transaction.atomic():  # the retry returns the winner
        again = service.post(K.CLAIM_ACCEPTED, legs, idempotency_key="claim:5:1", source=("claim", "5"))
    assert again.pk == Transaction.objects.get().pk and Posting.objects.count() == 2


def test_accounts_opened_before_two_lots_run_at_once():
    """A lot opens its accounts, committed, before its own long transaction: none is created inside it."""
    from rempart.accounting.models import Account, Purpose
    from rempart.registry.models import Insurer

    parties = make_parties()
    Insurer.objects.create(amc_number="987654321", name="Mutuelle Nouvelle", kind="mutuelle")
    organisation = parties.payables[0].organisation
    service.open_accounts_for(organisation)
    receivables = Account.objects.filter(purpose=Purpose.INSURER_RECEIVABLE)
    assert set(receivables.values_list("insurer_id", flat=True)) == set(
        Insurer.objects.values_list("pk", flat=True)
    )
    service.open_accounts_for(organisation)  # again: nothing more
    assert receivables.count() == Insurer.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        service.open_accounts_for(organisation)  # inside a transaction it would be the deadlock it avoids
