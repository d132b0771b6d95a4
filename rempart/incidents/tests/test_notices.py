"""Notices per insurer, end to end on the scripted abuse: exact numbers, exact people, hashes, the ledger."""

import csv
import datetime as dt
import hashlib
import io
import re
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from pypdf import PdfReader

from rempart.gate import Actor
from rempart.incidents import workflow
from rempart.incidents.documents import file_sha256, store_document
from rempart.incidents.models import Document
from rempart.incidents.notice_facts import field_labels
from rempart.incidents.notice_texts import DRAFT_MARK, MERGE_COLUMNS
from rempart.incidents.notices import AFFECTED_COLUMNS, NoticeError, generate_notices
from rempart.incidents.scope import ScopeCriteria
from rempart.ledger.models import Disclosure
from rempart.lib.dates import french_date, french_datetime
from rempart.lib.pdf import pdf_text

from .conftest import COL, actor_for, check, since

KINDS = {
    Document.Kind.PROCESSOR_NOTICE,
    Document.Kind.AFFECTED_LIST,
    Document.Kind.CNIL_DRAFT,
    Document.Kind.LETTER,
    Document.Kind.LETTER_MERGE,
}


@pytest.fixture(autouse=True)
def _private_dir(settings, tmp_path):
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")


@pytest.fixture
def abuse(cast, population):
    """As in test_scope_and_workflow: the hijacked staff account confirms 7 + 5 people of two insurers (one of
    them twice, in two domains) and misses 3 times; the owner checks 4 people of the first insurer."""
    first, second = population.insurers
    rows_a, rows_b = population.people[first.pk], population.people[second.pk]
    hijacked = actor_for(cast.staff, ip="198.51.100.23")
    honest = actor_for(cast.owner, ip="203.0.113.7")
    cast.optician.professional.domains = ["OPTI", "PHAR"]  # an optician with a pharmacy corner: two domains
    cast.optician.professional.save(update_fields=["domains"])
    for row in rows_a[:7]:
        assert check(hijacked, row).outcome != "no_match"
    check(hijacked, rows_a[0], "PHAR")
    for row in rows_b[:5]:
        assert check(hijacked, row).outcome != "no_match"
    for row in rows_b[5:8]:
        bad = list(row)
        bad[COL["adherent_number"]] = "NOPE-" + str(len(bad))
        assert check(hijacked, bad).outcome == "no_match"
    for row in rows_a[6:10]:
        check(honest, row)
    return {"first": first, "second": second, "rows_a": rows_a, "rows_b": rows_b}


def _analyst(cast) -> Actor:
    return Actor(channel="console", organisation_id=cast.operator.pk, user_id=cast.analyst.pk, ip="10.0.0.1")


def _incident_and_scope(cast, user):
    incident = workflow.open_incident(
        title="Compte d'opticien détourné",
        description="Le compte d'un collaborateur a servi à vérifier des droits en série depuis une adresse inconnue.",
        detected_at=timezone.now(),
        by=cast.analyst,
    )
    workflow.add_measure(incident, "Compte suspendu et sessions fermées", by=cast.analyst)
    scope = workflow.attach_scope(
        incident, ScopeCriteria(user_ids=(user.pk,), since=since()), label="compte staff", by=cast.analyst
    )
    return incident, scope


def _pdf_text(document: Document) -> str:
    with document.file.open("rb") as handle:
        reader = PdfReader(io.BytesIO(handle.read()))
    return "\n".join(page.extract_text() for page in reader.pages)


def _csv_rows(document: Document) -> list[list[str]]:
    with document.file.open("rb") as handle:
        raw = handle.read()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM, so that Excel reads the accents"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))


