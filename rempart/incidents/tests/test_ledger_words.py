"""The ledger-check line of a frozen scope says what was verified: rows, from which checkpoint, the scope's
own rows re-hashed — on the incident page (French or English) and in the notices' words."""

import pytest
from django.utils import timezone, translation

from rempart.incidents import workflow
from rempart.incidents.ledger_words import ledger_line
from rempart.incidents.models import Scope
from rempart.incidents.scope import ScopeCriteria, ledger_rows
from rempart.ledger import verification
from rempart.ledger.models import Disclosure, VerificationRun
from rempart.testing import login

from .conftest import actor_for, check, since


@pytest.fixture
def checked(cast, population):
    first = population.insurers[0]
    actor = actor_for(cast.staff)
    for row in population.people[first.pk][:6]:
        check(actor, row)
    return actor


def test_a_first_freeze_says_every_chain_was_read_from_its_first_row(cast, checked):
    incident = workflow.open_incident(title="t", detected_at=timezone.now(), by=cast.analyst)
    criteria = ScopeCriteria(user_ids=(cast.staff.pk,), since=since())
    scope = workflow.attach_scope(incident, criteria, label="staff", by=cast.analyst)
    own = ledger_rows(criteria).count()
    assert scope.ledger_ok and scope.ledger_scope_rows == own == 6
    assert scope.ledger_checkpoint_at is None and scope.ledger_checkpoint_run is None
    total = Disclosure.objects.count()
    assert scope.ledger_rows == total
    with translation.override("fr"):
        line = ledger_line(scope)
    assert line == (
        f"Registre vérifié : {total} lignes, chaque chaîne depuis sa première ligne ; "
        "les 6 lignes du périmètre recalculées une à une : intactes"
    )


def test_a_freeze_after_a_verification_names_its_checkpoint_and_date(cast, checked, population):
    outcome = verification.run(VerificationRun.Kind.INCREMENTAL, from_checkpoints=True)
    assert outcome.ok and outcome.run.checkpoints_saved
    more = actor_for(cast.staff)
    for row in population.people[population.insurers[0].pk][6:9]:
        check(more, row)
    incident = workflow.open_incident(title="t", detected_at=timezone.now(), by=cast.analyst)
    scope = workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(cast.staff.pk,), since=since()), label="staff", by=cast.analyst
    )
    assert scope.ledger_checkpoint_run == outcome.run.pk
    assert scope.ledger_checkpoint_at is not None and scope.ledger_scope_rows == 9
    assert (
        scope.ledger_rows < Disclosure.objects.count()
    )  # only the rows after the checkpoint were read again
    with translation.override("fr"):
        line = ledger_line(scope)
    assert f"depuis le point de contrôle n° {outcome.run.pk} du " in line
    assert "les 9 lignes du périmètre recalculées une à une : intactes" in line
    assert f"Registre vérifié : {scope.ledger_rows} ligne" in line
    with translation.override("en"):
        english = ledger_line(scope)
    assert (
        f"from checkpoint no. {outcome.run.pk} of " in english
        and "the scope's 9 rows re-hashed one by one: intact" in english
    )


def test_a_scope_frozen_before_the_words_were_kept_says_only_what_was_kept(cast):
    scope = Scope(ledger_ok=True, ledger_rows=12345, ledger_scope_rows=None)
    with translation.override("fr"):
        assert ledger_line(scope) == "Registre vérifié avant le gel : 12\u00a0345 lignes contrôlées, intactes"


def test_the_incident_page_shows_the_line(client, cast, checked):
    incident = workflow.open_incident(title="t", detected_at=timezone.now(), by=cast.analyst)
    workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(cast.staff.pk,), since=since()), label="staff", by=cast.analyst
    )
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    page = client.get(f"/operateur/incidents/{incident.pk}/").content.decode()
    assert "les 6 lignes du périmètre recalculées une à une : intactes" in page


# --- the notices' categories: words, never the ledger's codes ---------------------------------------

RAW = (
    "pec_amounts",
    "claim_amounts",
    "domain_refused",
    "billing_detail",
    "adherent_number",
    "member_rank",
    "zz_new",
)


def test_every_field_code_the_gate_writes_reaches_the_notices_as_words(cast):
    from collections import Counter

    from rempart.incidents.notice_facts import category_rows, field_labels

    fields = frozenset(
        ["identity_confirmed", "coverage:OPTI", "pec_amounts:OPTI", "claim_amounts:PHAR", "domain_refused:DENT",
         "adherent_number", "member_rank", "billing_detail:REL-2026-0001", "zz_new:thing"]
    )  # fmt: skip
    short, plain = field_labels(fields)
    rows = category_rows(cast.insurer.insurer, Counter({name: 3 for name in fields} | {"rows:12": 1}))
    text = " ".join([short, plain, *(label for label, _n in rows)])
    for code in RAW:
        assert code not in text, code
    assert "montants de prise en charge (Optique)" in short and "autre donnée" in short
    assert "Ligne du relevé de facturation REL-2026-0001 (numéro d'adhérent et rang)" in text
    assert "rows" not in text and all(n == 3 for _label, n in rows)
