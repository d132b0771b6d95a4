"""The money invariant over everything (property-based): no cent is created or lost, whatever happens in any order.

Hypothesis draws random sequences of claims accepted (for two insurers, two professionals), reduced by a
reviewer, credited (*avoir*); payment runs prepared and approved through the payments service; transfers
rejected by the bank (a pain.002 through ``payments.returns.import_bank_file``, once, then the same file again,
which must be refused and change nothing); insurer statements (``billing.statements.prepare_statements``) and
receipts (``billing.receipts``) — these two only once their modules exist (other helpers write them), skipped
cleanly before. A plain Python model follows what each party owes. After **every** step:

- every transaction balances (at least two legs summing to zero) and all balances add up to zero;
- ``rempart accounts check`` passes;
- what each insurer owes + what it paid = what was accepted for it (net of reductions and credits) + fees;
- what each professional is owed + what it was paid = what was accepted for it, net of credits, reductions
  and returned transfers; the operator's bank = received − paid; its revenue = the fees;
- each statement's lines are ledger transactions on its insurer's receivable, billed at most once.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.accounting import integrity
from rempart.accounting import service as accounting
from rempart.accounts.models import Role
from rempart.claims.models import Claim, CreditNote
from rempart.payments import returns, runs
from rempart.payments.models import Payment
from rempart.payments.tests import bank_files
from rempart.payments.tests.returns_support import OTHER_IBAN, SHOP_IBAN, set_iban
from rempart.registry.models import Insurer
from rempart.testing import make_user

K = accounting.Kind
INSURERS, SHOPS = 2, 2


def _optional(module: str):
    """Another helper's module, or None while it does not exist yet (its steps are then skipped)."""
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


statements = _optional("rempart.billing.statements")
receipts = _optional("rempart.billing.receipts")

SEQUENCES = settings(
    max_examples=30,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

CENTS = st.integers(1, 500_000)
PICK = st.integers(0, 999)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("accept"), st.integers(0, INSURERS - 1), st.integers(0, SHOPS - 1), CENTS),
        st.tuples(st.just("accept"), st.integers(0, INSURERS - 1), st.integers(0, SHOPS - 1), CENTS),
        st.tuples(st.just("reduce"), PICK, CENTS),
        st.tuples(st.just("credit"), PICK, CENTS),
        st.tuples(st.just("pay")),
        st.tuples(st.just("return"), PICK),
        st.tuples(st.just("statement")),
        st.tuples(st.just("correct"), st.integers(0, INSURERS - 1)),
        st.tuples(st.just("receipt"), st.integers(0, INSURERS - 1), st.integers(1, 2_000_000)),
    ),
    min_size=4,
    max_size=14,
)
_numbers = itertools.count(1)


@dataclass
class ModelClaim:
    claim: Claim
    insurer: int
    shop: int
    worth: int
    versions: int = 1  # ledger versions posted for it (claim:<id>:<n>)


@dataclass
class Model:
    """What each party should owe, followed independently of the ledger."""

    claims: list[ModelClaim] = field(default_factory=list)
    accepted: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # per insurer, net
    accepted_shop: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # per shop, net
    paid: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # per shop, net of returns
    fees: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # per insurer
    received: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # per insurer
    sent: list[Payment] = field(default_factory=list)  # transfers not returned
    last_bank_file: bytes | None = None


@pytest.fixture
def world(cast):
    """Two insurers, two professionals with IBANs, two treasury members, the fee schedule and contracts."""
    second = Insurer.objects.create(amc_number="987654321", name="Mutuelle Seconde", kind="mutuelle")
    set_iban(cast.optician.professional, SHOP_IBAN, "BNPAFRPPXXX")
    set_iban(cast.other_shop.professional, OTHER_IBAN, "")
    insurers = [cast.insurer.insurer, second]
    _billing_terms(insurers)
    return {
        "insurers": insurers,
        "shops": [cast.optician, cast.other_shop],
        "preparer": make_user("tresorerie1@operator.test", cast.operator, Role.TREASURY),
        "approver": make_user("tresorerie2@operator.test", cast.operator, Role.TREASURY),
        "receivables": [accounting.insurer_receivable(i) for i in insurers],
        "payables": [accounting.professional_payable(s) for s in (cast.optician, cast.other_shop)],
    }


