from pathlib import Path

import pytest

from rempart.conftest import TODAY
from rempart.registry.models import Beneficiary, Contract, ImportRun
from rempart.registry.rights_import import FileRefused, import_rights


def run_import(path, insurer, tmp_path, **kwargs):
    kwargs.setdefault("today", TODAY)
    return import_rights(path, insurer, report_dir=tmp_path / "report", show_progress=False, **kwargs)


def test_good_file_imports_every_row(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(50)
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert run.status == ImportRun.Status.SUCCEEDED
    assert (summary.rows_read, summary.created, summary.rejected) == (50, 50, 0)
    assert Beneficiary.objects.filter(contract__insurer=insurer).count() == 50


def test_reimporting_the_same_file_changes_nothing(insurer, rows_for, rights_file, tmp_path):
    path = rights_file(rows_for(40))
    run_import(path, insurer, tmp_path)
    before = list(Beneficiary.objects.order_by("pk").values_list("pk", "nir_cipher"))
    _run, summary = run_import(path, insurer, tmp_path)
    assert (summary.created, summary.updated, summary.unchanged) == (0, 0, 40)
    after = list(Beneficiary.objects.order_by("pk").values_list("pk", "nir_cipher"))
    assert [(pk, bytes(c) if c else None) for pk, c in before] == [
        (pk, bytes(c) if c else None) for pk, c in after
    ]


def test_bad_rows_are_reported_and_good_rows_imported(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(10)
    rows[2][13] = "185077512345600"  # wrong NIR key (the right one is 59)
    rows[5][11] = "1980-13-01"  # impossible month
    run, summary = run_import(rights_file(rows), insurer, tmp_path)
    assert summary.rejected == 2
    assert summary.created == 8
    report = (Path(run.report_dir) / "errors.csv").read_text().splitlines()
    # The reason in the import's language (French by default), then its code and parameters.
    assert report[1:] == [
        "5;nir;clé incorrecte;nir_checksum;{}",
        "8;birth_date;mois impossible;month_impossible;{}",
    ]


def test_truncated_file_is_refused_and_changes_nothing(insurer, rows_for, rights_file, tmp_path):
    path = rights_file(rows_for(20), trailer=25)
    with pytest.raises(FileRefused, match="truncated"):
        run_import(path, insurer, tmp_path)
    assert not Contract.objects.exists()
    assert ImportRun.objects.get().status == ImportRun.Status.REFUSED
