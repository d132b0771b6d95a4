"""The synthetic generator: deterministic, valid identifiers, realistic shapes, importable end to end."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.core.management import call_command

from rempart.conftest import TODAY
from rempart.lib.identifiers import (
    LunarDate,
    validate_amc_number,
    validate_bic,
    validate_finess,
    validate_iban,
    validate_nir,
    validate_siren,
    validate_siret,
)
from rempart.registry import rights_format as fmt
from rempart.registry import seeding, synthetic
from rempart.registry.models import Beneficiary, Insurer, Product, Professional
from rempart.registry.products_import import import_products
from rempart.registry.tests.support import (
    ADHERENT,
    BIRTH,
    MEMBER,
    NIR,
    OD_NIR,
    QUALITY,
    registry_state,
    run_import,
)


def read_rights(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=";"))
    assert lines[0] == fmt.magic_line(path.stem.removeprefix("rights-")).split(";")
    assert lines[1] == list(fmt.COLUMNS)
    assert lines[-1] == fmt.trailer_line(len(lines) - 3).split(";")
    return lines[2:-1]


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = seeding.write_files(tmp_path / "a", 4, 900, TODAY, show_progress=False)
    second = seeding.write_files(tmp_path / "b", 4, 900, TODAY, show_progress=False)
    other = seeding.write_files(tmp_path / "c", 5, 900, TODAY, show_progress=False)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len([n for n in names if n.startswith("rights-")]) == len(first) == 3
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert [p.name for p in first] == [p.name for p in second]
    assert {p.read_bytes() for p in first}.isdisjoint({p.read_bytes() for p in other})
    assert sum(len(read_rights(p)) for p in first) == 900


def test_insurer_plan_is_deterministic_and_sized():
    small = synthetic.plan_insurers(1, 1000)
    assert small == synthetic.plan_insurers(1, 1000)
    assert sum(s.beneficiaries for s in small) == 1000
    big = synthetic.plan_insurers(1, 20_000_000)
    assert len(big) == 80
    assert sum(s.beneficiaries for s in big) == 20_000_000
    assert len({s.amc_number for s in big}) == 80
    for spec in big:
        validate_amc_number(spec.amc_number)
    assert big[0].beneficiaries > big[-1].beneficiaries  # a few big insurers and a long tail


def test_every_generated_nir_is_valid_and_families_are_consistent():
    spec = synthetic.InsurerSpec(3, "123456789", "Test", "mutuelle", "", 6000)
    rows = list(synthetic.beneficiary_rows(spec, 11, TODAY))
    assert len(rows) == 6000
    families = defaultdict(list)
    for row in rows:
        assert len(row) == len(fmt.COLUMNS)
        families[row[ADHERENT]].append(row)
        for value in (row[NIR], row[OD_NIR]):
            if value:
                assert validate_nir(value) == value
        assert row[NIR] or row[OD_NIR]
        birth = LunarDate.parse(row[BIRTH])
        if row[NIR] and birth.month:
            assert row[NIR][3:5] == f"{birth.month:02d}"  # the NIR carries the birth month
            assert row[NIR][1:3] == f"{birth.year % 100:02d}"
    corsica = [row for row in rows if row[NIR][5:7] in ("2A", "2B")]
    assert corsica  # Corsican NIRs are generated too
    for members in families.values():
        numbers = [int(row[MEMBER]) for row in members]
        assert len(numbers) == len(set(numbers))
        principal = [row for row in members if row[QUALITY] == "ASSURE"]
        assert len(principal) <= 1
        if principal:
            assert principal[0][NIR]
            for row in members:
                assert row[OD_NIR] in ("", principal[0][NIR])  # children on the principal's card
        assert len({tuple(row[1:6]) for row in members}) == 1  # one description per contract
    qualities = Counter(row[QUALITY] for row in rows)
    assert qualities["ASSURE"] and qualities["CONJOINT"] and qualities["ENFANT"]
    assert any(not row[NIR] and row[OD_NIR] for row in rows)  # children without a NIR of their own


def test_lunar_dates_appear_at_a_larger_size():
    spec = synthetic.InsurerSpec(0, "123456789", "Test", "mutuelle", "", 8000)
    births = [LunarDate.parse(row[BIRTH]) for row in synthetic.beneficiary_rows(spec, 2, TODAY)]
    lunar = [birth for birth in births if birth.is_lunar]
    assert 0 < len(lunar) < len(births) // 20  # now and then, not everywhere


def test_every_generated_professional_identifier_is_valid():
    specs = list(synthetic.professionals(seed=3, count=400))
    assert specs == list(synthetic.professionals(seed=3, count=400))
    assert len({s.finess for s in specs}) == len(specs)
    for spec in specs:
        assert validate_finess(spec.finess) == spec.finess
        assert validate_siret(spec.siret) == spec.siret
        assert validate_siren(spec.siret[:9]) == spec.siret[:9]
        assert validate_iban(spec.iban) == spec.iban
        assert validate_bic(spec.bic, spec.iban)
        assert spec.domains and set(spec.domains) <= {
            d
            for d in ("PHAR", "MEDE", "LABO", "RADL", "AUXI", "DENT", "OPTI", "AUDI", "HOSP", "TRAN", "SAGE")
        }
        assert len(spec.postal_code) == 5
    assert any(s.finess.startswith(("2A", "2B")) for s in specs)  # Corsican FINESS too


@pytest.mark.django_db
def test_written_files_import_with_zero_rejected_rows(tmp_path):
    files = seeding.write_files(tmp_path, 8, 1500, TODAY, show_progress=False)
    total = 0
    for spec, path in zip(synthetic.plan_insurers(8, 1500), files, strict=True):
        insurer = seeding.ensure_insurer(spec)
        products = import_products(tmp_path / f"products-{spec.amc_number}.csv", insurer)
        assert products.errors == []
        run, summary = run_import(path, insurer, tmp_path, mode="full")
        assert summary.rejected == 0, Path(run.report_dir, "errors.csv").read_text(encoding="utf-8")
        assert summary.created == spec.beneficiaries
        total += summary.created
    assert total == 1500 == Beneficiary.objects.count()
    assert Insurer.objects.count() == 3


@pytest.mark.django_db
def test_generate_command_inserts(capsys):
    call_command("generate", beneficiaries=300, seed=3)
    assert Beneficiary.objects.count() == 300
    assert Insurer.objects.count() == 3
    assert Product.objects.count() == 3 * len(synthetic.PRODUCT_LEVELS)
    assert Professional.objects.count() >= 20
    assert all(p.iban_cipher and p.iban_index for p in Professional.objects.all())
    assert "300 beneficiaries" in capsys.readouterr().out
    state, professionals = registry_state(), Professional.objects.count()

    call_command("generate", beneficiaries=300, seed=3)  # the same again changes nothing
    assert registry_state() == state
    assert Professional.objects.count() == professionals


@pytest.mark.django_db
def test_generate_rights_files_inserts_nothing(tmp_path, capsys):
    out = tmp_path / "files"
    call_command("generate", "--beneficiaries", "400", "--seed", "2", "--rights-files", str(out))
    rights = sorted(out.glob("rights-*.csv"))
    assert len(rights) == 3
    assert len(sorted(out.glob("products-*.csv"))) == 3
    assert sum(len(read_rights(p)) for p in rights) == 400
    assert not Insurer.objects.exists()
    assert not Beneficiary.objects.exists()
    assert not Professional.objects.exists()
    assert str(out) in capsys.readouterr().out
