"""An insurer's data team loads rights files from the portal and reads the result; other organisations cannot."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.models import Beneficiary, ImportRun
from rempart.testing import login


@pytest.fixture
def loaded_insurer(cast, tmp_path):
    from rempart.registry.products_import import import_products

    insurer = cast.insurer.insurer
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text(insurer.amc_number), encoding="utf-8")
    import_products(path, insurer)
    return insurer


def _file(insurer, count=20, bad_line=None):
    spec = synthetic.InsurerSpec(0, insurer.amc_number, insurer.name, insurer.kind, "", count)
    rows = list(synthetic.beneficiary_rows(spec, 3, dt.date(2026, 11, 25)))
    if bad_line is not None:
        rows[bad_line][11] = "1980-02-30"
    lines = [
        fmt.magic_line(insurer.amc_number),
        fmt.header_line(),
        *(";".join(r) for r in rows),
        fmt.trailer_line(len(rows)),
    ]
    return SimpleUploadedFile("droits.csv", ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def test_insurer_member_uploads_a_file_and_downloads_the_rejected_rows(client, cast, loaded_insurer):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    response = client.post(
        "/assureur/imports/charger/", {"file": _file(loaded_insurer, bad_line=4), "mode": "delta"}
    )
    run = ImportRun.objects.get(insurer=loaded_insurer)
    assert response.status_code == 302 and response.url == f"/assureur/imports/{run.pk}/"
    assert run.counts["created"] == 19 and run.counts["rejected"] == 1
    assert Beneficiary.objects.filter(contract__insurer=loaded_insurer).count() == 19
    detail = client.get(response.url).content.decode()
    assert "rejetées" in detail.lower()
    errors = b"".join(client.get(f"/assureur/imports/{run.pk}/rejets.csv").streaming_content).decode()
    assert errors.splitlines()[1] == "7;birth_date;impossible day"


def test_dry_run_from_the_portal_changes_nothing(client, cast, loaded_insurer):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    client.post(
        "/assureur/imports/charger/", {"file": _file(loaded_insurer), "mode": "delta", "dry_run": "on"}
    )
    assert ImportRun.objects.get().status == ImportRun.Status.DRY_RUN
    assert not Beneficiary.objects.exists()


def test_a_refused_file_says_why_and_changes_nothing(client, cast, loaded_insurer):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    bad = SimpleUploadedFile("x.csv", b"not;a;rights;file\n")
    response = client.post("/assureur/imports/charger/", {"file": bad, "mode": "full"}, follow=True)
    assert "refusé" in response.content.decode()
    assert not Beneficiary.objects.exists()


def test_other_organisations_reach_no_import(client, cast, loaded_insurer):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    client.post("/assureur/imports/charger/", {"file": _file(loaded_insurer), "mode": "delta"})
    run = ImportRun.objects.get()
    client.post("/accounts/logout/")
    login(client, cast.owner, cast.secrets[cast.owner.email])
    for url in [
        "/assureur/imports/",
        f"/assureur/imports/{run.pk}/",
        f"/assureur/imports/{run.pk}/rejets.csv",
    ]:
        assert client.get(url).status_code == 404, url
