"""What cannot be undone is confirmed; the least powerful role comes first; a token shown once can be copied."""

from pathlib import Path

from django.core import mail

from rempart.accounts.models import Membership, Role
from rempart.testing import login

STATIC = Path(__file__).resolve().parents[2] / "static" / "rempart"


def test_removing_a_member_needs_the_ticked_box(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    page = client.get("/organisation/membres/").content.decode()
    assert 'name="confirm" value="yes" required' in page and cast.staff.email in page
    url = f"/organisation/membres/{cast.staff.membership.pk}/retirer/"
    response = client.post(url, follow=True)  # a client that ignores `required`
    cast.staff.refresh_from_db()
    assert cast.staff.is_active and Membership.objects.filter(user=cast.staff).exists()
    assert "Cochez la case de confirmation" in response.content.decode()
    client.post(url, {"confirm": "yes"})
    cast.staff.refresh_from_db()
    assert not cast.staff.is_active and not Membership.objects.filter(user=cast.staff).exists()


def test_the_invitation_form_preselects_the_least_powerful_role(client, cast):
    from rempart.accounts.forms import InviteForm

    assert InviteForm(organisation=cast.optician)["role"].value() == Role.STAFF
    assert InviteForm(organisation=cast.insurer)["role"].value() == Role.INSURER_MEMBER
    assert InviteForm(organisation=cast.operator)["role"].value() == Role.SUPPORT
    login(client, cast.owner, cast.secrets[cast.owner.email])
    page = client.get("/organisation/membres/").content.decode()
    invite = page[page.index('name="email"') :]
    assert f'<option value="{Role.STAFF}" selected>' in invite
    assert f'<option value="{Role.OWNER}" selected>' not in invite


def test_a_new_token_has_a_copy_button_and_a_one_click_selection(client, cast):
    login(client, cast.owner, cast.secrets[cast.owner.email])
    response = client.post(
        "/organisation/jetons/creer/",
        {"name": "LGO", "scopes": ["rights:check"], "lifetime_days": 30},
        follow=True,
    )
    html = response.content.decode()
    assert 'class="select-all" id="new-token"' in html  # selected in one click, JavaScript or not
    assert 'id="copy-token"' in html and "hidden" in html.split('id="copy-token"')[1].split(">")[0]
    assert "/static/rempart/copy.js" in html
    script = (STATIC / "copy.js").read_text()
    assert "navigator.clipboard.writeText" in script and "addRange" in script  # copy, else select
    assert ".select-all" in (STATIC / "rempart.css").read_text()
    assert not mail.outbox or all("rmp_" not in m.body for m in mail.outbox)
