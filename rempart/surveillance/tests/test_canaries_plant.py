"""Planting canaries: every insurer gets them, through imports that look like its own, and a shortfall fails."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.core.management import base, call_command
from django.core.management.base import CommandError
from stdnum import luhn

from rempart.gate import check_rights
from rempart.lib.identifiers import LunarDate, validate_nir
from rempart.registry import seeding
from rempart.registry.models import Beneficiary, Contract, ImportRun, Insurer
from rempart.registry.rights_import import import_rights
from rempart.surveillance import canaries
from rempart.surveillance.management.commands.canaries import Command as CanariesCommand
from rempart.surveillance.models import Alert, Canary
from rempart.surveillance.tests.canary_world import COL, TODAY, World, make_insurer
from rempart.surveillance.tests.conftest import actor_for, card_of

pytestmark = pytest.mark.django_db


def _card_row(card: dict) -> list[str]:
    row = [""] * len(COL)
    for name in ("amc_number", "adherent_number", "nir", "birth_date"):
        row[COL[name]] = card[name]
    if card["birth_rank"] != "1":
        row[COL["birth_rank"]] = card["birth_rank"]
    return row


def _members(insurer: Insurer, number: str) -> list[tuple]:
    return list(
        Beneficiary.objects.filter(contract__insurer=insurer, contract__adherent_number=number)
        .order_by("member_number")
        .values_list("pk", "member_number")
    )


@pytest.fixture
def world(tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    world = World(make_insurer(tmp_path), tmp_path, seed=3)
    world.first_load(400)
    for day in range(1, 4):
        world.import_delta(*world.delta(day, 60))
    return world


# --- every insurer ------------------------------------------------------------------------------------


def test_every_generated_insurer_gets_canaries_the_largest_and_the_first_included(settings, tmp_path):
    """The attack report: the largest insurer got none while the command said "0 planted" and exited 0.
    The old planter drew numbers in the generator's own series for insurer index 0, which are exactly the
    largest insurer's: all taken. Now numbers come from each insurer's own numbering."""
    seeding.populate(5, 900, show_progress=False, today=TODAY)
    insurers = list(Insurer.objects.order_by("pk"))
    largest = max(insurers, key=lambda i: Contract.objects.filter(insurer=i).count())
    assert largest == insurers[0]  # the demo's first insurer is the largest one
    out = io.StringIO()
    call_command("canaries", "plant", "--all", "--count", "3", stdout=out, stderr=io.StringIO())
    for insurer in insurers:
        planted = Canary.objects.filter(insurer=insurer)
        assert planted.count() >= 3, insurer
        numbers = {canaries.sealed_card(c)["adherent_number"] for c in planted}
        own = set(Contract.objects.filter(insurer=insurer).values_list("adherent_number", flat=True))
        assert numbers <= own
        assert {len(n) for n in numbers} == {10} and all(n[:2] == next(iter(own))[:2] for n in numbers)
    assert "0 canaries" not in out.getvalue()
    again = io.StringIO()
    call_command(
        "canaries", "plant", "--all", "--count", "3", stdout=again
    )  # topped up already: nothing to do
    assert again.getvalue().count("active already") == len(insurers)


def test_the_demo_plants_canaries_for_every_insurer(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    out = io.StringIO()
    call_command("demo_setup", beneficiaries=300, stdout=out)
    insurers = Insurer.objects.all()
    assert insurers.count() == 3
    for insurer in insurers:
        assert Canary.objects.filter(insurer=insurer, retired_at__isnull=True).count() >= 2, insurer
    total = Canary.objects.count()
    assert f"Canary beneficiaries planted: {total}" in out.getvalue()


def test_planting_fewer_than_asked_fails_with_a_clear_message_and_a_non_zero_exit(world, monkeypatch):
    monkeypatch.setattr(
        base.connections, "close_all", lambda: None
    )  # run_from_argv would end the test's transaction
    empty = Insurer.objects.create(amc_number="400000009", name="Mutuelle Vide", kind="mutuelle")
    with pytest.raises(CommandError, match="has no contracts yet"):
        call_command("canaries", "plant", "--insurer", empty.amc_number)
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        argv = ["rempart", "canaries", "plant", "--insurer", empty.amc_number, "--skip-checks"]
        CanariesCommand(stdout=io.StringIO(), stderr=err).run_from_argv(argv)
    assert exit_info.value.code != 0
    assert "canaries not planted for Mutuelle Vide" in err.getvalue()  # what the operator reads

    real_import = canaries.import_rights

    def losing_a_row(path, insurer, **options):  # an import that loses one canary row on the way
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = lines[2:-1]
        path.write_text("\n".join([*lines[:2], *rows[:-1], f"#end;{len(rows) - 1}"]) + "\n", encoding="utf-8")
        return real_import(path, insurer, **options)

    monkeypatch.setattr(canaries, "import_rights", losing_a_row)
    with pytest.raises(CommandError, match=r"only \d+ of \d+ canaries were planted"):
        call_command("canaries", "plant", "--insurer", world.insurer.amc_number, "--count", "3")
    with pytest.raises(CommandError, match="--count must be between 1 and 20"):
        call_command("canaries", "plant", "--insurer", world.insurer.amc_number, "--count", "21")


# --- what is planted ----------------------------------------------------------------------------------


def test_canaries_are_whole_families_with_valid_consistent_identifiers(world):
    planted = canaries.plant(world.insurer, 20, seed=4, today=TODAY)
    assert len(planted) >= 20
    cards = [canaries.sealed_card(c) for c in planted]
    numbers = sorted({card["adherent_number"] for card in cards})
    assert len(numbers) < len(planted)  # families, not one-person contracts
    for number in numbers:
        assert re.fullmatch(r"MT\d{8}", number) and luhn.is_valid(number[2:])  # the insurer's own numbering
        members = _members(world.insurer, number)
        tagged = {canaries.tag_of(pk) for pk, _member in members}
        assert tagged <= {bytes(c.tag) for c in planted}  # every member of a canary family is a canary
    for card in cards:
        assert validate_nir(card["nir"]) and LunarDate.parse(card["birth_date"]).year <= TODAY.year
    # Each planted person is found by the counter's lookup exactly like anyone.
    for canary, card in zip(planted, cards, strict=True):
        found = Beneficiary.objects.get(
            contract__insurer=world.insurer, contract__adherent_number=card["adherent_number"],
            pk__in=[pk for pk, _m in _members(world.insurer, card["adherent_number"])],
            birth_year=LunarDate.parse(card["birth_date"]).year, birth_rank=int(card["birth_rank"]),
            birth_month=LunarDate.parse(card["birth_date"]).month, birth_day=LunarDate.parse(card["birth_date"]).day,
        )  # fmt: skip
        assert canaries.tag_of(found.pk) == bytes(canary.tag)
        if found.nir_cipher is not None:
            from rempart.lib.crypto import field_cipher

            own = field_cipher().decrypt("nir", bytes(found.nir_cipher))
            sex_digit = "1" if found.sex == "M" else "2"
            assert own[0] == sex_digit and own[1:3] == f"{found.birth_year % 100:02d}"
            assert own[3:5] == (f"{found.birth_month:02d}" if found.birth_month else "20")
            assert card["nir"] == own  # the card carries their own NIR when they have one


def test_a_canary_is_caught_at_the_first_hit_and_answered_like_anyone(world, cast, settings):
    settings.REMPART_SURVEILLANCE_ENABLED = True
    planted = canaries.plant(world.insurer, 3, seed=8, today=TODAY)
    card = canaries.sealed_card(planted[-1])
    answer = check_rights(actor_for(cast.staff), card_of(_card_row(card)))
    assert answer.outcome != "no_match"
    alert = Alert.objects.get(signal="canary")
    assert alert.evidence["canary"]["canary"] == planted[-1].pk and alert.level == 3


def test_an_insurer_file_taking_a_canarys_number_retires_it_instead_of_flagging_its_real_person(
    world, cast, settings
):
    """Numbers past the insurer's top may later be assigned by the insurer: its real person must not trip."""
    settings.REMPART_SURVEILLANCE_ENABLED = True
    planted = canaries.plant(world.insurer, 1, seed=2, today=TODAY)
    card = canaries.sealed_card(planted[0])
    real = [list(r) for r in world.families(3, "late", recent=True)[0]][:1]
    real[0][COL["adherent_number"]] = card["adherent_number"]
    real[0][COL["member_number"]] = "1"
    import_rights(
        world.write("MT_delta_20261125.csv", [real]), world.insurer, show_progress=False, today=TODAY
    )
    canaries.forget()
    answer = check_rights(actor_for(cast.staff), card_of(real[0]))
    assert answer.outcome != "no_match"
    assert not Alert.objects.filter(signal="canary").exists()  # the real person is not a canary
    assert Canary.objects.get(pk=planted[0].pk).retired_at is not None
    assert cast.staff.__class__.objects.get(pk=cast.staff.pk).suspended_at is None


