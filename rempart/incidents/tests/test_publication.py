"""The review step between generating an insurer's notices and the insurer seeing them: *publier*.

Nothing reaches the insurer (page, download, email) before an operator's security analyst publishes; publishing
emails the insurer's members once, in their language, with a link and no personal data; it is recorded."""

import pytest
from django.core import mail
from django.utils import timezone

from rempart.accounts.models import SecurityEvent
from rempart.incidents import workflow
from rempart.incidents.documents import store_document
from rempart.incidents.models import Document, Scope
from rempart.incidents.publication import PublishRefused, publish
from rempart.incidents.scope import ScopeCriteria
from rempart.testing import login, make_user


@pytest.fixture(autouse=True)
def _private_dir(settings, tmp_path):
    settings.REMPART_INCIDENT_DIR = str(tmp_path / "incidents")


@pytest.fixture
def notices(cast, tmp_path):
    """An incident with a frozen scope and the documents generated for two insurers (unpublished)."""
    from rempart.registry.models import Insurer

    first = cast.insurer.insurer
    second = Insurer.objects.create(amc_number="987654321", name="Prévoyance Seconde", kind="prevoyance")
    incident = workflow.open_incident(title="Compte de Jeanne Martin détourné", detected_at=timezone.now())
    criteria = ScopeCriteria(user_ids=(cast.staff.pk,)).to_json()
    scope = Scope.objects.create(incident=incident, label="staff", criteria=criteria, ledger_ok=True)
    documents = {}
    for insurer in (first, second):
        for kind in (Document.Kind.PROCESSOR_NOTICE, Document.Kind.AFFECTED_LIST):
            documents.setdefault(insurer.pk, []).append(
                store_document(
                    incident,
                    kind=kind,
                    filename=f"{kind}-{insurer.pk}.csv",
                    content_type="text/csv",
                    path_or_bytes=b"numero_adherent;rang\nA1;1\n",
                    insurer=insurer,
                    scope=scope,
                )  # fmt: skip
            )
    return {"incident": incident, "scope": scope, "first": first, "second": second, "documents": documents}


def _as(client_class, cast, user):
    client = client_class()
    login(client, user, cast.secrets[user.email])
    return client


def _notices_mail() -> list:
    """The notice emails sent (logging in sends its own)."""
    return [m for m in mail.outbox if "incident" in m.subject.lower()]


def _url(notices, insurer):
    return f"/operateur/incidents/{notices['incident'].pk}/perimetres/{notices['scope'].pk}/publier/{insurer.pk}/"


def test_nothing_reaches_the_insurer_before_publication(client_class, cast, notices):
    member = _as(client_class, cast, cast.insurer_member)
    listing = member.get("/assureur/incidents/").content.decode()
    for document in notices["documents"][notices["first"].pk]:
        assert document.sha256 not in listing
        assert member.get(f"/assureur/incidents/documents/{document.pk}/").status_code == 404
    assert _notices_mail() == []


def test_publishing_shows_the_documents_and_emails_the_members_once(
    client_class, cast, notices, settings, django_capture_on_commit_callbacks
):
    settings.REMPART_BASE_URL = "https://rempart.example"
    first = notices["first"]
    analyst = _as(client_class, cast, cast.analyst)
    with django_capture_on_commit_callbacks(execute=True):
        response = analyst.post(_url(notices, first), follow=True)
    assert response.status_code == 200 and "ses membres sont prévenus" in response.content.decode()
    assert len(_notices_mail()) == 1
    message = _notices_mail()[0]
    assert message.to == [cast.insurer_member.email]
    assert notices["incident"].number in message.subject
    assert "https://rempart.example/assureur/incidents/" in message.body
    assert "Jeanne Martin" not in message.body + message.subject  # the incident's title: operator's words
    assert "A1" not in message.body
    # Published: listed and downloadable for the first insurer; the second insurer's are still drafts.
    member = _as(client_class, cast, cast.insurer_member)
    listing = member.get("/assureur/incidents/").content.decode()
    for document in notices["documents"][first.pk]:
        assert document.sha256 in listing
        response = member.get(f"/assureur/incidents/documents/{document.pk}/")
        assert response.status_code == 200 and b"".join(response.streaming_content).startswith(
            b"numero_adherent"
        )
    assert not Document.objects.filter(insurer=notices["second"], published_at__isnull=False).exists()
    event = SecurityEvent.objects.get(tag="incident.notices_published")
    assert event.user == cast.analyst
    assert notices["incident"].timeline.filter(action="published").count() == 1
    # Twice: nothing more is sent, nothing more is recorded.
    with django_capture_on_commit_callbacks(execute=True):
        again = analyst.post(_url(notices, first), follow=True)
        assert publish(notices["incident"], notices["scope"], first, by=cast.analyst) == 0
    assert "déjà publiées" in again.content.decode()
    assert len(_notices_mail()) == 1
    assert SecurityEvent.objects.filter(tag="incident.notices_published").count() == 1


