"""An invoice for a canary is answered and owed like any other, and never paid."""

from __future__ import annotations

from rempart.accounting import service as accounting
from rempart.claims.models import Claim
from rempart.incidents.tests.conftest import population  # noqa: F401 - fixture
from rempart.payments import runs
from rempart.payments.models import PaymentItem
from rempart.registry.models import Beneficiary
from rempart.surveillance import canaries

from .conftest import accept_claim, yesterday


def test_a_canary_invoice_stays_out_of_every_run_and_in_the_payable(cast, payees, preparer, population):  # noqa: F811
    planted = canaries.plant(population.insurers[0], 1, seed=7)
    person = next(
        b.pk
        for b in Beneficiary.objects.filter(contract__insurer=population.insurers[0]).order_by("-pk")[:50]
        if canaries.canary_for(b.pk) is not None
    )
    assert canaries.canary_beneficiaries([person, 424242]) == {person} and planted
    optician = payees[0]
    honest = accept_claim(cast, optician, 10_000)
    bait = accept_claim(cast, optician, 7_700)
    Claim.objects.filter(pk=bait.pk).update(beneficiary_id=person)
    run = runs.prepare_run(yesterday(), user=preparer)
    paid = set(PaymentItem.objects.filter(payment__run=run).values_list("claim_id", flat=True))
    assert honest.pk in paid and bait.pk not in paid
    assert run.total_cents == 10_000
    # The canary's 77,00 € are still owed in the books: nothing was reversed behind anyone's back.
    assert accounting.balance(accounting.professional_payable(optician)) == -17_700
