# ruff: noqa: F811  (the fixtures are shared with test_insurer_portal)
"""Portal uploads go through a job: nothing is imported in the request, the job page shows progress and
links to the run, a transient error is retried without doubling anything, the saved file goes away."""

from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError

from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.registry import jobs as registry_jobs
from rempart.registry.models import Beneficiary, ImportRun
from rempart.registry.tests.test_insurer_portal import _file, loaded_insurer, member  # noqa: F401


def _uploads() -> list[Path]:
    return list((Path(settings.REMPART_JOBS_DIR) / "uploads").glob("*"))


def _post(member, insurer, **data):
    response = member.post("/assureur/imports/charger/", {"file": _file(insurer), "mode": "delta", **data})
    assert response.status_code == 302 and response.url.startswith("/taches/")
    return Job.objects.get(pk=response.url.split("/")[2]), response.url


def test_the_request_only_queues_and_the_imports_page_lists_the_waiting_upload(member, loaded_insurer):
    job, page = _post(member, loaded_insurer)
    assert not Beneficiary.objects.exists() and not ImportRun.objects.filter(kind="rights").exists()
    assert job.organisation_id is not None and job.params["file_name"] == "droits.csv"
    saved = _uploads()
    assert len(saved) == 1 and saved[0].stat().st_mode & 0o777 == 0o600
    listing = member.get("/assureur/imports/").content.decode()
    assert f'href="{page}"' in listing
    run_waiting()
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["url"].startswith("/assureur/imports/")
    assert Beneficiary.objects.exists() and not _uploads()
    assert f'href="{page}"' not in member.get("/assureur/imports/").content.decode()
    assert job.result["url"] in member.get(page).content.decode()


def test_progress_is_fed_from_the_reader_and_reaches_the_file_size(loaded_insurer, tmp_path):
    uploaded = _file(loaded_insurer)
    name = registry_jobs.save_upload(uploaded, "rights-")
    size = (Path(settings.REMPART_JOBS_DIR) / "uploads" / name).stat().st_size
    ctx = mock.Mock(job_id="00000000-0000-0000-0000-000000000000", attempt=1)
    result = registry_jobs.import_rights_upload(ctx, upload=name, insurer_id=loaded_insurer.pk, mode="delta")
    calls = [c.args for c in ctx.progress.call_args_list]
    assert calls and calls[-1][0] == size and calls[-1][1] == size
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:], strict=False))  # never backwards
    assert result["status"] == "succeeded" and not _uploads()


def test_a_transient_error_is_retried_and_nothing_is_doubled(member, loaded_insurer):
    from rempart.registry import rights_import

    real = rights_import._import_in_transaction
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("database restarted")
        return real(*args, **kwargs)

    job, page = _post(member, loaded_insurer)
    with mock.patch.object(rights_import, "_import_in_transaction", flaky):
        run_waiting()
        job.refresh_from_db()
        assert job.status == "retrying" and len(_uploads()) == 1  # the file is kept for the retry
        first = ImportRun.objects.get(kind="rights")
        assert first.status == "failed"  # rolled back and said so, never left "running"
        assert not Beneficiary.objects.exists()
        Job.objects.filter(pk=job.pk).update(run_after=None)
        run_waiting()
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2
    runs = list(ImportRun.objects.filter(kind="rights").order_by("pk"))
    assert [r.status for r in runs] == ["failed", "succeeded"]
    assert Beneficiary.objects.filter(contract__insurer=loaded_insurer).count() == runs[1].counts["rows_read"]
    assert not _uploads()


def test_a_bad_file_links_to_its_refused_run_and_the_job_page_says_so(member, loaded_insurer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = member.post(
        "/assureur/imports/charger/",
        {"file": SimpleUploadedFile("x.csv", b"not;a;rights;file\n"), "mode": "full"},
    )
    run_waiting()
    job = Job.objects.get()
    run = ImportRun.objects.get(kind="rights")
    assert run.status == "refused" and job.result["refused"] is True
    assert job.result["url"] == f"/assureur/imports/{run.pk}/"
    detail = member.get(job.result["url"]).content.decode()
    assert "pas un fichier de droits" in detail
    assert member.get(response.url).status_code == 200 and not _uploads()


def test_a_saved_name_that_is_not_ours_fails_plainly():
    from rempart.jobs.kinds import JobFailure

    ctx = mock.Mock(job_id="x", attempt=1)
    for name in ("../../etc/passwd", "rights-../x.csv", "other.csv"):
        with pytest.raises(JobFailure):
            registry_jobs.import_rights_upload(ctx, upload=name, insurer_id=1, mode="delta")


def test_products_upload_goes_through_a_job(member, loaded_insurer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from rempart.registry.tests.test_insurer_portal import _products

    text, _trailer = _products(loaded_insurer)
    upload = SimpleUploadedFile("produits.csv", text.encode())
    response = member.post("/assureur/imports/produits/", {"products-file": upload})
    assert response.url.startswith("/taches/")
    run_waiting()
    job = Job.objects.get()
    assert job.kind == "registry.import_products" and job.status == "succeeded"
    assert ImportRun.objects.get(pk=job.result["run"]).kind == "products" and not _uploads()


def test_the_uploaded_name_is_carried_redacted(member, loaded_insurer):
    named = _file(loaded_insurer, name="droits-285057512345623.csv")
    member.post("/assureur/imports/charger/", {"file": named, "mode": "delta"})
    job = Job.objects.get()
    assert "285057512345623" not in str(job.params) and job.params["file_name"] == "droits-[NIR].csv"
    run_waiting()
    assert ImportRun.objects.get(kind="rights").file_name == "droits-[NIR].csv"