def _of(documents, insurer, kind) -> Document:
    (found,) = [d for d in documents if d.insurer_id == insurer.pk and d.kind == kind]
    return found


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_each_insurer_gets_its_five_documents_with_its_own_exact_numbers(cast, abuse):
    incident, scope = _incident_and_scope(cast, cast.staff)
    first, second = abuse["first"], abuse["second"]
    first.dpo_name, first.dpo_email = "Camille Délégué", "dpo@mutuelle-test.fr"
    first.save()
    documents = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))

    assert len(documents) == 10
    for insurer in (first, second):
        assert {d.kind for d in documents if d.insurer_id == insurer.pk} == KINDS
    assert all(d.scope_id == scope.pk and d.created_by_id == cast.analyst.pk for d in documents)
    assert all(d.file.name.startswith(f"{incident.pk}/") for d in documents)

    numbers = {first: (7, 8), second: (5, 5)}
    for insurer, other in ((first, second), (second, first)):
        people, records = numbers[insurer]
        other_people, other_records = numbers[other]
        notice = _flat(_pdf_text(_of(documents, insurer, Document.Kind.PROCESSOR_NOTICE)))
        assert insurer.name in notice and other.name not in notice
        assert f"Nombre exact de personnes concernées : {people}" in notice
        assert f"Nombre exact d'enregistrements divulgués : {records}" in notice
        assert f"Nombre exact de personnes concernées : {other_people}" not in notice
        assert f"Nombre exact d'enregistrements divulgués : {other_records}" not in notice
        assert (
            "Article 33(2)" in notice
            and incident.number in notice
            and scope.digest in notice.replace(" ", "")
        )
        assert "NON divulguées" in notice and "NIR" in notice and "les nom et prénom" in notice
        assert "Tentatives de consultation sans correspondance : 3" in notice
        assert "Compte suspendu et sessions fermées" in notice
        assert "Équipe sécurité Rempart" in notice  # the default contact
        assert french_datetime(incident.deadline) in notice  # never a 01/12 that reads both ways
        assert "Registre vérifié : " in notice and "recalculées une à une : intactes" in notice
        assert "REGISTRE ALTÉRÉ" not in notice
        assert "Ouverture des droits au tiers payant — Optique" in notice

        draft = _flat(_pdf_text(_of(documents, insurer, Document.Kind.CNIL_DRAFT)))
        assert DRAFT_MARK in draft and insurer.name in draft and other.name not in draft
        assert f"Nombre de personnes concernées {people} (nombre exact)" in draft
        assert f"Nombre d'enregistrements concernés {records} (nombre exact)" in draft
        for item in ("a) Nature", "b) Délégué", "c) Conséquences", "d) Mesures", "Motifs du retard"):
            assert item in draft

        letter = _flat(_pdf_text(_of(documents, insurer, Document.Kind.LETTER)))
        assert insurer.name in letter and other.name not in letter
        for merge_field in ("«civilite»", "«nom»", "«adresse»", "«donnees_exposees»", "«periode»"):
            assert merge_field in letter
        assert "hameçonnage" in letter and "usurpation" in letter and "cybermalveillance.gouv.fr" in letter

    # The DPO known for the first insurer is filled in; the second one's is left to complete.
    assert "Camille Délégué" in _flat(_pdf_text(_of(documents, first, Document.Kind.CNIL_DRAFT)))
    assert "[À COMPLÉTER]" in _flat(_pdf_text(_of(documents, second, Document.Kind.CNIL_DRAFT)))
    assert "«contact_dpo»" in _flat(_pdf_text(_of(documents, second, Document.Kind.LETTER)))

    entry = incident.timeline.last()
    assert entry.action == "notices" and entry.actor_id == cast.analyst.pk
    assert "10 document(s)" in entry.detail and "7 personne(s), 8 divulgation(s)" in entry.detail


def test_the_lists_hold_exactly_the_people_of_each_insurer(cast, abuse):
    incident, scope = _incident_and_scope(cast, cast.staff)
    documents = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))
    for insurer, rows in ((abuse["first"], abuse["rows_a"][:7]), (abuse["second"], abuse["rows_b"][:5])):
        expected = {(row[COL["adherent_number"]], row[COL["member_number"]]) for row in rows}
        header, *lines = _csv_rows(_of(documents, insurer, Document.Kind.AFFECTED_LIST))
        assert tuple(header) == AFFECTED_COLUMNS
        assert len(lines) == len(expected)
        assert {(line[0], line[1]) for line in lines} == expected
        assert sum(int(line[3]) for line in lines) == scope.per_insurer[str(insurer.pk)]["disclosures"]
        assert all("identité confirmée" in line[2] and "Optique" in line[2] for line in lines)

        header, *merge = _csv_rows(_of(documents, insurer, Document.Kind.LETTER_MERGE))
        assert tuple(header) == MERGE_COLUMNS
        assert {(line[0], line[1]) for line in merge} == expected
        today = f"le {french_date(timezone.localdate())}"
        assert all(line[3] == today and "complémentaire santé" in line[2] for line in merge)

    # The person checked twice (optics, then pharmacy) has both domains and two disclosures.
    twice = abuse["rows_a"][0][COL["adherent_number"]]
    lines = _csv_rows(_of(documents, abuse["first"], Document.Kind.AFFECTED_LIST))[1:]
    (line,) = [line for line in lines if line[0] == twice]
    assert line[3] == "2" and "droits ouverts (Pharmacie / Optique)" in line[2]