def _billing_terms(insurers) -> None:
    """A default fee schedule (per invoice and a share of the amounts paid) and a daily contract each."""
    from rempart.billing.models import BillingContract, FeeSchedule

    FeeSchedule.objects.create(
        insurer=None, effective_from=dt.date(2020, 1, 1), per_invoice_cents=35, per_pec_cents=10,
        paid_share_basis_points=125, source="test",
    )  # fmt: skip
    for insurer in insurers:
        BillingContract.objects.create(insurer=insurer, period=BillingContract.Period.DAILY, due_days=10)


# ---------------------------------------------------------------------------------------------- the steps


def accept(world, model: Model, insurer: int, shop: int, cents: int) -> None:
    """An accepted claim, posted as ``claims.postings`` posts it (key claim:<id>:1, claim as source)."""
    organisation, number = world["shops"][shop], next(_numbers)
    today = timezone.localdate()
    claim = Claim.objects.create(
        organisation=organisation, invoice_number=f"P-{number:05d}", channel=Claim.Channel.API,
        insurer=world["insurers"][insurer], beneficiary_id=424242, domain="OPTI", invoice_date=today,
        care_date=today, status=Claim.Status.ACCEPTED, total_price_cents=cents + 5000, total_amo_cents=5000,
        claimed_cents=cents, accepted_cents=cents,
        decision={"status": "accepted", "lines": [], "reasons": [], "review_reasons": [], "explanation": ""},
        rule_version="test", data_version="test", request_fingerprint=f"fp-{number}", ledger_reference="",
    )  # fmt: skip
    accounting.post(
        K.CLAIM_ACCEPTED, [(world["receivables"][insurer], cents), (world["payables"][shop], -cents)],
        idempotency_key=f"claim:{claim.pk}:1", memo=f"facture {claim.invoice_number}",
        source=("claim", str(claim.pk)), effective_date=today,
    )  # fmt: skip
    model.claims.append(ModelClaim(claim, insurer, shop, cents))
    model.accepted[insurer] += cents
    model.accepted_shop[shop] += cents


def _adjust(world, model: Model, pick: int, cents: int, kind: str) -> None:
    """A reviewer's reduction (review_adjusted) or a credit note (claim_reversed) of at most the claim's worth."""
    live = [c for c in model.claims if c.worth > 0]
    if not live:
        return
    c = live[pick % len(live)]
    cut = 1 + (cents - 1) % c.worth
    c.versions += 1
    if kind == K.CLAIM_REVERSED:
        note = CreditNote.objects.create(
            claim=c.claim, number=f"A-{next(_numbers):05d}", organisation=c.claim.organisation,
            amount_cents=cut, reason="retour de marchandise",
        )  # fmt: skip
        memo = f"avoir {note.number}"
    else:
        memo = f"révision {c.claim.invoice_number}"
    accounting.post(
        kind, [(world["receivables"][c.insurer], -cut), (world["payables"][c.shop], cut)],
        idempotency_key=f"claim:{c.claim.pk}:{c.versions}", memo=memo, source=("claim", str(c.claim.pk)),
        effective_date=timezone.localdate(),
    )  # fmt: skip
    c.worth -= cut
    model.accepted[c.insurer] -= cut
    model.accepted_shop[c.shop] -= cut


