"""The demo's money side: the demo optician's invoices, one payment run approved, one waiting for the treasurer.

Demo only (``demo_setup`` refuses it in production). Everything goes through the services a real day uses —
a rights file import, the PEC and claims services through the recording gate, ``prepare_run`` and
``approve_run`` — never raw inserts of money, so that the ledger, the statements, the bank file and
``rempart accounts check`` are those of real runs. The approval of the earlier run is the seed's trusted call
(no request, hence no step-up); the run left open is the one the treasurer approves in the browser, with the
second factor.

The invoices are for a second synthetic family of the demo insurer (adherent ``DEMO-0002``), not for the
family printed for the tour: its people keep their glasses to be invoiced by the person trying the demo.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from rempart.accounts.models import Organisation, User
from rempart.authorizations import rules as pec_rules
from rempart.authorizations.models import Pec
from rempart.authorizations.optics import Correction
from rempart.authorizations.service import request_pec
from rempart.claims import portal, rules
from rempart.claims import service as claims
from rempart.claims.models import Claim
from rempart.ledger.actor import Actor
from rempart.lib.identifiers import nir_check_key
from rempart.payments import runs
from rempart.payments.models import PaymentRun
from rempart.registry import rights_format as fmt
from rempart.registry.models import Insurer
from rempart.registry.rights_import import import_rights
from rempart.rights.cards import read_card_data

ADHERENT = "DEMO-0002"
PRESCRIBER = "10001234565"  # synthetic RPPS, Luhn-valid
FIRST_INVOICE = "F-DEMO-0001"  # its presence says the money side was seeded
CANCEL_REASON = "Démo : date d'exécution passée, campagne préparée à nouveau au démarrage"


@dataclass(frozen=True)
class Glasses:
    """One person of the family and the glasses the shop delivered them (synthetic)."""

    invoice: str
    role: str
    first_name: str
    sex: str
    birth_date: str
    nir_body: str  # own NIR body for adults; children are on the opener's card
    lines: tuple[tuple[str, str, str | None, int], ...]  # (LPP code, class, side, unit price in cents)
    adherent: str = ADHERENT


ADULT = (("2290100", "A", None, 3000), ("2290200", "A", "right", 3250), ("2290200", "A", "left", 3250))
CHILD = (("2290101", "A", None, 3000), ("2290210", "A", "right", 3250), ("2290210", "A", "left", 3250))
_OPENER = "2790375114032"
FAMILY = (
    Glasses("F-DEMO-0001", "ASSURE", "Louise", "F", "1979-03-14", _OPENER, ADULT),
    Glasses("F-DEMO-0002", "CONJOINT", "Marc", "M", "1977-11-02", "1771169123045",
            (("2290110", "B", None, 12000), ("2290200", "A", "right", 3250), ("2290200", "A", "left", 3250))),
    Glasses("F-DEMO-0004", "ENFANT", "Emma", "F", "2012-06-21", "", CHILD),
    Glasses("F-DEMO-0005", "ENFANT", "Léo", "M", "2014-01-09", "", CHILD),
)  # fmt: skip
REJECTED_INVOICE = "F-DEMO-0003"  # Louise's glasses invoiced twice: rejected, with its reason
CREDIT_NOTE = "AV-DEMO-0001"  # on Marc's invoice, after it was paid: an *avoir* on the next statement


@dataclass(frozen=True)
class DemoMoney:
    """What the demo prints: the approved run (its statement on *Paiements*) and the run waiting for approval."""

    approved: PaymentRun | None
    prepared: PaymentRun | None
    note: str = ""


def seed_payments(optician: Organisation, insurer: Insurer, *, preparer: User, approver: User) -> DemoMoney:
    """Seed once (a fresh demo); on later starts, only prepare again a waiting run whose date has passed."""
    if not Claim.objects.filter(organisation=optician, invoice_number=FIRST_INVOICE).exists():
        if PaymentRun.objects.exists():
            return DemoMoney(
                None, _open_run(), "payment runs exist already: the demo's invoices and runs were not seeded"
            )
        _seed(optician, insurer, preparer=preparer, approver=approver)
    else:
        _refresh_open_run(preparer, approver)
    approved = PaymentRun.objects.filter(status=PaymentRun.Status.APPROVED).order_by("-approved_at").first()
    return DemoMoney(approved, _open_run())


def _open_run() -> PaymentRun | None:
    return PaymentRun.objects.filter(status=PaymentRun.Status.PREPARED).first()


def _seed(optician: Organisation, insurer: Insurer, *, preparer: User, approver: User) -> None:
    today = timezone.localdate()
    import_family(insurer, today)
    actor = import_actor(optician)
    with transaction.atomic():
        louise, marc, emma, leo = FAMILY
        first = deliver_and_invoice(actor, insurer, louise, today)
        deliver_and_invoice(actor, insurer, marc, today)
        # The same glasses sent again under another number: rejected, and the statement says why.
        invoice_pec(actor, _card(insurer, louise, today), first.pec, REJECTED_INVOICE, today)
        earlier = runs.prepare_run(today, user=preparer)
        runs.approve_run(earlier, user=approver)  # trusted caller: the seed, no request to step up
        for person in (emma, leo):
            deliver_and_invoice(actor, insurer, person, today)
        marcs = Claim.objects.get(organisation=optician, invoice_number=marc.invoice)
        claims.credit_claim(actor, marcs, number=CREDIT_NOTE, amount_cents=1000, reason="monture échangée")
        runs.prepare_run(today, user=preparer)


def import_actor(organisation: Organisation) -> Actor:
    """The operator importing the shop's invoices from the command line, as ``rempart import-claims`` does."""
    return dataclasses.replace(
        Actor.command_line(), organisation_id=organisation.pk, session_ref="demo_setup"
    )


