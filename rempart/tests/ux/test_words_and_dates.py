"""Dates that read one way in both languages; allauth's pages and emails in Rempart's name and words."""

import datetime as dt
import re
from pathlib import Path

from allauth.account.adapter import get_adapter
from allauth.core import context as allauth_context
from django.core import mail
from django.template import Context, Template
from django.utils import timezone, translation
from django.utils.translation import gettext

from rempart.lib.dates import french_date, french_datetime
from rempart.testing import login

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
MOMENT = timezone.make_aware(dt.datetime(2026, 12, 1, 14, 5, 9))


def render(text: str, language: str) -> str:
    with translation.override(language):
        return Template(text).render(Context({"m": MOMENT, "d": MOMENT.date()}))


def test_dates_follow_the_language_and_cannot_be_read_two_ways():
    assert render('{{ d|date:"SHORT_DATE_FORMAT" }}', "fr") == "1 déc. 2026"
    assert render('{{ d|date:"DATE_FORMAT" }}', "fr") == "1 décembre 2026"
    assert render('{{ d|date:"SHORT_DATE_FORMAT" }}', "en") == "1 Dec 2026"
    assert render('{{ d|date:"DATE_FORMAT" }}', "en") == "1 December 2026"
    assert render('{{ m|date:"DATETIME_FORMAT" }}', "fr") == "1 déc. 2026, 14:05"
    assert render('{{ m|date:"SHORT_DATETIME_FORMAT" }}', "en") == "1 Dec 2026, 14:05:09"
    for language in ("fr", "en"):
        assert "/" not in render('{{ d }} {{ m }} {{ d|date:"SHORT_DATE_FORMAT" }}', language)


def test_french_documents_write_the_month_in_letters_with_the_zone():
    assert french_date(dt.date(2026, 12, 1)) == "1er décembre 2026"
    assert french_date(dt.date(2026, 1, 12)) == "12 janvier 2026"
    assert french_datetime(MOMENT) == "1er décembre 2026 à 14:05 (heure de Paris, UTC+01:00)"


def test_no_template_hard_codes_a_numeric_date():
    numeric = re.compile(r"""date:["'][^"']*[dmj]/[^"']*["']""")
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*")
        if path.is_file() and "billing" not in path.parts and numeric.search(path.read_text())
    ]
    assert offenders == []


def test_the_72_hour_deadline_shows_the_date_in_letters_the_time_and_the_zone(client, cast):
    from rempart.incidents.models import Incident

    incident = Incident.objects.create(title="Test", detected_at=MOMENT, opened_by=cast.analyst)
    login(client, cast.analyst, cast.secrets[cast.analyst.email])
    html = client.get(f"/operateur/incidents/{incident.pk}/").content.decode()
    deadline = timezone.localtime(incident.deadline)
    shown = html.split('id="deadline"')[1].split("</strong>")[0]
    assert f"{deadline.day} " in shown and deadline.strftime("%H:%M") in shown
    assert "CET" in shown or "CEST" in shown
    assert "UTC+0" in shown and not re.search(r"\d{2}/\d{2}", shown)


def test_allauth_speaks_rempart_s_words_in_french():
    with translation.override("fr"):
        assert gettext("Recovery Codes") == "Codes de secours"
        assert gettext("Security Keys") == "Clés d'accès"
        assert "récupération" not in gettext("Recovery Codes")


def test_allauth_emails_carry_rempart_s_name_not_the_host(rf, db, settings):
    settings.REMPART_BASE_URL = "https://rempart.example"
    request = rf.get("/", HTTP_HOST="127.0.0.1:8000")
    with translation.override("fr"), allauth_context.request_context(request):
        get_adapter(request).send_mail(
            "account/email/password_changed",
            "someone@example.org",
            {"ip": "203.0.113.9", "user_agent": "x", "timestamp": MOMENT},  # fmt: skip
        )
    message = mail.outbox[-1]
    assert message.subject.startswith("[Rempart] ")
    assert "127.0.0.1" not in message.body and "127.0.0.1" not in message.subject
    assert "Rempart" in message.body and "c'est" not in message.body
