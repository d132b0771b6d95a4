"""`rempart scope … --out DIR`: one CSV per insurer with exactly the exposed people, and a summary."""

import csv
import json

import pytest
from django.core.management import CommandError, call_command

from rempart.ledger.models import Disclosure

from .conftest import COL, actor_for, check


@pytest.fixture
def checks(cast, population):
    first, second = population.insurers
    for row in population.people[first.pk][:3] + population.people[second.pk][:2]:
        check(actor_for(cast.staff, ip="198.51.100.40"), row)
    for row in population.people[first.pk][10:12]:
        check(actor_for(cast.owner, ip="203.0.113.1"), row)
    return first, second


def _read(path):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def test_scope_writes_one_file_per_insurer_and_a_summary(cast, population, checks, tmp_path, capsys):
    first, second = checks
    out = tmp_path / "scope"
    call_command("scope", "--account", cast.staff.email, "--since", "2020-01-01", "--out", str(out))
    printed = capsys.readouterr().out
    assert "5 people exposed" in printed
    rows_a = _read(out / f"personnes-{first.amc_number}.csv")
    rows_b = _read(out / f"personnes-{second.amc_number}.csv")
    expected_a = {r[COL["adherent_number"]] for r in population.people[first.pk][:3]}
    assert {r["numero_adherent"] for r in rows_a} == expected_a and len(rows_a) == 3
    assert len(rows_b) == 2
    assert "identité confirmée" in rows_a[0]["donnees_exposees"] and cast.staff.email in rows_a[0]["acteurs"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["people"] == 5 and {i["people"] for i in summary["insurers"]} == {3, 2}
    assert "Personnes exposées : 5" in (out / "summary.txt").read_text(encoding="utf-8")
    listed = Disclosure.objects.filter(purpose="incident_scope", channel="cli")
    assert listed.count() == 1 and "adherent_number" in listed.get().fields


def test_scope_by_address_range_and_bad_input(cast, checks, tmp_path, capsys):
    call_command("scope", "--ip", "203.0.113.0/24")
    assert "2 people exposed" in capsys.readouterr().out
    with pytest.raises(CommandError, match="unknown account"):
        call_command("scope", "--account", "nobody@nowhere.test")
    with pytest.raises(CommandError, match="invalide"):
        call_command("scope", "--ip", "not-an-address")
    with pytest.raises(CommandError, match="au moins"):
        call_command("scope")
    with pytest.raises(CommandError, match="--since"):
        call_command("scope", "--account", cast.staff.email, "--since", "yesterday")


def test_the_incident_command_opens_attaches_and_shows(cast, checks, capsys):
    from rempart.incidents.models import Incident

    call_command("incident", "open", "--title", "Jeton volé", "--detected-at", "2026-11-25T08:30")
    incident = Incident.objects.get()
    assert incident.timeline.get().action == "opened"
    call_command("incident", "attach", str(incident.pk), "--account", cast.staff.email, "--label", "staff")
    out = capsys.readouterr().out
    assert "5 people" in out and "ledger verified" in out
    call_command("incident", "show", str(incident.pk))
    assert "scope" in capsys.readouterr().out
    call_command("incident", "list")
    assert incident.number in capsys.readouterr().out
    with pytest.raises(CommandError, match="no incident"):
        call_command("incident", "show", "999")
    with pytest.raises(CommandError, match="futur"):
        call_command("incident", "open", "--title", "x", "--detected-at", "2099-01-01T00:00")
