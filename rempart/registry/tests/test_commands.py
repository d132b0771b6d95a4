"""Management commands: create_insurer, import_products, import_rights (and their errors)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rempart.registry import synthetic
from rempart.registry.models import Beneficiary, Contract, ImportRun, Insurer, Product
from rempart.registry.tests.support import BIRTH, registry_state


def run(*args) -> str:
    """A command's output; the import commands in English (their default is the platform's French)."""
    out = io.StringIO()
    if args[0] in ("import_rights", "import_products"):
        args = (*args, "--language", "en")
    call_command(*args, stdout=out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- create_insurer


@pytest.mark.django_db
def test_create_insurer_creates_then_updates():
    output = run("create_insurer", "--amc", "123456789", "--name", "Mutuelle Test", "--kind", "mutuelle")
    assert output.startswith("Created")
    insurer = Insurer.objects.get(amc_number="123456789")
    assert (insurer.name, insurer.kind, insurer.status) == ("Mutuelle Test", "mutuelle", "active")
    output = run(
        "create_insurer", "--amc", "123456789", "--name", "Mutuelle Renommée", "--kind", "prevoyance",
        "--dpo-name", "Jeanne Martin", "--dpo-email", "dpo@example.org", "--dpo-phone", "0102030405",
    )  # fmt: skip
    assert output.startswith("Updated")
    insurer.refresh_from_db()
    assert (insurer.name, insurer.kind, insurer.dpo_email) == (
        "Mutuelle Renommée",
        "prevoyance",
        "dpo@example.org",
    )
    assert Insurer.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("amc", ["12345678", "1234567890", "12345678A", ""])
def test_create_insurer_rejects_a_bad_amc_number(amc):
    with pytest.raises(CommandError, match="AMC number"):
        call_command("create_insurer", "--amc", amc, "--name", "X", "--kind", "mutuelle")
    assert not Insurer.objects.exists()


@pytest.mark.django_db
def test_create_insurer_rejects_an_unknown_kind():
    with pytest.raises(CommandError):
        call_command("create_insurer", "--amc", "123456789", "--name", "X", "--kind", "banque")
    assert not Insurer.objects.exists()


# ---------------------------------------------------------------------------------------------- import_products


@pytest.mark.django_db
def test_import_products(tmp_path):
    run("create_insurer", "--amc", "123456789", "--name", "Mutuelle Test", "--kind", "mutuelle")
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text("123456789"), encoding="utf-8")
    output = run("import_products", str(path), "--insurer", "123456789")
    assert "products created    3" in output
    assert Product.objects.filter(insurer__amc_number="123456789").count() == 3
    output = run("import_products", str(path), "--insurer", "123456789")
    assert "products created    0" in output


@pytest.mark.django_db
def test_import_products_unknown_insurer(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text("123456789"), encoding="utf-8")
    with pytest.raises(CommandError, match="no insurer with AMC number '123456789'"):
        call_command("import_products", str(path), "--insurer", "123456789")


def test_import_products_refused_file(insurer, tmp_path):
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text("999999999"), encoding="utf-8")
    before = registry_state()
    with pytest.raises(CommandError, match="file refused, nothing was changed: .*another insurer"):
        call_command("import_products", str(path), "--insurer", insurer.amc_number, "--language", "en")
    assert registry_state() == before


def test_import_products_missing_file(insurer, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_products", str(tmp_path / "nope.csv"), "--insurer", insurer.amc_number)


# ---------------------------------------------------------------------------------------------- import_rights


def test_import_rights(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(20)
    rows[3][BIRTH] = "1980-13-01"
    path = rights_file(rows)
    output = run(
        "import_rights", str(path), "--insurer", insurer.amc_number, "--report-dir", str(tmp_path / "r")
    )
    assert "rows read" in output and "19" in output
    assert f"Rejected rows: {tmp_path / 'r' / 'errors.csv'}" in output
    assert f"Report: {tmp_path / 'r' / 'summary.txt'}" in output
    assert (tmp_path / "r" / "errors.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "6;birth_date;impossible month;month_impossible;{}"
    ]
    summary = (tmp_path / "r" / "summary.txt").read_text(encoding="utf-8")
    assert "succeeded" in summary and "rejected" in summary
    assert Beneficiary.objects.count() == 19
    run_ = ImportRun.objects.get()
    assert (run_.status, run_.mode, run_.counts["created"], run_.counts["rejected"]) == (
        "succeeded",
        "delta",
        19,
        1,
    )


def test_import_rights_default_report_dir_is_under_var(insurer, rows_for, rights_file, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    output = run("import_rights", str(rights_file(rows_for(3))), "--insurer", insurer.amc_number)
    run_ = ImportRun.objects.get()
    assert Path(run_.report_dir).parent == tmp_path / "var" / "imports"
    assert (Path(run_.report_dir) / "summary.txt").exists()
    assert str(Path(run_.report_dir) / "summary.txt") in output


def test_import_rights_dry_run_and_full_mode(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(60)
    path = rights_file(rows)
    output = run(
        "import_rights",
        str(path),
        "--insurer",
        insurer.amc_number,
        "--dry-run",
        "--report-dir",
        str(tmp_path / "d"),
    )
    assert "DRY RUN" in output
    assert not Contract.objects.exists()
    assert ImportRun.objects.get().status == "dry_run"
    run("import_rights", str(path), "--insurer", insurer.amc_number, "--report-dir", str(tmp_path / "a"))
    half = rights_file(rows[:20])
    with pytest.raises(CommandError, match="file refused, nothing was changed: .*--force"):
        call_command(
            "import_rights",
            "--language",
            "en",
            str(half),
            "--insurer",
            insurer.amc_number,
            "--mode",
            "full",
            "--report-dir",
            str(tmp_path / "b"),
        )
    assert (
        not Contract.objects.filter(status="terminated")
        .exclude(adherent_number__in={row[1] for row in rows if row[5] == "terminated"})
        .exists()
    )
    output = run(
        "import_rights", str(half), "--insurer", insurer.amc_number, "--mode", "full", "--force",
        "--report-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert "contracts ended" in output
    assert ImportRun.objects.order_by("-pk").first().mode == "full"
    assert Contract.objects.filter(status="terminated").count() > 1


def test_import_rights_unknown_insurer(db, tmp_path):
    path = tmp_path / "rights.csv"
    path.write_text("#rempart-rights;1;123456789\n", encoding="utf-8")
    with pytest.raises(CommandError, match="no insurer with AMC number '123456789'"):
        call_command("import_rights", str(path), "--insurer", "123456789")
    assert not ImportRun.objects.exists()


def test_import_rights_missing_file(insurer, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_rights", str(tmp_path / "nope.csv"), "--insurer", insurer.amc_number)
    assert not ImportRun.objects.exists()


def test_import_rights_refused_file(insurer, rows_for, rights_file, tmp_path):
    path = rights_file(rows_for(10), trailer=9)
    with pytest.raises(CommandError, match="file refused, nothing was changed: truncated"):
        call_command(
            "import_rights",
            "--language",
            "en",
            str(path),
            "--insurer",
            insurer.amc_number,
            "--report-dir",
            str(tmp_path / "r"),
        )
    assert not Contract.objects.exists()
    assert ImportRun.objects.get().status == "refused"
    assert "truncated" in (tmp_path / "r" / "summary.txt").read_text(encoding="utf-8")


def test_import_rights_rejects_an_unknown_mode(insurer, rows_for, rights_file):
    with pytest.raises(CommandError):
        call_command(
            "import_rights",
            "--language",
            "en",
            str(rights_file(rows_for(2))),
            "--insurer",
            insurer.amc_number,
            "--mode",
            "partial",
        )
    assert not ImportRun.objects.exists()


def test_generate_rejects_zero_beneficiaries(db):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("generate", beneficiaries=0)


def test_import_commands_speak_french_by_default(insurer, rows_for, rights_file, tmp_path):
    """The platform's language unless --language says otherwise: output, refusal and the reasons of errors.csv."""
    rows = rows_for(5)
    rows[1][BIRTH] = "1980-13-01"
    out = io.StringIO()
    call_command("import_rights", str(rights_file(rows)), "--insurer", insurer.amc_number,
                 "--report-dir", str(tmp_path / "fr"), stdout=out)  # fmt: skip
    assert "lignes lues" in out.getvalue() and "Lignes rejetées" in out.getvalue()
    assert (tmp_path / "fr" / "errors.csv").read_text(encoding="utf-8").splitlines()[1] == (
        "4;birth_date;mois impossible;month_impossible;{}"
    )
    with pytest.raises(CommandError, match="fichier refusé, rien n'a été modifié : fichier tronqué"):
        call_command("import_rights", str(rights_file(rows, trailer=9)), "--insurer", insurer.amc_number)
