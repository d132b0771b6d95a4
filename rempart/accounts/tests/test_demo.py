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