def _refresh_open_run(preparer: User, approver: User) -> None:
    """A waiting run whose execution date has passed cannot be approved: cancel it and prepare it again."""
    today = timezone.localdate()
    stale = _open_run()
    if stale is None or stale.execution_date >= today:
        return
    canceller = preparer if stale.prepared_by_id == preparer.pk else approver
    runs.cancel_run(stale, user=canceller, reason=CANCEL_REASON)
    try:
        runs.prepare_run(today, user=preparer)
    except runs.PaymentRunError:
        pass  # nothing owed any more: the demo simply has no run to approve


# ------------------------------------------------------------------------------------------- the family


def nir(body: str) -> str:
    return body + nir_check_key(body)


def import_family(insurer: Insurer, today: dt.date) -> None:
    """The family's rights, imported like any insurer's rights file (a delta: nothing else changes)."""
    start, end = f"{today.year - 2}-01-01", f"{today.year}-12-31"
    contract = [insurer.amc_number, ADHERENT, "CONF", start, end, "active"]
    rows = []
    for rank, person in enumerate(FAMILY, start=1):
        own, opener = (nir(person.nir_body), "") if person.nir_body else ("", nir(_OPENER))
        rows.append([*contract, str(rank), person.role, "Démo", person.first_name, person.sex,
                     person.birth_date, "1", own, opener, start, end])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rempart-demo-") as tmp:
        path = Path(tmp) / "demo-family-2.csv"
        lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
        path.write_text("\n".join([*lines, fmt.trailer_line(len(rows))]) + "\n", encoding="utf-8")
        import_rights(path, insurer, mode="delta", show_progress=False, today=today)


def _card(insurer: Insurer, person: Glasses, today: dt.date):
    return read_card_data(
        amc_number=insurer.amc_number, adherent_number=person.adherent, nir=nir(person.nir_body or _OPENER),
        birth_date=person.birth_date, domain="OPTI", today=today,
    )  # fmt: skip


def deliver_and_invoice(actor: Actor, insurer: Insurer, person: Glasses, today: dt.date) -> Claim:
    """The PEC for the quote, then the invoice of its lines once delivered today."""
    card = _card(insurer, person, today)
    correction = Correction.of("-1.25")
    prescription = pec_rules.Prescription(
        date=today - dt.timedelta(days=20), prescriber_id=PRESCRIBER, right=correction, left=correction
    )
    quote = tuple(
        pec_rules.QuoteLine(code, klass, side, 1, cents) for code, klass, side, cents in person.lines
    )
    outcome = request_pec(
        actor, dataclasses.replace(card, care_date=today), pec_rules.PecRequest("OPTI", today, prescription, quote),
        idempotency_key=f"demo-{person.invoice}",
    )  # fmt: skip
    if outcome.pec is None or outcome.pec.status == "refused":
        raise RuntimeError(f"demo: the PEC for {person.invoice} was not granted")
    return invoice_pec(actor, card, outcome.pec, person.invoice, today)


def invoice_pec(actor: Actor, card, pec: Pec, number: str, today: dt.date) -> Claim:
    """The invoice of a PEC's lines as the portal's *Facturer cette prise en charge* fills it: lines, AMO
    estimate and the insurer's share from the PEC. Invoicing a PEC twice is rejected (*déjà facturée*)."""
    lines = tuple(
        rules.InvoiceLine(
            number=n, code_system="LPP", code=line["code"], quantity=line["quantity"],
            unit_price_cents=line["unit_price_cents"], base_cents=line["base_cents"],
            amo_paid_cents=line["amo_cents"], amc_claimed_cents=line["amc_cents"],
            lpp_class=line["lpp_class"], side=line["side"],
        )
        for n, line in enumerate(portal.pec_invoice_lines(pec), start=1)
    )  # fmt: skip
    return _submit(actor, card, number, lines, today, pec_number=pec.number)


def _submit(actor, card, number: str, lines, today: dt.date, *, pec_number: str | None) -> Claim:
    invoice = rules.Invoice(
        invoice_number=number, invoice_date=today, care_date=today, domain="OPTI", prescriber_rpps=PRESCRIBER,
        pec_number=pec_number, lines=lines, total_price_cents=sum(line.unit_price_cents for line in lines),
        total_amo_cents=sum(line.amo_paid_cents for line in lines),
        total_amc_cents=sum(line.amc_claimed_cents for line in lines),
    )  # fmt: skip
    outcome = claims.submit_claim(actor, card, invoice, channel=Claim.Channel.API, today=today)
    if outcome.claim is None:
        raise RuntimeError(f"demo: invoice {number} matched no one in the registry")
    return outcome.claim
