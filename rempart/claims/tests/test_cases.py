"""Worked cases of claims adjudication, with their expected amounts (documented in docs/claims-cases.md).

Each case is rendered to Markdown by :func:`render` and the test checks that docs/claims-cases.md holds
that exact text: the page cannot drift from what is tested. Regenerate the sections after changing a
case with ``DJANGO_SETTINGS_MODULE=rempart.settings .venv/bin/python -c "import django; django.setup();
from rempart.claims.tests.test_cases import print_sections; print_sections()"`` and paste them in.
Figures come from the shipped rules (data/claims-rules-v1.json) and LPP catalogue; PEC commitments are
those of the PEC engine's worked cases (docs/pec-cases.md). Amounts are in cents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from rempart.authorizations.catalogue import default_catalogue
from rempart.claims.reasons import KINDS, REASONS
from rempart.claims.rules import (
    ClaimInputError,
    ConventionFacts,
    GuaranteeTerms,
    Invoice,
    InvoiceLine,
    PecFacts,
    PecLine,
    PriorLine,
    RightsFacts,
    adjudicate,
    check_invoice,
    default_rules,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "claims-cases.md"
TODAY = dt.date(2026, 11, 25)
CARE = dt.date(2026, 11, 20)
RPPS = "10000000017"  # synthetic, Luhn-valid
PEC_NUMBER = "PEC-K7M2-Q9TX"
VALID_UNTIL = dt.date(2026, 12, 31)
C1, C2, C3 = "3400930000014", "3400930000021", "3400930000038"  # synthetic CIP13 with valid keys
ALL_DOMAINS = ("PHAR", "MEDE", "LABO", "RADL", "AUXI", "DENT", "OPTI", "AUDI", "HOSP", "TRAN", "SAGE")

ESS = GuaranteeTerms("100", 100, None)  # rempart.registry.synthetic: ESS, 100 % BR
CONF = GuaranteeTerms("200", 200, None)  # CONF, 200 % BR
OPTI_PEC = GuaranteeTerms("PEC", 100, None, pec_required=True)
AUDI_PEC = GuaranteeTerms("PEC", 100, None, pec_required=True)


def cents(euros: str) -> int:
    return int(Decimal(euros) * 100)


@dataclasses.dataclass(frozen=True)
class L:
    """One invoice line in euros, as a reader writes it."""

    system: str
    code: str
    price: str  # unit price
    base: str
    amo: str
    claimed: str
    qty: int = 1
    cls: str | None = None
    side: str | None = None


def invoice(
    domain: str, *lines: L, care=CARE, issued=None, rpps=RPPS, pec=None, number="F-2026-0001"
) -> Invoice:
    built = tuple(
        InvoiceLine(
            number=n,
            code_system=x.system,
            code=x.code,
            quantity=x.qty,
            unit_price_cents=cents(x.price),
            base_cents=cents(x.base),
            amo_paid_cents=cents(x.amo),
            amc_claimed_cents=cents(x.claimed),
            lpp_class=x.cls,
            side=x.side,
        )
        for n, x in enumerate(lines, start=1)
    )
    return Invoice(
        invoice_number=number,
        invoice_date=issued or care,
        care_date=care,
        domain=domain,
        prescriber_rpps=rpps,
        pec_number=pec,
        lines=built,
        total_price_cents=sum(line.price_cents for line in built),
        total_amo_cents=sum(line.amo_paid_cents for line in built),
        total_amc_cents=sum(line.amc_claimed_cents for line in built),
    )


def phar(*lines: L, **kw) -> Invoice:
    return invoice("PHAR", *lines, **kw)


def opti(*lines: L, **kw) -> Invoice:
    return invoice("OPTI", *lines, pec=PEC_NUMBER, **kw)


def audi(*lines: L, **kw) -> Invoice:
    return invoice("AUDI", *lines, pec=PEC_NUMBER, **kw)


def rights(guarantee=ESS, open_=True, year=0) -> RightsFacts:
    return RightsFacts(
        rights_open=open_, guarantee=guarantee, product_responsible=True, year_accepted_cents=year
    )


CONVENTION = ConventionFacts(in_force=True, domains=ALL_DOMAINS)


def pec(*lines: PecLine, **changes) -> PecFacts:
    facts = PecFacts(
        number=PEC_NUMBER,
        same_organisation=True,
        same_beneficiary=True,
        status="accepted",
        valid_until=VALID_UNTIL,
        cancelled=False,
        consumed=False,
        lines=lines,
        domain=None,
    )
    return dataclasses.replace(facts, **changes)


def pl(code: str, cls: str, side: str | None, euros: str, qty: int = 1) -> PecLine:
    return PecLine(lpp_code=code, lpp_class=cls, side=side, quantity=qty, amc_cents=cents(euros))


# Adult class A glasses and their PEC (docs/pec-cases.md, opti-a-adult-simple).
A_FRAME = L("LPP", "2290100", "30.00", "15.00", "9.00", "21.00", cls="A")
A_RIGHT = L("LPP", "2290200", "32.50", "16.25", "9.75", "22.75", cls="A", side="right")
A_LEFT = L("LPP", "2290200", "32.50", "16.25", "9.75", "22.75", cls="A", side="left")
A_PEC = (
    pl("2290100", "A", None, "21.00"),
    pl("2290200", "A", "right", "22.75"),
    pl("2290200", "A", "left", "22.75"),
)
GLASSES_A = (A_FRAME, A_RIGHT, A_LEFT)
ALL_REJECTED_A = lambda code: (("rejected", 0, (code,)),) * 3  # noqa: E731
TM = L("CIP13", C1, "10.00", "10.00", "6.50", "3.50")  # a medicine: AMO 65 % of the BR, TM 35 %


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    title: str
    why: str  # the rule that gives the outcome, with the figure's source
    invoice: Invoice
    rights: RightsFacts
    status: str
    lines: tuple  # per line: (status, accepted cents, reason codes)
    review: tuple[str, ...] = ()
    convention: ConventionFacts = CONVENTION
    pec: PecFacts | None = None
    prior: tuple[PriorLine, ...] = ()


CASES = [
    # ------------------------------------------------------------------ pharmacy, by rate
    Case(
        "phar-tm-100",
        "A medicine under 100 % BR: the insurer pays the ticket modérateur",
        "100 % of the BR, AMO included, minus what the AMO paid: 10.00 − 6.50 = 3.50, exactly what is claimed. "
        "Rate: the product's guarantee (synthetic ESS, rempart/registry/synthetic.py); '100' = the ticket "
        "modérateur (domain reference §2.4).",
        phar(TM),
        rights(),
        "accepted",
        (("accepted", 350, ()),),
    ),
    Case(
        "phar-claim-above-guarantee",
        "More claimed than the guarantee gives (price 12.00 above the BR 10.00)",
        "100 % BR gives 10.00 − 6.50 = 3.50; the 5.50 claimed (the price above the BR included) is reduced to "
        "3.50. A 100 % BR guarantee does not cover what is priced above the BR (domain reference §2.4).",
        phar(L("CIP13", C1, "12.00", "10.00", "6.50", "5.50")),
        rights(),
        "partially_accepted",
        (("reduced", 350, ("reduced_to_guarantee",)),),
    ),
    Case(
        "phar-rate-200-capped-by-claim",
        "200 % BR gives more than claimed: never more than the claim",
        "200 % of 10.00 − 6.50 = 13.50, but only 8.50 is claimed (price − AMO): 8.50 is accepted. The accepted "
        "amount never exceeds the claimed amount (issue 13). Rate: synthetic CONF.",
        phar(L("CIP13", C1, "15.00", "10.00", "6.50", "8.50")),
        rights(CONF),
        "accepted",
        (("accepted", 850, ()),),
    ),
    Case(
        "phar-three-lines-one-reduced",
        "Three medicines, the third priced above its BR",
        "Each line on its own: 3.50 and 1.57 (4.50 − 2.93) are the ticket modérateur and accepted; the third "
        "gives 15.00 − 9.75 = 5.25 for 10.25 claimed and is reduced. The AMO's 2.93 is the AMO's own rounding "
        "of 65 % of 4.50, taken as paid.",
        phar(
            TM,
            L("CIP13", C2, "4.50", "4.50", "2.93", "1.57"),
            L("CIP13", C3, "20.00", "15.00", "9.75", "10.25"),
        ),
        rights(),
        "partially_accepted",
        (("accepted", 350, ()), ("accepted", 157, ()), ("reduced", 525, ("reduced_to_guarantee",))),
    ),
    Case(
        "phar-ald-nothing-left",
        "ALD: the AMO paid the whole BR, nothing is left under 100 % BR",
        "100 % of 10.00 − 10.00 = 0: the guarantee gives nothing, the 1.00 claimed above the BR is rejected "
        "(no_amc_share) and so is the invoice. An exonerated patient (ALD) is paid 100 % of the BR by the AMO.",
        phar(L("CIP13", C1, "11.00", "10.00", "10.00", "1.00")),
        rights(),
        "rejected",
        (("rejected", 0, ("no_amc_share",)),),
    ),
    Case(
        "phar-rounding-half-up",
        "150 % of a BR of 2.45: half a cent rounds up",
        "150 % × 2.45 = 3.675, rounded half up to 3.68 (percent_of, the PEC engine's explicit rounding); "
        "minus the AMO's 1.59 = 2.09 for 2.41 claimed: reduced to 2.09.",
        phar(L("CIP13", C1, "4.00", "2.45", "1.59", "2.41")),
        rights(GuaranteeTerms("150", 150, None)),
        "partially_accepted",
        (("reduced", 209, ("reduced_to_guarantee",)),),
    ),
    Case(
        "phar-flat-amount",
        "A flat amount of 5.00, no rate, on a product the AMO does not reimburse",
        "No BR (0), no AMO share: only the flat amount (amount_cents, once per invoice) applies, 5.00 of the "
        "12.00 claimed. No amo_not_paid anomaly: the line has no BR.",
        phar(L("CIP13", C1, "12.00", "0.00", "0.00", "12.00")),
        rights(GuaranteeTerms("FORF", None, 500)),
        "partially_accepted",
        (("reduced", 500, ("reduced_to_guarantee",)),),
    ),
    Case(
        "phar-rate-and-flat-split",
        "100 % BR plus a flat 3.00 per invoice over three lines",
        "The rate pays line 1's 3.50 in full; the flat 3.00 fills what the rate leaves of the other claims "
        "(0, 8.00 and 4.00), in proportion: 2.00 and 1.00 (largest remainder, split_in_proportion).",
        phar(
            TM,
            L("CIP13", C2, "8.00", "0.00", "0.00", "8.00"),
            L("CIP13", C3, "4.00", "0.00", "0.00", "4.00"),
        ),
        rights(GuaranteeTerms("100", 100, 300)),
        "partially_accepted",
        (
            ("accepted", 350, ()),
            ("reduced", 200, ("reduced_to_guarantee",)),
            ("reduced", 100, ("reduced_to_guarantee",)),
        ),
    ),
    Case(
        "phar-duplicate",
        "One line already invoiced and accepted (same code, date and amount)",
        "Line 1 has the code, care date and claimed amount of a line already accepted for this organisation "
        "and beneficiary: rejected as a duplicate (issue 13). Line 2 is new and accepted.",
        phar(TM, L("CIP13", C2, "4.50", "4.50", "2.93", "1.57")),
        rights(),
        "partially_accepted",
        (("rejected", 0, ("duplicate",)), ("accepted", 157, ())),
        prior=(PriorLine(C1, CARE, 350),),
    ),
    Case(
        "phar-possible-duplicate-review",
        "Same code and date already accepted, for another amount",
        "Not an exact duplicate, so not rejected, but the invoice waits for an operator (possible_duplicate is "
        "in review_anomalies); the 3.50 is the amount proposed.",
        phar(TM),
        rights(),
        "pending_review",
        (("accepted", 350, ()),),
        review=("possible_duplicate",),
        prior=(PriorLine(C1, CARE, 300),),
    ),
    Case(
        "phar-amo-not-paid-review",
        "The AMO paid nothing on a line that has a BR",
        "100 % BR − 0 = 10.00 would make the insurer pay the AMO's share: the invoice waits for an operator "
        "(amo_not_paid). An AMO refusal usually means the AMC owes nothing either.",
        phar(L("CIP13", C1, "10.00", "10.00", "0.00", "10.00")),
        rights(),
        "pending_review",
        (("accepted", 1000, ()),),
        review=("amo_not_paid",),
    ),
    Case(
        "phar-late-invoice-review",
        "Care of 1 May 2026 invoiced in November",
        "208 days between the care and the receipt, more than late_invoice_days (180): the invoice waits for "
        "an operator. It is within the 730-day time limit.",
        phar(TM, care=dt.date(2026, 5, 1), issued=CARE),
        rights(),
        "pending_review",
        (("accepted", 350, ()),),
        review=("late_invoice",),
    ),
    # ------------------------------------------------------------------ the invoice as a whole
    Case(
        "phar-rights-closed",
        "Rights not open on the care date",
        "The contract or the coverage does not include the care date (the gate's rights_open): every line is "
        "rejected. No date is disclosed in the explanation.",
        phar(TM),
        rights(open_=False),
        "rejected",
        (("rejected", 0, ("rights_closed",)),),
    ),
    Case(
        "phar-no-tiers-payant-sp",
        "The card says SP for pharmacy",
        "tp_code SP is in NO_TIERS_PAYANT_CODES (rempart/registry/models.py; domain reference §2.4): no tiers "
        "payant for the domain.",
        phar(TM),
        rights(GuaranteeTerms("SP", None, None)),
        "rejected",
        (("rejected", 0, ("no_tiers_payant",)),),
    ),
    Case(
        "phar-no-guarantee",
        "The product has no terms for the domain on the care date",
        "No guarantee for the domain (the gate passes None): no tiers payant.",
        phar(TM),
        rights(None),
        "rejected",
        (("rejected", 0, ("no_tiers_payant",)),),
    ),
    Case(
        "phar-no-convention",
        "The professional's tiers payant agreement is not in force",
        "A tiers payant agreement between the professional and the insurer or operator must exist (domain "
        "reference §1.2, conditions): every line is rejected.",
        phar(TM),
        rights(),
        "rejected",
        (("rejected", 0, ("no_convention",)),),
        convention=ConventionFacts(in_force=False, domains=ALL_DOMAINS),
    ),
    # ------------------------------------------------------------------ doctors, dentists, hospital
    Case(
        "mede-outside-convention",
        "A doctor's invoice from a professional whose agreement covers pharmacy only",
        "The agreement is in force but not for MEDE: rejected (domain_not_in_convention).",
        invoice("MEDE", L("NGAP", "G", "30.00", "30.00", "21.00", "9.00"), rpps=None),
        rights(),
        "rejected",
        (("rejected", 0, ("domain_not_in_convention",)),),
        convention=ConventionFacts(in_force=True, domains=("PHAR",)),
    ),
    Case(
        "mede-consultation-g",
        "A GP consultation (NGAP G, 30.00), no prescriber needed",
        "70 % AMO share (21.00) taken as paid; 100 % BR gives the 9.00 ticket modérateur. MEDE needs no "
        "prescription (rules data). The participation forfaitaire is not modelled: the AMO amount is as paid.",
        invoice("MEDE", L("NGAP", "G", "30.00", "30.00", "21.00", "9.00"), rpps=None),
        rights(),
        "accepted",
        (("accepted", 900, ()),),
    ),
    Case(
        "mede-ccam-excess-fees",
        "A CCAM act with excess fees under 200 % BR",
        "200 % of 50.00 − 35.00 = 65.00 covers the 45.00 claimed (price − AMO): accepted in full.",
        invoice("MEDE", L("CCAM", "QZFA036", "80.00", "50.00", "35.00", "45.00"), rpps=None),
        rights(CONF),
        "accepted",
        (("accepted", 4500, ()),),
    ),
    Case(
        "dent-crown-act-ceiling",
        "A crown at 600.00 under 400 % BR with a 300.00 ceiling per prosthesis",
        "400 % of 120.00 − 72.00 = 408.00, held to prosthesis_max (300.00 per unit, products-v1 §3): reduced "
        "to 300.00 (act_ceiling). AMO 60 % of the BR for prostheses, as recalled.",
        invoice("DENT", L("CCAM", "HBLD038", "600.00", "120.00", "72.00", "528.00"), rpps=None),
        rights(GuaranteeTerms("400", 400, None, {"prosthesis_max": 30000})),
        "partially_accepted",
        (("reduced", 30000, ("act_ceiling",)),),
    ),
    Case(
        "dent-yearly-ceiling",
        "Yearly ceiling of 1,000.00 with 900.00 already accepted this year",
        "100.00 is left of yearly_max (products-v1 §3): line 1 takes its 6.00, line 2 (408.00 by the rate) "
        "the 94.00 left (yearly_ceiling). year_accepted_cents comes from the claims app (every organisation).",
        invoice(
            "DENT",
            L("CCAM", "HBQK002", "20.00", "20.00", "14.00", "6.00"),
            L("CCAM", "HBLD038", "600.00", "120.00", "72.00", "528.00"),
            rpps=None,
        ),
        rights(GuaranteeTerms("400", 400, None, {"yearly_max": 100000}), year=90000),
        "partially_accepted",
        (("accepted", 600, ()), ("reduced", 9400, ("yearly_ceiling",))),
    ),
    Case(
        "dent-amount-above-threshold",
        "A crown at 1,500.00 under 1,200 % BR: 1,368.00 accepted, above the review threshold",
        "1,200 % of 120.00 − 72.00 = 1,368.00 for 1,428.00 claimed; more than review_amount_cents (1,000.00): "
        "the invoice waits for an operator with 1,368.00 proposed.",
        invoice("DENT", L("CCAM", "HBLD038", "1500.00", "120.00", "72.00", "1428.00"), rpps=None),
        rights(GuaranteeTerms("1200", 1200, None)),
        "pending_review",
        (("reduced", 136800, ("reduced_to_guarantee",)),),
        review=("amount_above_threshold",),
    ),
    Case(
        "hosp-guarantee-requires-pec",
        "A hospital daily charge under a guarantee that requires a PEC Rempart does not issue",
        "tp_code PEC and pec_required on a domain without Rempart PECs (HOSP goes through ROC, domain "
        "reference §1.3): the flat 20.00 is proposed and the invoice waits for an operator.",
        invoice("HOSP", L("OTHER", "FJ", "20.00", "0.00", "0.00", "20.00"), rpps=None),
        rights(GuaranteeTerms("PEC", 100, 2000, pec_required=True)),
        "pending_review",
        (("accepted", 2000, ()),),
        review=("guarantee_requires_pec",),
    ),
    # ------------------------------------------------------------------ optics and audiology, against a PEC
    Case(
        "opti-pec-class-a",
        "Class A glasses invoiced as granted",
        "Each line matches its PEC line (code, side, class, quantity) and claims the committed amount: "
        "21.00 + 22.75 + 22.75 = 66.50 (PEC case opti-a-adult-simple).",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "accepted",
        (("accepted", 2100, ()), ("accepted", 2275, ()), ("accepted", 2275, ())),
        pec=pec(*A_PEC),
    ),
    Case(
        "opti-pec-claim-above-commitment",
        "Class B glasses: the frame claims more than the PEC committed",
        "The PEC committed 17.86 on the frame (PEC case opti-b-simple-floor); 50.00 is claimed: reduced to the "
        "commitment. The lenses claim their 16.07 each.",
        opti(
            L("LPP", "2290110", "120.00", "0.05", "0.03", "50.00", cls="B"),
            L("LPP", "2290300", "90.00", "0.05", "0.03", "16.07", cls="B", side="right"),
            L("LPP", "2290300", "90.00", "0.05", "0.03", "16.07", cls="B", side="left"),
        ),
        rights(OPTI_PEC),
        "partially_accepted",
        (("reduced", 1786, ("reduced_to_pec",)), ("accepted", 1607, ()), ("accepted", 1607, ())),
        pec=pec(
            pl("2290110", "B", None, "17.86"),
            pl("2290300", "B", "right", "16.07"),
            pl("2290300", "B", "left", "16.07"),
        ),
    ),
    Case(
        "opti-pec-extra-line",
        "A frame invoiced on a PEC that granted the lenses only",
        "The PEC has no line for the frame (its frame line was refused, or never asked): not_in_pec. The "
        "lenses are paid.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "partially_accepted",
        (("rejected", 0, ("not_in_pec",)), ("accepted", 2275, ()), ("accepted", 2275, ())),
        pec=pec(*A_PEC[1:]),
    ),
    Case(
        "opti-pec-quantity-mismatch",
        "Two right lenses invoiced where the PEC granted one",
        "The code and side match a PEC line but the quantity differs: pec_line_mismatch (issue 13: lines match "
        "the PEC in codes, classes and quantities).",
        opti(
            L("LPP", "2290200", "32.50", "32.50", "19.50", "45.50", qty=2, cls="A", side="right"),
            A_LEFT,
        ),
        rights(OPTI_PEC),
        "partially_accepted",
        (("rejected", 0, ("pec_line_mismatch",)), ("accepted", 2275, ())),
        pec=pec(*A_PEC[1:]),
    ),
    Case(
        "opti-price-above-plv",
        "Class A lenses invoiced at 40.00, above their PLV of 32.50",
        "At the PLV the insurer owes 32.50 − 9.75 = 22.75 per lens, which is also the PEC's commitment: both "
        "limits set the amount and both are named. PLV: the LPP catalogue (domain reference §4.2).",
        opti(
            A_FRAME,
            L("LPP", "2290200", "40.00", "16.25", "9.75", "30.25", cls="A", side="right"),
            L("LPP", "2290200", "40.00", "16.25", "9.75", "30.25", cls="A", side="left"),
        ),
        rights(OPTI_PEC),
        "partially_accepted",
        (
            ("accepted", 2100, ()),
            ("reduced", 2275, ("price_above_limit", "reduced_to_pec")),
            ("reduced", 2275, ("price_above_limit", "reduced_to_pec")),
        ),
        pec=pec(*A_PEC),
    ),
    Case(
        "opti-class-mismatch",
        "A class A frame code invoiced as class B",
        "The catalogue says class A for 2290100: class_mismatch, checked before the PEC.",
        opti(L("LPP", "2290100", "30.00", "15.00", "9.00", "21.00", cls="B"), A_RIGHT, A_LEFT),
        rights(OPTI_PEC),
        "partially_accepted",
        (("rejected", 0, ("class_mismatch",)), ("accepted", 2275, ()), ("accepted", 2275, ())),
        pec=pec(*A_PEC),
    ),
    Case(
        "opti-unknown-code",
        "An LPP code the catalogue does not have",
        "2299999 is not in the catalogue on the care date: unknown_code.",
        opti(L("LPP", "2299999", "30.00", "15.00", "9.00", "21.00", cls="A"), A_RIGHT, A_LEFT),
        rights(OPTI_PEC),
        "partially_accepted",
        (("rejected", 0, ("unknown_code",)), ("accepted", 2275, ()), ("accepted", 2275, ())),
        pec=pec(*A_PEC),
    ),
    Case(
        "opti-pec-not-found",
        "No PEC has the number given",
        "OPTI is paid against a PEC only (rules data, domain reference §1.2 flow 5): every line is rejected.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_not_found"),
    ),
    Case(
        "opti-pec-other-organisation",
        "The PEC was granted to another organisation",
        "Answered like a PEC that does not exist (pec_not_found): an invoice must not tell whether another "
        "organisation holds a PEC of that number.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_not_found"),
        pec=pec(*A_PEC, same_organisation=False),
    ),
    Case(
        "opti-pec-other-beneficiary",
        "The organisation's own PEC, for another patient",
        "The card identifies someone else than the PEC's beneficiary: pec_other_beneficiary.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_other_beneficiary"),
        pec=pec(*A_PEC, same_beneficiary=False),
    ),
    Case(
        "opti-pec-refused",
        "A refused PEC",
        "Only a granted PEC (accepted or partially accepted) can be invoiced: pec_refused.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_refused"),
        pec=pec(status="refused"),
    ),
    Case(
        "opti-pec-cancelled",
        "A cancelled PEC",
        "The professional cancelled it: pec_cancelled.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_cancelled"),
        pec=pec(*A_PEC, cancelled=True),
    ),
    Case(
        "opti-pec-consumed",
        "A PEC already invoiced",
        "Accepting an invoice consumes its PEC (issue 13): a second invoice on it is rejected (pec_consumed).",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_consumed"),
        pec=pec(*A_PEC, consumed=True),
    ),
    Case(
        "opti-pec-expired",
        "A PEC valid until 10 November, for care on 20 November",
        "The PEC is valid until its delivery date plus 30 days (validity_grace_days of the PEC rules): the care "
        "date is after it, pec_expired.",
        opti(*GLASSES_A),
        rights(OPTI_PEC),
        "rejected",
        ALL_REJECTED_A("pec_expired"),
        pec=pec(*A_PEC, valid_until=dt.date(2026, 11, 10)),
    ),
    Case(
        "audi-pec-class-ii-two-ears",
        "Two class II hearing aids at 1,700.00, 1,460.00 committed per ear",
        "Each ear matches and claims its commitment (AMO + AMC = 1,700.00 per ear, the contrat responsable cap, "
        "domain reference §4.3): 2,920.00 accepted. Above the review threshold, but lines paid against a PEC "
        "do not count towards it (review_amount_counts_pec false).",
        audi(
            L("LPP", "2390110", "1700.00", "400.00", "240.00", "1460.00", cls="II", side="right"),
            L("LPP", "2390110", "1700.00", "400.00", "240.00", "1460.00", cls="II", side="left"),
        ),
        rights(AUDI_PEC),
        "accepted",
        (("accepted", 146000, ()), ("accepted", 146000, ())),
        pec=pec(pl("2390110", "II", "right", "1460.00"), pl("2390110", "II", "left", "1460.00")),
    ),
    Case(
        "audi-pec-wrong-ear",
        "A class I hearing aid invoiced for the left ear, granted for the right",
        "The PEC line is for the right ear: no PEC line for this code and side (not_in_pec). Class I adult: "
        "BR 400.00, AMO 240.00, AMC 710.00 at the PLV of 950.00 (domain reference §4.3).",
        audi(L("LPP", "2390100", "950.00", "400.00", "240.00", "710.00", cls="I", side="left")),
        rights(AUDI_PEC),
        "rejected",
        (("rejected", 0, ("not_in_pec",)),),
        pec=pec(pl("2390100", "I", "right", "710.00")),
    ),
]


@dataclasses.dataclass(frozen=True)
class BadCase:
    """An invoice refused as bad input: nothing is decided (answered before the patient is identified)."""

    id: str
    title: str
    invoice: Invoice
    errors: tuple[tuple[int | None, str, str], ...]  # (line, field, code), in order


def _swap(inv: Invoice, **changes) -> Invoice:
    return dataclasses.replace(inv, **changes)


BAD_CASES = [
    BadCase(
        "bad-totals",
        "The total claimed is not the sum of the lines",
        _swap(phar(TM), total_amc_cents=400),
        ((None, "total_amc_cents", "totals_mismatch"),),
    ),
    BadCase(
        "bad-cip13-key",
        "A CIP13 code with a wrong check digit",
        phar(L("CIP13", "3400930000015", "10.00", "10.00", "6.50", "3.50")),
        ((1, "code", "code_invalid"),),
    ),
    BadCase(
        "bad-claimed-above-remainder",
        "More claimed from the AMC than the price minus the AMO",
        phar(L("CIP13", C1, "10.00", "10.00", "6.50", "4.00")),
        ((1, "amc_claimed_cents", "claimed_above_remainder"),),
    ),
    BadCase(
        "bad-future-care",
        "Care dated tomorrow",
        phar(TM, care=dt.date(2026, 11, 26), issued=TODAY),
        ((None, "care_date", "care_date_in_future"), (None, "invoice_date", "date_invalid")),
    ),
    BadCase(
        "bad-time-limit",
        "Care of 20 November 2024, more than 730 days before the receipt",
        phar(TM, care=dt.date(2024, 11, 20)),
        ((None, "care_date", "time_limit_exceeded"),),
    ),
    BadCase(
        "bad-missing-prescriber",
        "A pharmacy invoice without the prescriber",
        phar(TM, rpps=None),
        ((None, "prescriber_rpps", "prescriber_missing"),),
    ),
    BadCase(
        "bad-rpps-key",
        "A prescriber RPPS with a wrong Luhn key",
        phar(TM, rpps="10000000018"),
        ((None, "prescriber_rpps", "prescriber_invalid"),),
    ),
    BadCase(
        "bad-missing-pec",
        "Glasses invoiced without a PEC number",
        invoice("OPTI", *GLASSES_A),
        ((None, "pec_number", "pec_number_missing"),),
    ),
    BadCase(
        "bad-code-system-for-domain",
        "A CIP13 medicine on an optics invoice",
        opti(A_FRAME, L("CIP13", C1, "10.00", "10.00", "6.50", "3.50")),
        ((2, "code_system", "code_system_invalid"),),
    ),
    BadCase(
        "bad-invoice-before-care",
        "An invoice dated before the care",
        phar(TM, issued=dt.date(2026, 11, 19)),
        ((None, "invoice_date", "date_invalid"),),
    ),
]


def decide(case: Case):
    return adjudicate(
        case.invoice,
        case.rights,
        case.convention,
        case.pec,
        case.prior,
        catalogue=default_catalogue(),
        rules=default_rules(),
        today=TODAY,
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_worked_case(case: Case):
    decision = decide(case)
    got = tuple((d.status, d.accepted_cents, d.reasons) for d in decision.lines)
    assert got == case.lines
    assert decision.status == case.status
    assert decision.review_reasons == case.review
    assert decision.accepted_cents == sum(d.accepted_cents for d in decision.lines)
    assert decision.claimed_cents == case.invoice.total_amc_cents
    assert decision.rule_version == default_rules().label
    assert decision.data_version == default_catalogue().data_version
    assert all(d.explanation for d in decision.lines) and decision.explanation
    assert set(decision.reasons) | set(decision.review_reasons) <= set(REASONS)
    json.dumps(decision.as_dict())


@pytest.mark.parametrize("case", BAD_CASES, ids=[case.id for case in BAD_CASES])
def test_bad_input_case(case: BadCase):
    with pytest.raises(ClaimInputError) as caught:
        check_invoice(case.invoice, today=TODAY, rules=default_rules())
    assert tuple((e.line, e.field, e.code) for e in caught.value.errors) == case.errors
    # adjudicate runs the same checks first: it cannot be reached with a bad invoice
    with pytest.raises(ClaimInputError):
        adjudicate(
            case.invoice,
            rights(),
            CONVENTION,
            None,
            (),
            catalogue=default_catalogue(),
            rules=default_rules(),
            today=TODAY,
        )


def test_there_are_at_least_25_worked_cases_each_one_documented_as_tested():
    assert len(CASES) >= 25
    ids = [case.id for case in CASES] + [case.id for case in BAD_CASES]
    assert len(set(ids)) == len(ids)
    text = DOCS.read_text(encoding="utf-8")
    stale = [case.id for case in CASES if render(case) not in text]
    stale += [case.id for case in BAD_CASES if render_bad(case) not in text]
    assert not stale, f"docs/claims-cases.md is not the rendering of {stale}: regenerate the sections"


def test_the_reason_table_in_the_docs_is_the_code_table():
    text = DOCS.read_text(encoding="utf-8")
    missing = [code for code in REASONS if reason_row(code) not in text]
    assert not missing, f"docs/claims-cases.md lacks or misstates {missing}"
    documented = {
        line.split("`")[1] for line in text.splitlines() if line.startswith("| `") and "` | " in line
    }
    unknown = {code for code in documented if code.islower() and "_" in code and code not in REASONS}
    assert not unknown


# ---------------------------------------------------------------------------------------------- rendering


def eur(value: int) -> str:
    return f"{value // 100:,}.{value % 100:02d}"


def reason_row(code: str) -> str:
    fr, en = REASONS[code]
    return f"| `{code}` | {KINDS[code]} | {fr} | {en} |"


def _codes(codes) -> str:
    return ", ".join(f"`{c}`" for c in codes)


def _terms(terms: GuaranteeTerms | None) -> str:
    if terms is None:
        return "no terms for the domain"
    parts = [f"tp_code `{terms.tp_code}`"]
    if terms.rate_percent is not None:
        parts.append(f"{terms.rate_percent} % BR")
    if terms.amount_cents:
        parts.append(f"flat {eur(terms.amount_cents)} per invoice")
    parts += [f"{key} {eur(value)}" for key, value in terms.ceilings.items() if value is not None]
    if terms.pec_required:
        parts.append("PEC required")
    return ", ".join(parts)


def _inputs(inv: Invoice) -> list[str]:
    return [
        f"- Invoice: {inv.domain}, care {inv.care_date:%d/%m/%Y}, invoiced {inv.invoice_date:%d/%m/%Y}, "
        f"received {TODAY:%d/%m/%Y}; prescriber {'RPPS ' + inv.prescriber_rpps if inv.prescriber_rpps else 'none'}; "
        f"PEC {inv.pec_number or 'none'}."
    ]


def render(case: Case) -> str:
    inv = case.invoice
    out = [f"### `{case.id}`", "", f"{case.title}.", ""]
    out += _inputs(inv)
    r = case.rights
    rights_text = "open" if r.rights_open else "not open"
    year = f"; {eur(r.year_accepted_cents)} already accepted this year" if r.year_accepted_cents else ""
    out.append(f"- Rights: {rights_text}; guarantee: {_terms(r.guarantee)}{year}.")
    conv = case.convention
    if conv is not CONVENTION:
        state = "in force" if conv.in_force else "not in force"
        out.append(f"- Agreement: {state}, domains {', '.join(conv.domains)}.")
    if case.pec is not None:
        p = case.pec
        flags = [
            name
            for name, on in (
                ("another organisation's", not p.same_organisation),
                ("another beneficiary's", not p.same_beneficiary),
                ("cancelled", p.cancelled),
                ("already invoiced", p.consumed),
            )
            if on
        ]
        granted = "; ".join(
            f"{x.lpp_code} {x.lpp_class}{' ' + x.side if x.side else ''} ×{x.quantity}: {eur(x.amc_cents)}"
            for x in p.lines
        )
        until = f"valid until {p.valid_until:%d/%m/%Y}" if p.valid_until else "no validity"
        out.append(
            f"- PEC {p.number}: {p.status}{', ' + ', '.join(flags) if flags else ''}, {until}; "
            f"lines {granted or 'none'}."
        )
    elif inv.pec_number:
        out.append(f"- PEC {inv.pec_number}: not found.")
    if case.prior:
        items = "; ".join(
            f"{x.code} on {x.care_date:%d/%m/%Y} for {eur(x.amc_claimed_cents)}" for x in case.prior
        )
        out.append(f"- Already accepted: {items}.")
    out += [
        "",
        "| # | code | qty | price | BR | AMO paid | claimed | outcome | accepted | reasons |",
        "|---|---|--:|--:|--:|--:|--:|---|--:|---|",
    ]
    for line, (status, accepted, reasons) in zip(inv.lines, case.lines, strict=True):
        extra = " ".join(v for v in (line.lpp_class, line.side) if v)
        out.append(
            f"| {line.number} | {line.code_system} `{line.code}`{' ' + extra if extra else ''} | {line.quantity} | "
            f"{eur(line.price_cents)} | {eur(line.base_cents)} | {eur(line.amo_paid_cents)} | "
            f"{eur(line.amc_claimed_cents)} | {status} | {eur(accepted)} | {_codes(reasons)} |"
        )
    total = sum(accepted for _, accepted, _ in case.lines)
    out.append(
        f"| | **total** | | {eur(inv.total_price_cents)} | | {eur(inv.total_amo_cents)} | "
        f"{eur(inv.total_amc_cents)} | **{case.status}** | **{eur(total)}** | {_codes(case.review)} |"
    )
    out += ["", f"Why: {case.why}", ""]
    return "\n".join(out)


def render_bad(case: BadCase) -> str:
    out = [f"### `{case.id}`", "", f"{case.title}.", ""]
    out += _inputs(case.invoice)
    out += ["", "| line | field | code |", "|---|---|---|"]
    out += [f"| {line or '—'} | `{field}` | `{code}` |" for line, field, code in case.errors]
    out.append("")
    return "\n".join(out)


def print_sections() -> None:
    """Print the generated parts of docs/claims-cases.md: the reason table, the cases, the bad inputs."""
    print("\n".join(reason_row(code) for code in REASONS), end="\n\n")
    print("\n".join(render(case) for case in CASES))
    print("\n".join(render_bad(case) for case in BAD_CASES))
