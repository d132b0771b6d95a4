"""A member sees only their own organisation: other organisations' objects answer 404, whatever the id."""

import pytest

from rempart.accounts import invitations, tokens
from rempart.accounts.models import ApiToken, Role
from rempart.testing import login


@pytest.fixture
def foreign(cast):
    token, _raw = tokens.create_token(cast.other_shop, "LGO voisin", ["rights:check"], cast.outsider)
    invitation, _ = invitations.invite(cast.other_shop, "their-staff@other.test", Role.STAFF, cast.outsider)
    return {"token": token, "invitation": invitation, "membership": cast.outsider.membership}


def test_owner_of_a_cannot_touch_b_by_id(client, cast, foreign):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.post(f"/organisation/jetons/{foreign['token'].pk}/revoquer/").status_code == 404
    assert client.post(f"/organisation/invitations/{foreign['invitation'].pk}/annuler/").status_code == 404
    assert client.post(f"/organisation/membres/{foreign['membership'].pk}/retirer/").status_code == 404
    assert (
        client.post(f"/organisation/membres/{foreign['membership'].pk}/role/", {"role": "staff"}).status_code
        == 404
    )
    assert ApiToken.objects.get(pk=foreign["token"].pk).revoked_at is None
    members = client.get("/organisation/membres/").content.decode()
    assert cast.outsider.email not in members and cast.staff.email in members


@pytest.mark.parametrize("who", ["staff", "insurer_member", "analyst"])
def test_only_professional_owners_reach_tokens(client, cast, who):
    user = getattr(cast, who)
    login(client, user, cast.secrets[user.email])
    assert client.get("/organisation/jetons/").status_code == 404


def test_staff_sees_no_organisation_events(client, cast):
    login(client, cast.staff, cast.secrets[cast.staff.email])
    assert client.get("/organisation/evenements/").status_code == 404


def test_owner_sees_own_organisation_events_only(client, cast):
    from rempart.accounts.events import record_event

    record_event("token.created", user=cast.outsider, token="zzzz")
    login(client, cast.owner, cast.secrets[cast.owner.email])
    page = client.get("/organisation/evenements/").content.decode()
    assert cast.owner.email in page
    assert cast.outsider.email not in page
