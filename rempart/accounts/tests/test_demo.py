"""The demo: one organisation of each kind, TOTP codes on demand, and a synthetic card that the counter confirms."""

import re
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from rempart.gate import Actor, check_rights
from rempart.rights.cards import read_card_data
from rempart.rights.forms import french_to_iso


def test_demo_setup_prints_logins_and_a_card_the_counter_confirms(db):
    out = StringIO()
    call_command("demo_setup", beneficiaries=60, stdout=out)
    text = out.getvalue()
    assert "opticien@demo.rempart.test" in text and "rempart-demo-2026" in text
    card = re.search(r"AMC (\d{9}), adhérent (\S+), NIR (\d{15}), né\(e\) le (\S+), rang (\d)", text)
    assert card, text
    amc, adherent, nir, born, rank = card.groups()
    code = StringIO()
    call_command("demo_code", "opticien@demo.rempart.test", stdout=code)
    assert re.fullmatch(r"\d{6}\n", code.getvalue())

    from rempart.accounts.models import User

    optician = User.objects.get(email="opticien@demo.rempart.test")
    data = read_card_data(amc_number=amc, adherent_number=adherent.rstrip(","), nir=nir.rstrip(","),
                          birth_date=french_to_iso(born.rstrip(",")), birth_rank=rank, domain="OPTI",
                          today=timezone.localdate())  # fmt: skip
    answer = check_rights(Actor(channel="portal", organisation_id=optician.membership.organisation_id), data)
    assert answer.outcome == "covered"
    call_command("demo_setup", beneficiaries=60, stdout=StringIO())  # idempotent


def _schema_example(schema: dict, name: str) -> dict[str, str]:
    properties = schema["components"]["schemas"][name]["properties"]
    return {
        field: properties[field]["examples"][0]
        for field in ("amc_number", "adherent_number", "nir", "birth_date")
    }


def test_the_api_schema_examples_are_the_demo_card_and_it_is_covered(db, client):
    """A vendor trying the schema's example on the demo gets an answer about someone, not a no_match."""
    call_command("demo_setup", beneficiaries=60, stdout=StringIO())
    schema = client.get("/api/v1/openapi.json").json()
    example = _schema_example(schema, "RightsCheckIn")
    assert _schema_example(schema, "PecIn") == example
    assert _schema_example(schema, "ClaimIn") == example
    from rempart.accounts.models import User

    optician = User.objects.get(email="opticien@demo.rempart.test")
    data = read_card_data(**example, birth_rank=None, domain="OPTI", today=timezone.localdate())
    answer = check_rights(Actor(channel="api", organisation_id=optician.membership.organisation_id), data)
    assert answer.outcome == "covered"


def test_a_demo_login_opens_with_a_recovery_code_once(db, client):
    from allauth.mfa.models import Authenticator

    from rempart.accounts.models import SecurityEvent

    call_command("demo_setup", beneficiaries=60, stdout=(setup := StringIO()))
    email = "vendeur@demo.rempart.test"
    listed = StringIO()
    call_command("demo_code", email, "--recovery", stdout=listed)
    codes = listed.getvalue().split()
    assert len(codes) == 10 and all(re.fullmatch(r"\d{10}", code) for code in codes)
    assert f"{email:<30} {codes[0]}" in setup.getvalue()  # printed on the console at setup
    stored = Authenticator.objects.get(user__email=email, type="recovery_codes").data
    assert codes[0] not in str(stored)  # hashes only, as for any account

    def log_in(code: str):
        client.logout()
        response = client.post("/accounts/login/", {"login": email, "password": "rempart-demo-2026"})
        assert response.url.startswith("/accounts/2fa/authenticate/")
        return client.post("/accounts/2fa/authenticate/", {"code": code})

    assert log_in(codes[0]).status_code == 302
    assert client.get("/").status_code == 200
    assert SecurityEvent.objects.filter(user__email=email, tag="mfa.recovery_code_used").count() == 1
    again = StringIO()
    call_command("demo_code", email, "--recovery", stdout=again)
    assert again.getvalue().split() == codes[1:]  # the used one is gone from the list
    assert log_in(codes[0]).status_code == 200  # and refused the second time
    assert client.get("/").status_code == 302
    call_command("demo_setup", beneficiaries=60, stdout=StringIO())  # setup again keeps what was used
    assert len(demo_recovery_codes_unused(email)) == 9


def demo_recovery_codes_unused(email: str) -> list[str]:
    from rempart.accounts import demo

    return demo.unused_recovery_codes(email)


def test_demo_code_refuses_other_accounts(db):
    import pytest
    from django.core.management.base import CommandError

    call_command("demo_setup", beneficiaries=60, stdout=StringIO())
    with pytest.raises(CommandError, match="only gives codes of the demo logins"):
        call_command("demo_code", "someone@example.org", "--recovery", stdout=StringIO())