def pay(world, model: Model) -> None:
    """A run prepared by one treasury member and approved by the other: each shop owed is paid its balance."""
    owed = {s: model.accepted_shop[s] - model.paid[s] for s in range(SHOPS)}
    today = timezone.localdate()
    if not any(cents > 0 for cents in owed.values()):
        with pytest.raises(runs.PaymentRunError) as refused:
            runs.prepare_run(today, user=world["preparer"])
        assert refused.value.code == "nothing_to_pay"
        return
    run = runs.prepare_run(today, user=world["preparer"])
    run = runs.approve_run(run, user=world["approver"])
    sent = {p.organisation_id: p for p in run.payments.filter(status=Payment.Status.SENT)}
    expected = {world["shops"][s].pk: cents for s, cents in owed.items() if cents > 0}
    assert {org: p.amount_cents for org, p in sent.items()} == expected
    for s, organisation in enumerate(world["shops"]):
        if organisation.pk in sent:
            model.paid[s] += sent[organisation.pk].amount_cents
            model.sent.append(sent[organisation.pk])
    assert runs.approve_run(run, user=world["approver"]).pk == run.pk  # a double click pays nothing more


def bank_return(world, model: Model, pick: int) -> None:
    """The bank rejects one sent transfer (pain.002, operator-side reason: the IBAN stays usable); importing
    the same file again is refused and changes nothing."""
    if not model.sent:
        if model.last_bank_file is not None:
            with pytest.raises(returns.BankFileRefused):
                returns.import_bank_file(model.last_bank_file)
        return
    payment = model.sent.pop(pick % len(model.sent))
    content = bank_files.rejecting(
        payment.run, {payment.reference: "AM04"}, message_id=f"STS-{next(_numbers):05d}"
    )
    returns.import_bank_file(content)
    with pytest.raises(returns.BankFileRefused):  # the same file again: refused, nothing changes
        returns.import_bank_file(content)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.RETURNED
    shop = [o.pk for o in world["shops"]].index(payment.organisation_id)
    model.paid[shop] -= payment.amount_cents
    model.last_bank_file = content


def statement(world, model: Model) -> None:
    """Today's statements for every insurer (daily contracts), prepared as of tomorrow; preparing the same day
    again returns them and bills nothing twice. Their fees go to the model."""
    if statements is None:
        return
    from rempart.billing.models import Statement

    today = timezone.localdate()
    before = set(Statement.objects.values_list("pk", flat=True))
    issued = statements.prepare_statements(
        today, today, user=world["approver"], as_of=today + dt.timedelta(days=1)
    )
    new = [s for s in issued if s.pk not in before]
    for s in new:
        model.fees[world["insurers"].index(s.insurer)] += s.fees_cents
    again = statements.prepare_statements(
        today, today, user=world["approver"], as_of=today + dt.timedelta(days=1)
    )
    assert sorted(s.pk for s in again) == sorted(s.pk for s in issued)  # a replay bills nothing


def correct(world, model: Model, insurer: int) -> None:
    """A correction of the insurer's last statement: what its period missed (posted after it was issued) and
    the fee difference (may be a credit); refused, changing nothing, when there is nothing to correct."""
    if statements is None:
        return
    from rempart.billing.models import Statement

    last = Statement.objects.filter(insurer=world["insurers"][insurer]).order_by("-pk").first()
    if last is None:
        return
    try:
        fixed = statements.issue_correction(last, user=world["approver"], reason="avoir reçu après le relevé")
    except statements.StatementError as refused:
        assert refused.code == "nothing_to_correct"
        return
    model.fees[insurer] += fixed.fees_cents


def receipt(world, model: Model, insurer: int, cents: int) -> None:
    """Money received from an insurer, entered by hand; above the four-eyes threshold it waits (posts nothing)
    until the other treasury member approves it. Once the receipts module exists."""
    if receipts is None or not hasattr(receipts, "record_receipt"):
        return
    from rempart.billing.models import Statement

    payer = world["insurers"][insurer]
    billed = Statement.objects.filter(insurer=payer).order_by("-pk").first()  # settles it, or in advance
    entered = receipts.record_receipt(
        payer, cents, received_on=timezone.localdate(), user=world["approver"],
        reference=f"VIR-{next(_numbers)}", statement=billed,
    )  # fmt: skip
    if entered.transaction_id is None:  # waiting for the second person: nothing moved yet
        books_are_exact(world, model)
        receipts.approve_manual_receipt(entered, user=world["preparer"])
    model.received[insurer] += cents


