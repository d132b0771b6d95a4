"""French by default, English on request: our French source strings are translated by rempart/locale/en."""

from html import unescape

from django.utils import translation

from rempart.accounts.models import Organisation, Role, User
from rempart.testing import login

LOGIN = "/accounts/login/"
RIGHTS_CHECK = "/comptoir/droits/"
FOOTER_FR = "Rempart — tiers payant : confirmer les droits sans divulguer les données."
FOOTER_EN = "Rempart — third-party payment (tiers payant): confirm rights without disclosing data."


def test_login_page_is_french_by_default(client, db):
    page = client.get(LOGIN).content.decode()
    assert '<html lang="fr">' in page
    assert FOOTER_FR in page
    assert FOOTER_EN not in page


def test_language_switch_shows_the_login_page_in_english(client, db):
    response = client.post("/i18n/setlang/", {"language": "en", "next": LOGIN})
    assert response.status_code == 302 and response.url == LOGIN
    page = client.get(LOGIN).content.decode()
    assert '<html lang="en">' in page
    assert FOOTER_EN in page
    assert FOOTER_FR not in page
    assert 'aria-label="Main navigation"' in page

    client.post("/i18n/setlang/", {"language": "fr", "next": LOGIN})
    assert FOOTER_FR in client.get(LOGIN).content.decode()


def test_model_labels_and_verbose_names_are_translated():
    with translation.override("en"):
        assert Role.OWNER.label == "Owner"
        assert Role.STAFF.label == "Staff member"
        assert str(Organisation.Kind.PROFESSIONAL.label) == "Health professional"
        assert str(User._meta.verbose_name) == "person"
        assert str(User._meta.get_field("email").verbose_name) == "email address"
    with translation.override("fr"):
        assert Role.OWNER.label == "Titulaire"
        assert str(User._meta.verbose_name) == "personne"


def test_rights_check_page_is_in_english_for_a_logged_in_professional(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    client.post("/i18n/setlang/", {"language": "en", "next": RIGHTS_CHECK})
    response = client.get(RIGHTS_CHECK)
    assert response.status_code == 200
    page = unescape(response.content.decode())
    assert '<html lang="en">' in page
    assert "Check a patient's rights" in page
    assert "Tiers payant card" in page and "Date of birth" in page
    assert "Vérifier les droits d'un patient" not in page