def test_stored_hashes_match_the_files_and_the_read_is_recorded(cast, abuse):
    incident, scope = _incident_and_scope(cast, cast.staff)
    before = Disclosure.objects.filter(purpose="incident_scope").count()
    documents = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))
    for document in documents:
        with document.file.open("rb") as handle:
            content = handle.read()
        assert document.sha256 == hashlib.sha256(content).hexdigest() == file_sha256(document)
        assert document.size == len(content) > 0
    reads = Disclosure.objects.filter(purpose="incident_scope").order_by("id")[before:]
    assert sorted(row.insurer_id for row in reads) == sorted([abuse["first"].pk, abuse["second"].pk])
    assert all(row.user_id == cast.analyst.pk and row.channel == "console" for row in reads)
    assert all("adherent_number" in row.fields and "member_number" in row.fields for row in reads)
    # The notice lists the other documents with their hashes.
    notice = _of(documents, abuse["first"], Document.Kind.PROCESSOR_NOTICE)
    listed = _pdf_text(notice).replace("\n", "")
    affected = _of(documents, abuse["first"], Document.Kind.AFFECTED_LIST)
    assert affected.sha256 in listed


def test_generating_again_adds_documents_and_keeps_the_old_ones(cast, abuse):
    incident, scope = _incident_and_scope(cast, cast.staff)
    first_run = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))
    second_run = generate_notices(incident, scope, actor=_analyst(cast), show_progress=True)
    assert Document.objects.filter(incident=incident).count() == 20
    assert {d.file.name for d in first_run}.isdisjoint({d.file.name for d in second_run})
    assert all(Path(d.file.path).exists() for d in first_run + second_run)
    assert all(d.created_by_id is None for d in second_run)
    assert (
        list(incident.timeline.filter(action="notices").values_list("action", flat=True)) == ["notices"] * 2
    )


def test_a_tampered_ledger_is_flagged_loudly_in_the_notices(cast, abuse):
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
    incident, scope = _incident_and_scope(cast, cast.owner)
    assert not scope.ledger_ok
    documents = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))
    for insurer in (abuse["first"], abuse["second"]):
        notice = _flat(_pdf_text(_of(documents, insurer, Document.Kind.PROCESSOR_NOTICE)))
        assert "REGISTRE ALTÉRÉ" in notice and "intègre (" not in notice
        assert "altered" in notice  # the verification's own report is quoted
        assert "REGISTRE ALTÉRÉ" in _flat(_pdf_text(_of(documents, insurer, Document.Kind.CNIL_DRAFT)))
    assert "REGISTRE ALTÉRÉ" in incident.timeline.last().detail


def test_late_notices_ask_for_the_reasons_and_missing_people_are_counted(cast, abuse):
    from rempart.registry.models import Beneficiary

    incident, scope = _incident_and_scope(cast, cast.staff)
    incident.detected_at = timezone.now() - dt.timedelta(days=4)  # the 72 hours have passed
    incident.save()
    # A person of the frozen scope has left the registry since: counted, but no key to list.
    gone = scope.entries.filter(insurer_id=abuse["second"].pk).order_by("beneficiary_id").first()
    Beneficiary.objects.filter(pk=gone.beneficiary_id).delete()
    documents = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))
    draft = _flat(_pdf_text(_of(documents, abuse["first"], Document.Kind.CNIL_DRAFT)))
    assert "Motifs du retard [À COMPLÉTER] (obligatoire" in draft
    notice = _flat(_pdf_text(_of(documents, abuse["second"], Document.Kind.PROCESSOR_NOTICE)))
    assert "Nombre exact de personnes concernées : 5" in notice
    assert "1 personne(s) du périmètre ne figurent plus dans le registre" in notice
    assert len(_csv_rows(_of(documents, abuse["second"], Document.Kind.AFFECTED_LIST))) == 1 + 4
    first_notice = _flat(_pdf_text(_of(documents, abuse["first"], Document.Kind.PROCESSOR_NOTICE)))
    assert "ne figurent plus" not in first_notice