STEPS = {"accept": accept, "correct": correct, "pay": pay, "return": bank_return, "statement": statement, "receipt": receipt,
         "reduce": lambda w, m, p, c: _adjust(w, m, p, c, K.REVIEW_ADJUSTED),
         "credit": lambda w, m, p, c: _adjust(w, m, p, c, K.CLAIM_REVERSED)}  # fmt: skip


# ---------------------------------------------------------------------------------------------- the invariant


def books_are_exact(world, model: Model) -> None:
    with connection.cursor() as cursor:
        cursor.execute(integrity.UNBALANCED_TRANSACTIONS)
        assert cursor.fetchall() == []
    assert sum(row.balance_cents for row in accounting.balances()) == 0
    out = io.StringIO()
    call_command("accounts", "check", stdout=out)
    assert out.getvalue().startswith("OK"), out.getvalue()
    for i, receivable in enumerate(world["receivables"]):  # owed + paid = accepted + fees
        assert accounting.balance(receivable) + model.received[i] == model.accepted[i] + model.fees[i]
    for s, payable in enumerate(world["payables"]):  # owed + paid = accepted net of credits and returns
        assert -accounting.balance(payable) + model.paid[s] == model.accepted_shop[s]
    assert accounting.balance(accounting.operator_bank()) == sum(model.received.values()) - sum(
        model.paid.values()
    )
    assert -accounting.balance(accounting.operator_revenue()) == sum(model.fees.values())
    if statements is not None:
        _statements_are_exact(world)


def _statements_are_exact(world) -> None:
    """Each statement's lines are receivable transactions of its insurer, each billed once; totals add up."""
    from rempart.accounting.models import Posting
    from rempart.billing.models import Statement, StatementItem

    for s in Statement.objects.all():
        items = list(StatementItem.objects.filter(statement=s))
        assert s.total_cents == s.paid_cents + s.reversals_cents + s.fees_cents
        assert sum(i.amount_cents for i in items) == s.paid_cents + s.reversals_cents
        receivable = accounting.insurer_receivable(s.insurer)
        for item in items:
            legs = Posting.objects.filter(transaction_id=item.transaction_id, account=receivable)
            assert sum(p.amount_cents for p in legs) == item.amount_cents
    items = StatementItem.objects.values_list("transaction_id", flat=True)
    assert len(items) == len(set(items))


@SEQUENCES
@given(operations=OPERATIONS)
def test_no_cent_is_created_or_lost_after_any_step(world, operations):
    with transaction.atomic():  # each example starts from the same world, an empty ledger
        model = Model()
        for op, *args in operations:
            STEPS[op](world, model, *args)
            books_are_exact(world, model)
        transaction.set_rollback(True)


def test_a_fixed_sequence_of_every_step_keeps_the_books_exact(world):
    """The same invariant over one sequence that uses every step at least once (hypothesis may draw others)."""
    model = Model()
    sequence = [("accept", 0, 0, 12_345), ("accept", 1, 1, 6_789), ("accept", 1, 0, 1_000), ("reduce", 0, 345),
                ("credit", 1, 789), ("pay",), ("statement",), ("return", 0), ("return", 0), ("pay",),
                ("receipt", 0, 5_000), ("statement",), ("credit", 0, 1_000), ("correct", 0), ("correct", 0),
                ("pay",), ("receipt", 1, 1_500_000)]  # fmt: skip
    for op, *args in sequence:
        STEPS[op](world, model, *args)
        books_are_exact(world, model)
    assert model.paid[0] == 12_345 - 345 + 1_000 and model.paid[1] == 6_789 - 789
    if statements is not None:  # both insurers were billed what was paid for them, with fees
        from rempart.billing.models import Statement

        billed = defaultdict(int)
        for s in Statement.objects.all():
            billed[s.insurer_id] += s.paid_cents + s.reversals_cents
        first, second = (i.pk for i in world["insurers"])  # the late credit note billed by the correction
        assert billed == {first: 12_345 - 345 - 1_000, second: 6_789 - 789 + 1_000}
        assert Statement.objects.filter(kind=Statement.Kind.CORRECTION).count() == 1
        assert model.fees[0] > 0 and model.fees[1] > 0