# --- the import that plants them ----------------------------------------------------------------------


def test_a_canary_delta_is_named_and_run_like_the_insurers_own(world):
    before = ImportRun.objects.count()
    canaries.plant(world.insurer, 3, seed=1, today=TODAY)
    run = ImportRun.objects.order_by("-pk").first()
    assert ImportRun.objects.count() == before + 1
    ordinary = world.runs[-1]
    assert run.file_name == f"MT_delta_{TODAY:%Y%m%d}.csv"
    assert (run.kind, run.mode, run.status, run.message) == (ordinary.kind, ordinary.mode, "succeeded", "")
    assert re.sub(r"\d{6}-", "", run.report_dir) == re.sub(
        r"\d{6}-", "", ordinary.report_dir
    )  # var/imports/…
    telltale = re.compile(r"canar|maint|test|synth|temp|tmp", re.I)
    assert not telltale.search(run.file_name + run.message + Path(run.report_dir).name)


def test_canaries_ride_in_the_insurers_own_file_among_its_new_contracts(world, tmp_path):
    path, families = world.delta(10, 150)
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = lines[5].split(";")
    bad[COL["sex"]] = "X"  # the insurer's own mistake, on line 6 of its file
    lines[5] = ";".join(bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first_new = Contract.objects.order_by("-pk").values_list("pk", flat=True).first()

    planting = canaries.plant_in_import(world.insurer, 6, seed=5, carrier=path, today=TODAY)

    run = planting.run
    assert (
        run.file_name == path.name
        and run.mode == "delta"
        and run == ImportRun.objects.order_by("-pk").first()
    )
    assert run.counts["rows_read"] == len(lines) - 3 + len(planting.canaries)
    with (tmp_path / "var" / "imports").glob(f"{run.pk:06d}-*").__next__().joinpath("errors.csv").open() as f:
        errors = list(csv.reader(f, delimiter=";"))[1:]
    assert [(e[0], e[1]) for e in errors] == [("6", "sex")]  # the insurer's own line number
    # Created in file order, the canary contracts sit among the file's new contracts, ids following numbers.
    created = list(
        Contract.objects.filter(pk__gt=first_new).order_by("pk").values_list("adherent_number", flat=True)
    )
    numbers = {canaries.sealed_card(c)["adherent_number"] for c in planting.canaries}
    assert numbers < set(created) and created == sorted(created) and planting.past_the_top == 0
    assert all(created.index(n) < len(created) - 1 for n in numbers)  # in gaps inside the file's range


def test_a_file_refused_as_a_whole_plants_nothing_and_imports_nothing(world):
    path, _families = world.delta(11, 30)
    path.write_text(path.read_text(encoding="utf-8").replace("#end;", "#end;9"), encoding="utf-8")
    before = (ImportRun.objects.count(), Contract.objects.count())
    with pytest.raises(CommandError, match="refused as a whole"):
        call_command("canaries", "plant", "--insurer", world.insurer.amc_number, "--with-file", str(path))
    assert (ImportRun.objects.count(), Contract.objects.count()) == before and not Canary.objects.exists()


def test_plant_refuses_a_full_mode_without_the_insurers_file(world):
    with pytest.raises(ValueError, match="delta of their own"):
        canaries.plant_in_import(world.insurer, 2, mode="full")


def test_a_full_file_carrying_new_canaries_keeps_the_earlier_ones(world):
    """A full import ends what its file does not list; the canaries' own full import lists the live ones."""
    earlier = canaries.plant(world.insurer, 3, seed=6, today=TODAY)
    numbers = {canaries.sealed_card(c)["adherent_number"] for c in earlier}
    before = dict(
        Beneficiary.objects.filter(contract__adherent_number__in=numbers).values_list("pk", "fingerprint")
    )
    full = world.write("MT_full_20261125.csv", list(world.contracts.values()))
    planting = canaries.plant_in_import(world.insurer, 3, seed=7, carrier=full, mode="full", today=TODAY)
    assert (
        planting.run.mode == "full" and planting.summary.ended == 0 and planting.summary.contracts_ended == 0
    )
    after = dict(Beneficiary.objects.filter(pk__in=before).values_list("pk", "fingerprint"))
    assert after == before  # read back unchanged: not ended, not rewritten
    assert set(Contract.objects.filter(adherent_number__in=numbers).values_list("status", flat=True)) != {
        "terminated"
    }
    assert Canary.objects.filter(insurer=world.insurer, retired_at__isnull=True).count() == len(
        earlier
    ) + len(planting.canaries)
