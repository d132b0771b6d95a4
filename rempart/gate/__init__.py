"""The recording gate: the one place that reads beneficiaries' personal data, and records every answer.

It stands above the registry (what it reads), the ledger (where it records) and surveillance (which
counts and may refuse); nothing below it imports it (rempart/gate/tests/test_layers.py). One module per
purpose over one shared identify-and-record core (:mod:`rempart.gate.core`):

- :mod:`rempart.gate.rights_check` — confirm tiers payant for a card, a domain and a date;
- :mod:`rempart.gate.pec` — identify for a prise-en-charge decision;
- :mod:`rempart.gate.claim` — identify for an invoice's adjudication (one by one, or a lot's chunk at once
  through :mod:`rempart.gate.batch`);
- :mod:`rempart.gate.billing` — the adherent numbers and ranks of an insurer's detail file (recorded at
  production, one row per beneficiary, and at each download).
"""

from rempart.gate.claim import PURPOSE_CLAIM, ClaimFacts, decide_claim, decide_claims_chunk
from rempart.gate.core import Found, RefusedDomain, refuse_foreign_domain
from rempart.gate.pec import PURPOSE_PEC, PecFacts, decide_pec
from rempart.gate.rights_check import PURPOSE_RIGHTS_CHECK, RightsAnswer, check_rights
from rempart.ledger.actor import Actor

__all__ = [
    "PURPOSE_CLAIM",
    "ClaimFacts",
    "decide_claim",
    "decide_claims_chunk",
    "PURPOSE_PEC",
    "PURPOSE_RIGHTS_CHECK",
    "Actor",
    "Found",
    "PecFacts",
    "RefusedDomain",
    "RightsAnswer",
    "check_rights",
    "decide_pec",
    "refuse_foreign_domain",
]
