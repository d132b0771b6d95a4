"""Payments tests' cast, on top of rempart.testing's: two treasury members (a preparer and an approver), the two
professional organisations with IBANs, and a factory of claims posted to the money ledger as the claims app
posts them (same keys, kinds and sources), at any effective date.

Claims are made directly, not through the rights gate: what a run pays depends on the ledger, not on how an
invoice was adjudicated (rempart/claims/tests covers that).
"""

from __future__ import annotations

import datetime as dt
import itertools

import pyotp
import pytest
from django.conf import settings
from django.utils import timezone, translation

from rempart.accounting import service as accounting
from rempart.accounts.models import Organisation, Role, User
from rempart.claims.models import Claim, CreditNote
from rempart.testing import make_user

IBANS = {
    "optician": ("FR7630006000011234567890189", "AGRIFRPPXXX"),
    "other_shop": ("FR1420041010050500013M02606", ""),  # no BIC: SEPA pays on the IBAN alone
}
_invoices = itertools.count(1)


@pytest.fixture(autouse=True)
def _french_unless_asked():
    """Messages in the default language (French) at each test's start, whatever a page in English left active
    in this thread (the locale middleware activates a request's language and nothing deactivates it)."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


def yesterday() -> dt.date:
    return timezone.localdate() - dt.timedelta(days=1)


def _treasury_member(cast, email: str) -> User:
    secret = pyotp.random_base32()
    user = make_user(email, cast.operator, Role.TREASURY, totp_secret=secret)
    cast.secrets[email] = secret
    return user


@pytest.fixture
def preparer(cast) -> User:
    """A treasury member who prepares runs (and so may not approve them); TOTP secret in ``cast.secrets``."""
    return _treasury_member(cast, "tresorerie1@operator.test")


@pytest.fixture
def approver(cast) -> User:
    """A second treasury member: the four eyes' second pair."""
    return _treasury_member(cast, "tresorerie2@operator.test")


def set_iban(organisation: Organisation, iban: str, bic: str = "") -> None:
    """Give an organisation its IBAN as it stands after any hold (written directly: no hold, no notice)."""
    professional = organisation.professional
    professional.set_iban(iban)
    professional.bic = bic
    professional.iban_failed_at = None
    professional.save(update_fields=["iban_cipher", "iban_index", "bic", "iban_failed_at"])


@pytest.fixture
def payees(cast) -> tuple[Organisation, Organisation]:
    """The cast's optician and pharmacy, each with an IBAN (the optician's with a BIC, the pharmacy's without)."""
    for name, (iban, bic) in IBANS.items():
        set_iban(getattr(cast, name), iban, bic)
    return cast.optician, cast.other_shop


def _insurer(cast):
    return cast.insurer.insurer


def accept_claim(
    cast, organisation: Organisation, cents: int, *, day: dt.date | None = None, number: str = ""
) -> Claim:
    """An accepted claim of ``cents``, posted effective on ``day`` (default yesterday) like claims.postings does."""
    day = day or yesterday()
    claim = _claim(cast, organisation, number or f"F-{next(_invoices):05d}", Claim.Status.ACCEPTED, cents)
    accounting.post(
        accounting.Kind.CLAIM_ACCEPTED,
        [(accounting.insurer_receivable(claim.insurer_id), cents), (accounting.professional_payable(organisation), -cents)],
        idempotency_key=f"claim:{claim.pk}:1", memo=f"facture {claim.invoice_number}", source=("claim", str(claim.pk)),
        effective_date=day,
    )  # fmt: skip
    return claim


def credit_claim(claim: Claim, cents: int, *, day: dt.date | None = None) -> CreditNote:
    """A credit note (*avoir*) of ``cents`` on an accepted claim, posted as claims.postings posts it."""
    note = CreditNote.objects.create(
        claim=claim, number=f"A-{next(_invoices):05d}", organisation=claim.organisation, amount_cents=cents,
        reason="retour de marchandise",
    )  # fmt: skip
    source = ("claim", str(claim.pk))
    version = accounting.source_transaction_count(source) + 1
    accounting.post(
        accounting.Kind.CLAIM_REVERSED,
        [(accounting.insurer_receivable(claim.insurer_id), -cents), (accounting.professional_payable(claim.organisation_id), cents)],
        idempotency_key=f"claim:{claim.pk}:{version}", memo=f"avoir {note.number}", source=source,
        effective_date=day or yesterday(),
    )  # fmt: skip
    return note


def reject_claim(cast, organisation: Organisation, *, reasons=("rights_closed",), number: str = "") -> Claim:
    """A claim rejected at submission: no money, but the statement lists it with its reasons."""
    return _claim(cast, organisation, number or f"F-{next(_invoices):05d}", Claim.Status.REJECTED, 0, reasons)


def _claim(cast, organisation, number: str, status: str, accepted: int, reasons=()) -> Claim:
    claimed = max(accepted, 1000)
    today = timezone.localdate()
    return Claim.objects.create(
        organisation=organisation, invoice_number=number, channel=Claim.Channel.API, insurer=_insurer(cast),
        beneficiary_id=424242, domain="OPTI", invoice_date=today - dt.timedelta(days=3),
        care_date=today - dt.timedelta(days=4), status=status, total_price_cents=claimed + 5000,
        total_amo_cents=5000, claimed_cents=claimed, accepted_cents=accepted,
        decision={"status": status, "lines": [], "reasons": list(reasons), "review_reasons": [], "explanation": ""},
        rule_version="test", data_version="test", request_fingerprint=f"fp-{number}", ledger_reference="",
        created_at=timezone.now() - dt.timedelta(days=2),
    )  # fmt: skip


@pytest.fixture
def owed(cast, payees):
    """Two claims for the optician (100,00 € and 42,50 €) and one for the pharmacy (30,00 €), effective yesterday."""
    optician, pharmacy = payees
    return {
        "optician": [accept_claim(cast, optician, 10_000), accept_claim(cast, optician, 4_250)],
        "pharmacy": [accept_claim(cast, pharmacy, 3_000)],
    }