def test_members_read_the_email_in_their_language_else_french(
    cast, notices, monkeypatch, django_capture_on_commit_callbacks
):
    from types import SimpleNamespace

    from rempart.accounts.models import Role
    from rempart.incidents import publication

    assert publication._language_of(SimpleNamespace(language="en")) == "en"
    assert publication._language_of(SimpleNamespace(language="de")) == "fr"
    assert publication._language_of(SimpleNamespace()) == "fr"  # no language stored: French
    make_user("en@insurer.test", cast.insurer, Role.INSURER_MEMBER)
    original = publication._language_of
    monkeypatch.setattr(
        publication, "_language_of", lambda user: "en" if user.email == "en@insurer.test" else original(user)
    )
    with django_capture_on_commit_callbacks(execute=True):
        publish(notices["incident"], notices["scope"], notices["first"], by=cast.analyst)
    by_address = {m.to[0]: m for m in _notices_mail()}
    assert set(by_address) == {cast.insurer_member.email, "en@insurer.test"}
    assert "disponibles" in by_address[cast.insurer_member.email].subject
    assert "available" in by_address["en@insurer.test"].subject
    assert "publié" not in by_address["en@insurer.test"].body


def test_a_suspended_member_is_not_emailed(cast, notices, django_capture_on_commit_callbacks):
    cast.insurer_member.suspended_at = timezone.now()
    cast.insurer_member.save(update_fields=["suspended_at"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert publish(notices["incident"], notices["scope"], notices["first"], by=cast.analyst) == 2
    assert len(callbacks) == 1 and _notices_mail() == []


@pytest.mark.parametrize("who", ["owner", "insurer_member", "admin", "staff"])
def test_only_security_analysts_publish(client_class, cast, notices, who, django_capture_on_commit_callbacks):
    user = getattr(cast, who)
    other = _as(client_class, cast, user)
    with django_capture_on_commit_callbacks(execute=True):
        assert other.post(_url(notices, notices["first"])).status_code == 404
        with pytest.raises(PublishRefused):
            publish(notices["incident"], notices["scope"], notices["first"], by=user)
    assert not Document.objects.filter(published_at__isnull=False).exists()
    assert (
        _notices_mail() == [] and not SecurityEvent.objects.filter(tag="incident.notices_published").exists()
    )


def test_publish_is_a_post(client_class, cast, notices):
    analyst = _as(client_class, cast, cast.analyst)
    assert analyst.get(_url(notices, notices["first"])).status_code == 405
    assert not Document.objects.filter(published_at__isnull=False).exists()


def test_the_console_offers_publish_per_insurer_and_says_when_it_was(client_class, cast, notices):
    analyst = _as(client_class, cast, cast.analyst)
    page = analyst.get(f"/operateur/incidents/{notices['incident'].pk}/").content.decode()
    assert f"Publier à {notices['first'].name}" in page and f"Publier à {notices['second'].name}" in page
    publish(notices["incident"], notices["scope"], notices["first"], by=cast.analyst)
    page = analyst.get(f"/operateur/incidents/{notices['incident'].pk}/").content.decode()
    assert f"Publier à {notices['first'].name}" not in page and "publié le" in page
    assert f"Publier à {notices['second'].name}" in page
