"""Automatic responses are stored as codes and shown as words; the sentences of older rows become codes."""

import importlib

from django.apps import apps
from django.utils import timezone, translation

from rempart.surveillance import labels
from rempart.surveillance.models import Alert

migration = importlib.import_module("rempart.surveillance.migrations.0004_alert_codes_and_assignment")


def _alert(cast, response: str, **fields) -> Alert:
    return Alert.objects.create(
        severity="warning", signal="velocity_minute", level=2, response=response, **fields
    )


def test_the_old_sentences_become_codes_with_their_parameters(cast):
    created = timezone.make_aware(timezone.datetime(2026, 12, 1, 23, 50))
    rows = {
        "second facteur redemandé avant la prochaine vérification": (labels.STEP_UP, {}),
        "second facteur redemandé à cette session": (labels.SESSION_STEP_UP, {}),
        "compte staff@shop.test suspendu automatiquement ; incident ouvert": (labels.ACCOUNT_SUSPENDED, {}),
        "jeton rmp_1a2b3c4d… (LGO) suspendu automatiquement ; incident ouvert": (labels.TOKEN_SUSPENDED, {}),
        "organisation « Optique du Test » suspendue": (labels.ORGANISATION_SUSPENDED, {}),
        "Aucune (la trésorerie peut couper le tiers payant pour les cartes de cet assureur).": (
            labels.TREASURY_MAY_SWITCH_OFF, {},
        ),
    }  # fmt: skip
    alerts = {text: _alert(cast, text, created_at=created) for text in rows}
    throttled = _alert(cast, "jeton ralenti (429) jusqu'à 00:05:00", created_at=created)
    held = _alert(
        cast, "nouvel IBAN en attente jusqu'au 06/12/2026 09:30 : appelez les titulaires, annulez au besoin"
    )
    unknown = _alert(cast, "réponse écrite à la main")
    migration.sentences_to_codes(apps, None)
    for text, (code, params) in rows.items():
        alert = Alert.objects.get(pk=alerts[text].pk)
        assert (alert.response, alert.response_params) == (code, params), text
    throttled.refresh_from_db()
    assert throttled.response == labels.THROTTLED  # past midnight: the next day
    assert timezone.datetime.fromisoformat(
        throttled.response_params["until"]
    ) == created + timezone.timedelta(minutes=15)
    held.refresh_from_db()
    assert held.response == labels.IBAN_HELD and held.response_params["until"].startswith("2026-12-06T09:30")
    unknown.refresh_from_db()
    assert unknown.response == "réponse écrite à la main"  # left as it is, shown as it is
    assert labels.response_label(unknown) == "réponse écrite à la main"


def test_a_response_is_read_in_the_language_of_the_page(cast):
    alert = _alert(cast, labels.ACCOUNT_SUSPENDED, user=cast.staff)
    with translation.override("fr"):
        assert (
            labels.response_label(alert)
            == f"compte {cast.staff.email} suspendu automatiquement ; incident ouvert"
        )
    with translation.override("en"):
        assert (
            labels.response_label(alert)
            == f"account {cast.staff.email} suspended automatically; incident opened"
        )
    nothing = _alert(cast, labels.ALERT_ONLY)
    with translation.override("en"):
        assert labels.response_label(nothing) == "alert only"


def test_a_known_sentence_still_stored_is_read_as_its_code(cast):
    alert = _alert(cast, "Aucune (la créance est rouverte ; vérifiez le mandat avant de prélever à nouveau).")
    with translation.override("en"):
        assert (
            labels.response_label(alert)
            == "none (the amount is owed again; check the mandate before debiting again)"
        )
