"""French by default, English on request: our French source strings are translated by rempart/locale/en."""

from django.utils import translation

from rempart.accounts.models import Organisation, Role, User

LOGIN = "/accounts/login/"
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
