"""The security console for incidents: only security analysts; insurers reach only their own notices."""

import pytest
from django.utils import timezone

from rempart.incidents import workflow
from rempart.incidents.models import Document, Incident
from rempart.ledger.models import Disclosure
from rempart.testing import login

from .conftest import actor_for, check


@pytest.fixture
def analyst_client(client, cast):
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    return client


@pytest.mark.parametrize("who", ["owner", "insurer_member", "admin"])
def test_only_security_analysts_reach_incidents(client, cast, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    for url in ("/operateur/incidents/", "/operateur/incidents/nouveau/", f"/operateur/incidents/{incident.pk}/",
                f"/operateur/incidents/{incident.pk}/perimetre/"):  # fmt: skip
        assert client.get(url).status_code == 404, url


def test_open_an_incident_and_start_the_clock(analyst_client, cast):
    response = analyst_client.post(
        "/operateur/incidents/nouveau/",
        {"title": "Hameçonnage d'un opticien", "detected_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
         "description": "Connexions depuis une adresse inconnue", "contact": "soc@operator.test"},
    )  # fmt: skip
    incident = Incident.objects.get()
    assert response.status_code == 302 and response.url == f"/operateur/incidents/{incident.pk}/"
    page = analyst_client.get(response.url).content.decode()
    assert "Reste 71 h" in page or "Reste 72 h" in page
    assert incident.opened_by == cast.analyst and incident.timeline.get().action == "opened"


def test_a_future_detection_time_is_refused(analyst_client):
    future = (timezone.localtime() + timezone.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = analyst_client.post("/operateur/incidents/nouveau/", {"title": "x", "detected_at": future})
    assert response.status_code == 200 and "futur" in response.content.decode()
    assert not Incident.objects.exists()


def test_preview_then_freeze_a_scope_from_the_console(analyst_client, cast, population):
    first, _second = population.insurers
    for row in population.people[first.pk][:4]:
        check(actor_for(cast.staff, ip="198.51.100.9"), row)
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    form = {"accounts": cast.staff.email, "networks": "198.51.100.0/24", "label": "staff"}
    runs_before = Disclosure.objects.filter(purpose="incident_scope").count()
    preview = analyst_client.post(f"/operateur/incidents/{incident.pk}/perimetre/", {**form, "preview": "1"})
    assert preview.status_code == 200 and 'id="scope-people">4<' in preview.content.decode()
    assert (
        Disclosure.objects.filter(purpose="incident_scope").count() == runs_before + 1
    )  # the look is recorded
    frozen = analyst_client.post(f"/operateur/incidents/{incident.pk}/perimetre/", {**form, "freeze": "1"})
    assert frozen.status_code == 302
    scope = incident.scopes.get()
    assert scope.people == 4 and scope.ledger_ok
    page = analyst_client.get(f"/operateur/incidents/{incident.pk}/").content.decode()
    assert "staff@shop.test" in page and "Registre vérifié" in page


def test_scope_form_errors_name_the_bad_input(analyst_client):
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    url = f"/operateur/incidents/{incident.pk}/perimetre/"
    page = analyst_client.post(url, {"accounts": "nobody@nowhere.test", "preview": "1"}).content.decode()
    assert "Compte inconnu : nobody@nowhere.test" in page
    page = analyst_client.post(url, {"networks": "10.0.0.300/8", "preview": "1"}).content.decode()
    assert "invalide" in page
    page = analyst_client.post(url, {"preview": "1"}).content.decode()
    assert "au moins" in page


def test_status_measures_and_notes_are_on_the_timeline(analyst_client, cast):
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    analyst_client.post(f"/operateur/incidents/{incident.pk}/mesure/", {"text": "Compte suspendu"})
    analyst_client.post(f"/operateur/incidents/{incident.pk}/statut/", {"status": "contained", "note": ""})
    analyst_client.post(f"/operateur/incidents/{incident.pk}/note/", {"text": "Appel de l'opticien"})
    incident.refresh_from_db()
    assert incident.status == "contained" and "Compte suspendu" in incident.measures
    assert list(incident.timeline.values_list("action", "actor")) == [
        ("opened", None), ("measure", cast.analyst.pk), ("status", cast.analyst.pk), ("note", cast.analyst.pk),
    ]  # fmt: skip


def _document(incident, insurer, tmp_path):
    from rempart.incidents.documents import store_document

    path = tmp_path / "notice.csv"
    path.write_text("numero_adherent;rang\nA1;1\n", encoding="utf-8")
    document = store_document(
        incident, kind=Document.Kind.AFFECTED_LIST, filename="liste.csv", content_type="text/csv",
        path_or_bytes=path, insurer=insurer,
    )  # fmt: skip
    document.published_at = timezone.now()  # reviewed by the operator (test_publication.py covers the step)
    document.save(update_fields=["published_at"])
    return document


def test_an_insurer_reaches_its_notices_and_not_another_insurers(
    client, cast, population, tmp_path, settings
):
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")
    first, second = population.insurers
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    own, other = _document(incident, first, tmp_path), _document(incident, second, tmp_path)
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    listing = client.get("/assureur/incidents/").content.decode()
    assert own.sha256 in listing and f"/documents/{other.pk}/" not in listing
    response = client.get(f"/assureur/incidents/documents/{own.pk}/")
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"numero_adherent")
    assert client.get(f"/assureur/incidents/documents/{other.pk}/").status_code == 404
    assert client.get(f"/operateur/incidents/{incident.pk}/documents/{own.pk}/").status_code == 404


def test_downloading_a_list_of_people_is_recorded(client, cast, population, tmp_path):
    first, _second = population.insurers
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    document = _document(incident, first, tmp_path)
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    before = Disclosure.objects.filter(purpose="incident_scope").count()
    response = client.get(f"/assureur/incidents/documents/{document.pk}/")
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"numero_adherent")
    row = Disclosure.objects.filter(purpose="incident_scope").latest("id")
    assert Disclosure.objects.filter(purpose="incident_scope").count() == before + 1
    assert row.user_id == cast.insurer_member.pk and f"document {document.pk}" in row.fields[0]


def test_rerun_is_a_post_and_status_errors_are_explained(analyst_client, cast):
    incident = workflow.open_incident(title="x", detected_at=timezone.now())
    assert analyst_client.get(f"/operateur/incidents/{incident.pk}/perimetres/1/relancer/").status_code == 405
    page = analyst_client.post(f"/operateur/incidents/{incident.pk}/statut/", {"status": "open"}, follow=True)
    assert "déjà « Ouvert »" in page.content.decode()
    page = analyst_client.post(
        f"/operateur/incidents/{incident.pk}/statut/", {"status": "bogus"}, follow=True
    )
    assert "Choisissez un statut proposé" in page.content.decode()
