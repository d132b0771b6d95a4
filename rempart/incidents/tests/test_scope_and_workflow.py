"""End to end: a scripted abuse by one account across two insurers, its exact scope, the incident around it."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from rempart.incidents import workflow
from rempart.incidents.exposure import exposure_keys
from rempart.incidents.models import Incident, ScopeEntry
from rempart.incidents.scope import ScopeCriteria, ScopeError, summarise

from .conftest import COL, actor_for, check, since


@pytest.fixture
def abuse(cast, population):
    """The staff account (hijacked) confirms 7 + 5 people of two insurers and misses 3 times; the owner,
    on the same organisation, checks 4 people of the first insurer (one of them also hit by the abuser)."""
    first, second = population.insurers
    rows_a, rows_b = population.people[first.pk], population.people[second.pk]
    hijacked = actor_for(cast.staff, ip="198.51.100.23")
    honest = actor_for(cast.owner, ip="203.0.113.7")
    cast.optician.professional.domains = ["OPTI", "PHAR"]  # an optician with a pharmacy corner: two domains
    cast.optician.professional.save(update_fields=["domains"])
    for row in rows_a[:7]:
        assert check(hijacked, row).outcome != "no_match"
    check(hijacked, rows_a[0], "PHAR")  # the same person twice, another domain
    for row in rows_b[:5]:
        assert check(hijacked, row).outcome != "no_match"
    for row in rows_b[5:8]:
        bad = list(row)
        bad[COL["adherent_number"]] = "NOPE-" + str(len(bad))
        assert check(hijacked, bad).outcome == "no_match"
    for row in rows_a[6:10]:
        check(honest, row)
    return {"first": first, "second": second, "rows_a": rows_a, "rows_b": rows_b}


def test_the_scope_of_one_account_is_exact_per_insurer(cast, abuse):
    summary = summarise(ScopeCriteria(user_ids=(cast.staff.pk,), since=since()))
    assert summary.people == 12 and summary.misses == 3
    assert summary.per_insurer[abuse["first"].pk].people == 7
    assert summary.per_insurer[abuse["first"].pk].disclosures == 8
    assert summary.per_insurer[abuse["second"].pk].people == 5


def test_the_address_range_finds_the_same_people(cast, abuse):
    by_network = summarise(ScopeCriteria(networks=("198.51.100.0/24",), since=since()))
    assert by_network.people == 12
    elsewhere = summarise(ScopeCriteria(networks=("192.0.2.0/24",), since=since()))
    assert elsewhere.people == 0 and elsewhere.misses == 0
    both = summarise(ScopeCriteria(organisation_ids=(cast.optician.pk,), since=since()))
    assert both.people == 7 + 5 + 3  # the owner's 4 checks add 3 people not already hit


def test_criteria_are_checked():
    with pytest.raises(ScopeError, match="au moins"):
        ScopeCriteria()
    with pytest.raises(ScopeError, match="invalide"):
        ScopeCriteria(networks=("300.1.2.3/8",))
    with pytest.raises(ScopeError, match="fuseau"):
        ScopeCriteria(since=dt.datetime(2026, 1, 1))
    now = timezone.now()
    with pytest.raises(ScopeError, match="suivre"):
        ScopeCriteria(since=now, until=now - dt.timedelta(hours=1))


def test_an_incident_freezes_its_scope_and_shows_later_differences(cast, abuse):
    incident = workflow.open_incident(title="Compte détourné", detected_at=timezone.now(), by=cast.analyst)
    criteria = ScopeCriteria(user_ids=(cast.staff.pk,), since=since())
    scope = workflow.attach_scope(incident, criteria, label="compte staff", by=cast.analyst)
    assert scope.ledger_ok and scope.ledger_rows >= 19
    assert (scope.people, scope.disclosures, scope.misses) == (12, 13, 3)
    assert scope.per_insurer[str(abuse["first"].pk)] == {"people": 7, "disclosures": 8}
    frozen_ids = set(ScopeEntry.objects.filter(scope=scope).values_list("beneficiary_id", flat=True))
    assert len(frozen_ids) == 12

    # Later rows do not change the frozen scope; re-running shows the difference.
    check(actor_for(cast.staff, ip="198.51.100.23"), abuse["rows_b"][20])
    scope.refresh_from_db()
    assert scope.people == 12
    difference = workflow.rerun(scope)
    assert difference.changed and difference.new_people == 1 and difference.people_now == 13
    assert set(ScopeEntry.objects.filter(scope=scope).values_list("beneficiary_id", flat=True)) == frozen_ids
    actions = list(incident.timeline.values_list("action", flat=True))
    assert actions == ["opened", "scope"]


def test_exposure_keys_are_per_person_and_the_read_is_recorded(cast, abuse):
    from rempart.gate import Actor
    from rempart.ledger.models import Disclosure

    incident = workflow.open_incident(title="x", detected_at=timezone.now(), by=cast.analyst)
    scope = workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(cast.staff.pk,), since=since()), label="s"
    )
    before = Disclosure.objects.filter(purpose="incident_scope").count()
    actor = Actor(channel="console", organisation_id=cast.operator.pk, user_id=cast.analyst.pk, ip="10.0.0.1")
    listed = list(exposure_keys(actor, scope.pk, insurer_id=abuse["first"].pk))
    assert len(listed) == 7
    adherents = {row[COL["adherent_number"]] for row in abuse["rows_a"][:7]}
    assert {adherent for _p, adherent, _m in listed} == adherents
    twice = [p for p, _a, _m in listed if p.disclosures == 2]
    assert len(twice) == 1 and {"coverage:PHAR", "coverage:OPTI"} <= twice[0].fields
    recorded = Disclosure.objects.filter(purpose="incident_scope").order_by("-id").first()
    assert Disclosure.objects.filter(purpose="incident_scope").count() == before + 1
    assert recorded.user_id == cast.analyst.pk and recorded.insurer_id == abuse["first"].pk


def test_a_tampered_ledger_is_flagged_on_the_scope(cast, abuse):
    row = connection.cursor()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE ledger_disclosure DISABLE TRIGGER ledger_disclosure_append_only")
            cursor.execute(
                "UPDATE ledger_disclosure SET user_id = %s WHERE user_id = %s", [cast.owner.pk, cast.staff.pk]
            )
            cursor.execute("ALTER TABLE ledger_disclosure ENABLE TRIGGER ledger_disclosure_append_only")
        else:
            cursor.execute("DROP TRIGGER ledger_disclosure_no_update")
            cursor.execute(
                "UPDATE ledger_disclosure SET user_id = %s WHERE user_id = %s", [cast.owner.pk, cast.staff.pk]
            )
    row.close()
    incident = workflow.open_incident(title="x", detected_at=timezone.now(), by=cast.analyst)
    scope = workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(cast.owner.pk,), since=since()), label="s"
    )
    assert not scope.ledger_ok and "altered" in scope.ledger_report
    assert "REGISTRE ALTÉRÉ" in incident.timeline.last().detail


def test_status_moves_follow_the_workflow(cast):
    incident = workflow.open_incident(title="x", detected_at=timezone.now(), by=cast.analyst)
    workflow.set_status(incident, Incident.Status.CONTAINED, by=cast.analyst)
    workflow.set_status(incident, Incident.Status.NOTIFIED, by=cast.analyst)
    with pytest.raises(workflow.WorkflowError):
        workflow.set_status(incident, Incident.Status.OPEN, by=cast.analyst)
    with pytest.raises(workflow.WorkflowError):
        workflow.open_incident(title=" ", detected_at=timezone.now())
    with pytest.raises(workflow.WorkflowError, match="futur"):
        workflow.open_incident(title="x", detected_at=timezone.now() + dt.timedelta(days=1))
