"""Who may say which member a PSC identity is: the owner (with step-up) or the operator, by RPPS."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from rempart.accounts.models import SecurityEvent
from rempart.accounts.tests.helpers import age_second_factor
from rempart.psc import linking
from rempart.psc.models import ProfessionalIdentity
from rempart.psc.tests.helpers import psc_login, synthetic_rpps
from rempart.psc.tests.oidc_provider import Identity
from rempart.testing import login

PAGE = "/organisation/pro-sante-connect/"


def test_the_owner_links_a_member_then_that_member_logs_in_with_psc(client, client_class, psc, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert cast.staff.email in client.get(PAGE).content.decode()
    rpps = synthetic_rpps(41)
    membership = cast.staff.membership
    response = client.post(f"{PAGE}{membership.pk}/relier/", {"rpps": "8" + rpps})  # PSC's 12-digit form
    assert response.url == PAGE
    assert ProfessionalIdentity.objects.get(user=cast.staff).rpps == rpps
    event = SecurityEvent.objects.get(tag="psc.linked", user=cast.staff)
    assert event.details == {"rpps": rpps, "by": cast.owner.email}
    professional = client_class()
    assert psc_login(professional, psc, Identity(rpps)).url == "/"
    assert professional.get("/").status_code == 200


def test_linking_asks_for_the_second_factor_again(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    age_second_factor(client, 400)
    response = client.post(f"{PAGE}{cast.staff.membership.pk}/relier/", {"rpps": synthetic_rpps(42)})
    assert "reauthenticate" in response.url
    assert not ProfessionalIdentity.objects.exists()


def test_detaching_ends_psc_logins(client, client_class, psc, pros, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    client.post(f"{PAGE}{cast.staff.membership.pk}/detacher/")
    assert not ProfessionalIdentity.objects.filter(user=cast.staff).exists()
    assert SecurityEvent.objects.filter(tag="psc.unlinked", user=cast.staff).exists()
    professional = client_class()
    assert 'data-reason="unknown_identity"' in psc_login(professional, psc, pros.staff).content.decode()


@pytest.mark.parametrize(
    ("rpps", "message"),
    [("12345678901", "Numéro RPPS invalide"), ("abc", "Numéro RPPS invalide")],
)
def test_a_wrong_rpps_is_refused(client, cast, rpps, message):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    response = client.post(f"{PAGE}{cast.staff.membership.pk}/relier/", {"rpps": rpps}, follow=True)
    assert message in response.content.decode()
    assert not ProfessionalIdentity.objects.exists()


def test_one_rpps_is_one_member(cast):
    rpps = synthetic_rpps(43)
    linking.link(cast.staff, rpps)
    with pytest.raises(linking.LinkRefused, match="déjà relié à un autre compte"):
        linking.link(cast.owner, rpps)
    with pytest.raises(linking.LinkRefused, match="déjà relié à un autre compte"):
        linking.link(cast.outsider, rpps)


def test_only_professionals_can_be_linked(cast):
    for person in (cast.insurer_member, cast.analyst, cast.admin):
        with pytest.raises(
            linking.LinkRefused, match="réservé aux membres des organisations de professionnels"
        ):
            linking.link(person, synthetic_rpps(44))


@pytest.mark.parametrize("who", ["staff", "insurer_member", "analyst", "admin"])
def test_the_page_is_the_owner_s_only(client, cast, who):
    person = getattr(cast, who)
    login(client, person, cast.secrets[person.email])
    assert client.get(PAGE).status_code == 404
    assert (
        client.post(f"{PAGE}{cast.staff.membership.pk}/relier/", {"rpps": synthetic_rpps(45)}).status_code
        == 404
    )
    assert not ProfessionalIdentity.objects.exists()


def test_an_owner_cannot_link_a_member_of_another_organisation(client, cast):
    login(client, cast.outsider, cast.secrets[cast.outsider.email])
    response = client.post(f"{PAGE}{cast.staff.membership.pk}/relier/", {"rpps": synthetic_rpps(46)})
    assert response.status_code == 404
    assert not ProfessionalIdentity.objects.exists()


def test_the_operator_links_from_the_command_line(cast, capsys):
    rpps = synthetic_rpps(47)
    call_command("psc_link", cast.staff.email, rpps)
    assert ProfessionalIdentity.objects.get(user=cast.staff).rpps == rpps
    assert SecurityEvent.objects.get(tag="psc.linked").details["by"] == "operator"
    with pytest.raises(CommandError, match="RPPS invalide"):
        call_command("psc_link", cast.owner.email, "10000000000")
    with pytest.raises(CommandError, match="no person"):
        call_command("psc_link", "nobody@example.test", rpps)
    call_command("psc_link", cast.staff.email, "--remove")
    assert not ProfessionalIdentity.objects.exists()


def test_the_page_reads_in_english(client, cast, pros):
    linking.unlink(cast.owner)
    login(client, cast.owner, cast.secrets[cast.owner.email])
    client.cookies["django_language"] = "en"
    page = client.get(PAGE).content.decode()
    assert "Pro Santé Connect — members" in page and "Last Pro Santé Connect login" in page
    assert pros.staff.rpps in page and ">Replace<" in page and ">Detach<" in page and ">Link<" in page
    assert "Membre" not in page
