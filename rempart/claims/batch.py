"""A lot's invoices adjudicated chunk by chunk: the same judgement as ``submit_claim``, set-wise.

``submit_claim`` costs about twenty statements per invoice (docs/benchmarks.md, "Claims"); a lot of a
million invoices is decided here a chunk at a time with a handful of statements per chunk:

1. each invoice is checked by itself first, exactly as ``submit_claim`` does (shape, totals, codes, dates,
   the organisation's care domains) — the same answer whether its card matches or not;
2. invoice numbers already used by the organisation are looked up for the whole chunk (replay / conflict);
3. the gate identifies and records the chunk (rempart.gate.batch): the PECs, the year's accepted amounts
   and the possible duplicates of every matched beneficiary are loaded in three statements, then each
   invoice is adjudicated by the pure rules **in order**, each seeing the ones before it in the chunk (a
   duplicate within the lot, a PEC named twice, a yearly ceiling);
4. the claims, their lines, the PECs consumed and the money postings are written in bulk.

If the chunk's writes meet a concurrent writer (an invoice number or a PEC taken meanwhile through the
API), its savepoint is rolled back — ledger rows included — and its invoices go one by one through
``submit_claim``: the answer is the same, only slower.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from rempart import gate
from rempart.accounting import service as accounting
from rempart.authorizations.catalogue import default_catalogue
from rempart.authorizations.models import Pec
from rempart.claims import rules
from rempart.claims.models import Claim, ClaimLine, ClaimLot
from rempart.claims.service import _convention, new_claim, new_lines
from rempart.ledger.models import Disclosure
from rempart.lib import fast_insert
from rempart.rights.cards import CardData
from rempart.surveillance.engine import CheckRefused

CHUNK_SIZE = 500
_OWED_LINES = (ClaimLine.Status.ACCEPTED, ClaimLine.Status.REDUCED)
_DUPLICABLE_LINES = (ClaimLine.Status.ACCEPTED, ClaimLine.Status.REDUCED, ClaimLine.Status.PENDING)


@dataclass
class Pending:
    """An invoice of the lot that passed every check that needs no beneficiary, waiting for its chunk."""

    line: int
    card: CardData  # care_date set to the invoice's care date
    invoice: rules.Invoice
    fingerprint: str


@dataclass
class Result:
    """What the lot reports for one invoice (``claim`` set when one was stored)."""

    line: int
    number: str
    kind: str  # a claim status, or no_match / replayed / duplicate / invalid / refused
    problems: tuple[str, list[dict]] | None = None
    reference: str = ""
    claim: Claim | None = None


@dataclass
class _Context:
    """What one chunk's decisions know, loaded once and grown as each invoice is decided."""

    organisation_id: int
    today: dt.date
    convention: rules.ConventionFacts
    pecs: dict[str, Pec] = field(default_factory=dict)
    consumed: set[int] = field(default_factory=set)  # PECs consumed by an earlier invoice of the chunk
    # (beneficiary, domain) → [(care date, accepted cents)], lines already owed this year or earlier in the chunk
    accepted: dict[tuple[int, str], list[tuple[dt.date, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    prior: dict[int, list[rules.PriorLine]] = field(default_factory=lambda: defaultdict(list))


class LotAdjudicator:
    """Adjudicates one lot's invoices chunk by chunk (rempart.claims.lots feeds it and reports)."""

    def __init__(self, actor: gate.Actor, lot: ClaimLot, today: dt.date) -> None:
        self.actor = actor
        self.lot = lot
        self.today = today
        self.rules = rules.default_rules()
        self.catalogue = default_catalogue()
        self.convention = _convention(actor.organisation_id)
        self._receivables: dict[int, accounting.Account] = {}
        self._payable = None

    # --- 2. invoice numbers -------------------------------------------------------------------------------

    def run(self, pendings: list[Pending], one_by_one) -> list[Result]:
        """Every pending invoice's result; ``one_by_one(pending)`` is the single path (the fallback)."""
        results: list[Result] = []
        queue = pendings
        while queue:
            chunk, later = self._unique_numbers(queue)
            fresh, replays = self._known_numbers(chunk)
            results += replays
            while fresh:
                try:
                    with transaction.atomic():
                        answered, fresh = self._chunk(fresh)
                except IntegrityError:
                    results += [one_by_one(pending) for pending in fresh]
                    break
                except CheckRefused as exc:  # the actor itself is refused (suspended, throttled)
                    results += [_refused(pending, exc) for pending in fresh]
                    break
                results += answered
            queue = later
        return results

    @staticmethod
    def _unique_numbers(queue: list[Pending]) -> tuple[list[Pending], list[Pending]]:
        """A number twice in the lot: the second waits for a later round, where the first is known."""
        seen: set[str] = set()
        chunk, later = [], []
        for pending in queue:
            number = pending.invoice.invoice_number
            (later if number in seen else chunk).append(pending)
            seen.add(number)
        return chunk, later

    def _known_numbers(self, chunk: list[Pending]) -> tuple[list[Pending], list[Result]]:
        numbers = [pending.invoice.invoice_number for pending in chunk]
        known = {}
        for start in range(0, len(numbers), 900):
            rows = Claim.objects.filter(
                organisation_id=self.actor.organisation_id, invoice_number__in=numbers[start : start + 900]
            ).values_list("invoice_number", "request_fingerprint", "ledger_reference")
            known.update({number: (fingerprint, reference) for number, fingerprint, reference in rows})
        fresh, results = [], []
        for pending in chunk:
            number = pending.invoice.invoice_number
            if number not in known:
                fresh.append(pending)
            elif known[number][0] == pending.fingerprint:
                results.append(replayed(pending.line, number, known[number][1]))
            else:
                message = {
                    "line": None,
                    "field": "invoice_number",
                    "message": "ce numéro de facture a déjà servi pour une autre facture",
                }
                results.append(Result(pending.line, number, "duplicate", ("duplicate", [message])))
        return fresh, results

    # --- 3. the gate, decisions --------------------------------------------------------------------------

    def _chunk(self, pendings: list[Pending]) -> tuple[list[Result], list[Pending]]:
        """One chunk through the gate (at most CHUNK_SIZE): (answered, the rest for the next chunk)."""
        head, rest = pendings[:CHUNK_SIZE], pendings[CHUNK_SIZE:]
        context = _Context(self.actor.organisation_id, self.today, self.convention)
        answer = gate.decide_claims_chunk(
            self.actor,
            [pending.card for pending in head],
            prepare=lambda facts: self._prepare(context, head, facts),
            decide=lambda position, facts: self._decide(context, head[position], facts),
            write=lambda decided: self._write(head, decided),
        )
        results = [_refused(head[position], exc) for position, exc in answer.refused.items()]
        for item in answer.decided:
            pending = head[item.position]
            number = pending.invoice.invoice_number
            if item.failure is not None:
                if not isinstance(item.failure, rules.ClaimInputError):
                    raise item.failure
                problems = ("invalid", [e.as_dict() for e in item.failure.errors])
                results.append(Result(pending.line, number, "invalid", problems, item.row.reference))
            elif item.verdict is None:
                results.append(Result(pending.line, number, "no_match", ("no_match", []), item.row.reference))
            else:
                claim = item.verdict.result[2]
                results.append(Result(pending.line, number, claim.status, None, item.row.reference, claim))
        return results, [head[position] for position in answer.undecided] + rest

    def _prepare(self, context: _Context, head: list[Pending], facts: list[gate.ClaimFacts]) -> None:
        """Load, for the chunk's matched beneficiaries, what their decisions need: three statements."""
        people = {f.beneficiary_id for f in facts}
        numbers = {p.invoice.pec_number.strip().upper() for p in head if p.invoice.pec_number}
        if numbers:  # locked: two invoices racing for one PEC (here and through the API), one wins
            context.pecs = {
                pec.number: pec for pec in Pec.objects.select_for_update().filter(number__in=numbers)
            }
        if not people:
            return
        cares = [p.invoice.care_date for p in head]
        earliest = min(cares).replace(month=1, day=1)
        owed = (
            ClaimLine.objects.filter(
                beneficiary_id__in=people,
                care_date__gte=earliest,
                care_date__lte=max(cares),
                status__in=_OWED_LINES,
            )
            .values("beneficiary_id", "claim__domain", "care_date")
            .annotate(total=Sum("accepted_cents"))
        )
        for row in owed:
            context.accepted[(row["beneficiary_id"], row["claim__domain"])].append(
                (row["care_date"], row["total"] or 0)
            )
        codes = {line.code for p in head for line in p.invoice.lines}
        prior = ClaimLine.objects.filter(
            organisation_id_copy=self.actor.organisation_id,
            beneficiary_id__in=people,
            code__in=codes,
            care_date__in=set(cares),
            status__in=_DUPLICABLE_LINES,
        ).values_list("beneficiary_id", "code", "care_date", "amc_claimed_cents")
        for person, code, day, cents in prior:
            context.prior[person].append(rules.PriorLine(code=code, care_date=day, amc_claimed_cents=cents))

    def _decide(self, context: _Context, pending: Pending, facts: gate.ClaimFacts):
        """Adjudicate one invoice from the chunk's context (pure: nothing written), then add it to the context."""
        invoice = pending.invoice
        year_start = invoice.care_date.replace(month=1, day=1)
        accepted = sum(
            cents
            for day, cents in context.accepted[(facts.beneficiary_id, invoice.domain)]
            if year_start <= day <= invoice.care_date
        )
        rights = rules.rights_facts(
            facts.contract,
            facts.coverage,
            facts.guarantee,
            facts.product_responsible,
            invoice.care_date,
            year_accepted_cents=accepted,
        )
        pec, pec_facts = self._pec(context, invoice.pec_number, facts.beneficiary_id)
        prior = [p for p in context.prior[facts.beneficiary_id] if p.care_date == invoice.care_date]
        decision = rules.adjudicate(
            invoice,
            rights,
            context.convention,
            pec_facts,
            prior,
            catalogue=self.catalogue,
            rules=self.rules,
            today=context.today,
            checked=True,  # by rempart.claims.lots before the chunk
        )
        claim = new_claim(
            self.actor,
            invoice,
            facts,
            decision,
            pec,
            channel=Claim.Channel.LOT,
            lot=self.lot,
            lot_line=pending.line,
            fingerprint_value=pending.fingerprint,
        )
        lines = new_lines(claim, invoice, decision)
        for line in lines:
            if line.status in _DUPLICABLE_LINES:
                context.prior[facts.beneficiary_id].append(
                    rules.PriorLine(
                        code=line.code, care_date=line.care_date, amc_claimed_cents=line.amc_claimed_cents
                    )
                )
            if line.status in _OWED_LINES and decision.status != Claim.Status.PENDING_REVIEW:
                context.accepted[(facts.beneficiary_id, invoice.domain)].append(
                    (invoice.care_date, line.accepted_cents)
                )
        consumes = pec is not None and decision.status != Claim.Status.REJECTED
        if consumes:
            context.consumed.add(pec.pk)
        rejected = decision.status == Claim.Status.REJECTED
        outcome = Disclosure.Outcome.NOT_COVERED if rejected else Disclosure.Outcome.COVERED
        return outcome, (lines, pec if consumes else None, claim)

    def _pec(self, context: _Context, number: str | None, beneficiary_id: int):
        if not number:
            return None, None
        pec = context.pecs.get(number.strip().upper())
        if pec is None:
            return None, None
        facts = rules.PecFacts(
            number=pec.number,
            same_organisation=pec.organisation_id == context.organisation_id,
            same_beneficiary=pec.beneficiary_id == beneficiary_id,
            status=pec.status,
            valid_until=pec.valid_until,
            cancelled=pec.cancelled_at is not None,
            consumed=pec.consumed_at is not None or pec.pk in context.consumed,
            lines=rules.pec_lines(pec.quote, pec.decision),
            domain=pec.domain,
        )
        return pec, facts

    # --- 4. writes ----------------------------------------------------------------------------------------

    def _write(self, head: list[Pending], decided) -> None:
        """The decided claims, their lines, the PECs consumed and the money owed: a few bulk statements."""
        stored = [item for item in decided if item.verdict is not None and item.failure is None]
        claims = []
        for item in stored:
            claim = item.verdict.result[2]
            claim.ledger_reference = item.row.reference
            claims.append(claim)
        fast_insert.insert(claims)
        lines = []
        for item in stored:
            claim_lines = item.verdict.result[0]
            for line in claim_lines:
                line.claim = item.verdict.result[2]
            lines += claim_lines
        fast_insert.insert(lines)
        consumed = [item.verdict.result[1].pk for item in stored if item.verdict.result[1] is not None]
        if consumed:
            Pec.objects.filter(pk__in=consumed).update(consumed_at=timezone.now())
        accounting.post_many(self._entry(claim) for claim in claims if claim.accepted_cents > 0)

    def _entry(self, claim: Claim) -> accounting.Entry:
        """What a fresh claim owes (rempart.claims.postings: nothing posted for it yet, no credit note)."""
        if claim.insurer_id not in self._receivables:
            self._receivables[claim.insurer_id] = accounting.insurer_receivable(claim.insurer_id)
        if self._payable is None:
            self._payable = accounting.professional_payable(claim.organisation_id)
        amount = claim.accepted_cents
        return accounting.entry(
            accounting.Kind.CLAIM_ACCEPTED,
            [(self._receivables[claim.insurer_id], amount), (self._payable, -amount)],
            idempotency_key=f"claim:{claim.pk}:1",
            memo=f"facture {claim.invoice_number}",
            source=("claim", str(claim.pk)),
        )


def _refused(pending: Pending, exc) -> Result:
    message = {"line": None, "field": "", "message": exc.message, "code": exc.code}
    return Result(pending.line, pending.invoice.invoice_number, "refused", ("invalid", [message]))


def replayed(line: int, number: str, reference: str) -> Result:
    message = {
        "line": None,
        "field": "invoice_number",
        "code": "already_received",
        "message": "facture déjà reçue, identique : son jugement est inchangé",
    }
    return Result(line, number, "replayed", ("replayed", [message]), reference)
