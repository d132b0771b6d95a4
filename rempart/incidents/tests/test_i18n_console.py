"""The security console in English: incidents (list, detail) and surveillance (alert queue, switches)."""

from html import unescape

import pytest
from django.utils import timezone, translation

from rempart.incidents import workflow
from rempart.surveillance.models import Alert
from rempart.testing import login


@pytest.fixture
def english_analyst(client, cast):
    previous = translation.get_language()
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    yield client
    # The locale middleware leaves English active in this thread: later tests (notices) expect French.
    translation.activate(previous)


def _page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    page = unescape(response.content.decode())
    assert '<html lang="en">' in page
    return page


def _assert_english(page: str, english: list[str], french: list[str]) -> None:
    for text in english:
        assert text in page, text
    for text in french:
        assert text not in page, text


def test_incident_list_is_in_english(english_analyst):
    workflow.open_incident(title="Phishing", detected_at=timezone.now())
    page = _page(english_analyst, "/operateur/incidents/")
    _assert_english(
        page,
        ["Open an incident", "CNIL deadline (72 h)", "Detected on", "Scopes"],
        ["Ouvrir un incident", "Échéance CNIL", "Détecté le", "Périmètres"],
    )


def test_incident_detail_is_in_english(english_analyst, cast):
    incident = workflow.open_incident(title="Phishing", detected_at=timezone.now())
    workflow.add_note(incident, "Call from the optician", by=cast.analyst)
    page = _page(english_analyst, f"/operateur/incidents/{incident.pk}/")
    _assert_english(
        page,
        ["Notify the CNIL no later than", "min left", "Frozen scopes", "No frozen scope yet.", "Timeline",
         "Add the measure"],
        ["Notification à la CNIL", "Reste ", "Périmètres figés", "Aucun périmètre figé", "Chronologie",
         "Ajouter la mesure"],
    )  # fmt: skip


def test_alert_queue_is_in_english(english_analyst, cast):
    Alert.objects.create(
        severity=Alert.Severity.WARNING, signal="velocity_minute", level=2, user=cast.staff,
        organisation=cast.optician, ip_address="198.51.100.23",
        evidence={"velocity_minute": {"checks_last_minute": 9, "ceiling": 6}},
    )  # fmt: skip
    page = _page(english_analyst, "/operateur/surveillance/")
    _assert_english(
        page,
        ["Monitoring alerts", "Severity", "Acknowledge", "checks in the last minute", "level 2"],
        ["Alertes de surveillance", "Gravité", "Prendre en compte", "vérifications dans la dernière minute"],
    )


def test_switches_page_is_in_english(english_analyst):
    page = _page(english_analyst, "/operateur/surveillance/coupures/")
    _assert_english(
        page,
        [
            "Kill switches",
            "Nothing is switched off.",
            "Recently lifted kill switches",
            "Account (email address)",
        ],
        ["Coupures levées récemment", "Rien n'est coupé.", "En ce moment", "Compte (adresse électronique)"],
    )