def test_free_text_of_any_length_and_markup_is_printed_as_typed(cast, abuse):
    incident, scope = _incident_and_scope(cast, cast.staff)
    incident.description = "Accès <b>suspect</b> & répété → " + "très long récit. " * 400
    incident.contact = "SOC <soc@rempart.example> & astreinte"
    incident.save()
    for number in range(40):
        workflow.add_measure(incident, f"Mesure n° {number}", by=cast.analyst)
    documents = generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast))
    notice = _flat(_pdf_text(_of(documents, abuse["first"], Document.Kind.PROCESSOR_NOTICE)))
    assert "Accès <b>suspect</b> & répété -> très long récit." in notice
    assert "SOC <soc@rempart.example> & astreinte" in notice and "Mesure n° 39" in notice
    letter = _flat(_pdf_text(_of(documents, abuse["first"], Document.Kind.LETTER)))
    assert "Mesure n° 39" in letter and "— Mesure n° 39" not in letter  # the time stamps are left out


def test_a_scope_without_people_gives_no_document(cast, abuse):
    incident = workflow.open_incident(title="Fausse alerte", detected_at=timezone.now(), by=cast.analyst)
    scope = workflow.attach_scope(
        incident, ScopeCriteria(networks=("192.0.2.0/24",), since=since()), label="vide", by=cast.analyst
    )
    assert generate_notices(incident, scope, by=cast.analyst, actor=_analyst(cast)) == []
    assert "aucun document" in incident.timeline.last().detail
    other = workflow.open_incident(title="Autre", detected_at=timezone.now())
    with pytest.raises(NoticeError):
        generate_notices(other, scope, actor=_analyst(cast))


def test_store_document_hashes_what_it_copies(cast, tmp_path):
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    payload = b"numero_adherent;rang\r\n" + b"A1;1\r\n" * 300_000  # several copy chunks
    source = tmp_path / "big.csv"
    source.write_bytes(payload)
    from_path = store_document(
        incident, kind=Document.Kind.SCOPE_SUMMARY, filename="../../etc/x.csv", content_type="text/csv",
        path_or_bytes=source, by=cast.analyst,
    )  # fmt: skip
    from_bytes = store_document(
        incident, kind=Document.Kind.SCOPE_SUMMARY, filename="x.csv", content_type="text/csv",
        path_or_bytes=payload,
    )  # fmt: skip
    digest = hashlib.sha256(payload).hexdigest()
    for document in (from_path, from_bytes):
        document.refresh_from_db()
        assert document.sha256 == digest and document.size == len(payload)
        assert document.filename == "x.csv" and document.file.name.startswith(f"{incident.pk}/")
        assert Path(document.file.path).read_bytes() == payload
    assert from_path.file.name != from_bytes.file.name
    with pytest.raises(ValueError, match="kind"):
        store_document(incident, kind="nope", filename="x", content_type="text/plain", path_or_bytes=b"")


def test_french_text_is_drawn_and_the_rest_replaced():
    assert pdf_text("« Œuvre » é è à ç œ — ’ €") == "« Œuvre » é è à ç œ — ’ €"
    assert pdf_text("a → b ≥ c ŝ 中\x07") == "a -> b >= c s ? "
    short, plain = field_labels(
        frozenset({"identity_confirmed", "coverage:OPTI", "tp_terms:OPTI", "valid_until"})
    )
    assert short == (
        "identité confirmée, droits ouverts (Optique), conditions de tiers payant (Optique), "
        "date de fin de validité des droits"
    )
    assert plain == (
        "la confirmation que vous êtes couvert(e) par votre complémentaire santé, l'état de vos droits au tiers "
        "payant (optique), vos conditions de prise en charge (optique) et la date de fin de validité de vos droits"
    )
