"""An insurer's data team loads rights and products files from the portal and reads the result, in French or
English; the portal offers what the command line offers (dry run past the threshold, force with a fresh second
factor); other organisations reach none of it."""

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponseRedirect

from rempart.accounts.models import SecurityEvent
from rempart.accounts.tests.helpers import age_second_factor
from rempart.jobs.inline import run_waiting
from rempart.jobs.models import Job
from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.import_messages import FILE_MESSAGES, ROW_MESSAGES
from rempart.registry.models import Beneficiary, Contract, ImportRun
from rempart.registry.tests.support import registry_state
from rempart.testing import login

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
CODES = set(ROW_MESSAGES) | set(FILE_MESSAGES)


@pytest.fixture
def loaded_insurer(cast, tmp_path):
    from rempart.registry.products_import import import_products

    insurer = cast.insurer.insurer
    path = tmp_path / "products.csv"
    path.write_text(synthetic.products_file_text(insurer.amc_number), encoding="utf-8")
    import_products(path, insurer)
    return insurer


@pytest.fixture
def member(client, cast, loaded_insurer):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    return client


def _rows(insurer, count=20):
    spec = synthetic.InsurerSpec(0, insurer.amc_number, insurer.name, insurer.kind, "", count)
    return list(synthetic.beneficiary_rows(spec, 3, dt.date(2026, 11, 25)))


def _file(insurer, count=20, bad_lines=(), rows=None, name="droits.csv"):
    rows = [list(r) for r in (rows if rows is not None else _rows(insurer, count))]
    for bad in bad_lines:
        rows[bad][11] = "1980-02-30"
    lines = [
        fmt.magic_line(insurer.amc_number),
        fmt.header_line(),
        *(";".join(r) for r in rows),
        fmt.trailer_line(len(rows)),
    ]
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def _upload(client, url, data, follow=False, **extra):
    """Post an upload as the browser does, then run its job like a worker and go where the job page links.

    The upload answers with the job's page; what used to be the response (the run's page) is its result link.
    """
    response = client.post(url, data, **extra)
    if response.status_code != 302 or not response.url.startswith("/taches/"):
        return client.get(response.url, **extra) if follow and response.status_code == 302 else response
    job = Job.objects.get(pk=response.url.split("/")[2])
    assert job.status == "queued"  # nothing imported in the request
    run_waiting()
    job.refresh_from_db()
    assert job.status == "succeeded", (job.status, job.error_code if hasattr(job, "error_code") else "")
    assert client.get(response.url).status_code == 200
    assert not list((Path(settings.REMPART_JOBS_DIR) / "uploads").glob("*"))  # the saved file is gone
    if follow:
        return client.get(job.result["url"], **extra)
    return HttpResponseRedirect(job.result["url"])


def _text(response) -> str:
    return response.content.decode()


def _visible(html: str) -> str:
    """The page's text as read (tags, attributes and scripts left out)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def _assert_no_raw_code(html: str) -> None:
    words = set(re.findall(r"[a-z_]+", _visible(html)))
    leaked = {code for code in CODES if "_" in code and code in words}
    assert not leaked, leaked
    for raw in ("rate_limited", "dry_run", "pec_amounts"):
        assert raw not in _visible(html)


def _open_contracts(insurer) -> int:
    return Contract.objects.filter(insurer=insurer).exclude(status="terminated").count()


# ---------------------------------------------------------------------------------------------- rights files


def test_rejected_rows_shown_on_the_page_and_in_the_csv_in_the_readers_language(member, loaded_insurer):
    response = _upload(
        member, "/assureur/imports/charger/", {"file": _file(loaded_insurer, bad_lines=[4]), "mode": "delta"}
    )
    run = ImportRun.objects.get(insurer=loaded_insurer)
    assert response.status_code == 302 and response.url == f"/assureur/imports/{run.pk}/"
    assert run.counts["created"] == 19 and run.counts["rejected"] == 1
    assert run.file_name == "droits.csv"
    assert Beneficiary.objects.filter(contract__insurer=loaded_insurer).count() == 19
    detail = _text(member.get(response.url))
    assert "Lignes rejetées" in detail and "jour impossible" in detail and "birth_date" in detail
    _assert_no_raw_code(detail)
    english = _text(member.get(response.url, **EN))
    assert "Rejected rows" in english and "impossible day" in english and "jour impossible" not in english
    csv_fr = b"".join(member.get(f"/assureur/imports/{run.pk}/rejets.csv").streaming_content).decode()
    assert csv_fr.splitlines() == ["ligne;colonne;motif", "7;birth_date;jour impossible"]
    csv_en = b"".join(member.get(f"/assureur/imports/{run.pk}/rejets.csv", **EN).streaming_content).decode()
    assert csv_en.splitlines() == ["line;column;reason", "7;birth_date;impossible day"]


def test_runs_are_listed_under_the_uploaded_name_and_say_they_have_rejected_rows(member, loaded_insurer):
    _upload(
        member,
        "/assureur/imports/charger/",
        {"file": _file(loaded_insurer, bad_lines=[1, 2]), "mode": "delta"},
    )
    _upload(
        member,
        "/assureur/imports/charger/",
        {"file": SimpleUploadedFile("mauvais.csv", b"x;y\n"), "mode": "delta"},
    )
    page = _text(member.get("/assureur/imports/"))
    assert "droits.csv" in page and "mauvais.csv" in page
    assert "2 lignes rejetées" in page
    assert "/uploads/" not in page and not re.search(r"rights-\w{6,}\.csv", page)  # never the temporary name
    _assert_no_raw_code(page)
    assert ">delta<" not in page and ">full<" not in page  # the mode's label, not its code
    assert "Delta" in page
    assert "2 rejected rows" in _text(member.get("/assureur/imports/", **EN))


def test_a_refused_file_says_why_in_the_readers_language_and_changes_nothing(member, loaded_insurer):
    bad = SimpleUploadedFile("x.csv", b"not;a;rights;file\n")
    response = _upload(member, "/assureur/imports/charger/", {"file": bad, "mode": "full"}, follow=True)
    page = _text(response)
    assert "refusé" in page and "ce n&#x27;est pas un fichier de droits" in page
    run = ImportRun.objects.get()
    assert run.status == "refused" and run.file_name == "x.csv"
    assert run.notes == [
        {"code": "not_rights_file", "expected": f"#rempart-rights;1;{loaded_insurer.amc_number}"}
    ]
    assert "line 1: not a rights file" in _text(member.get(f"/assureur/imports/{run.pk}/", **EN))
    assert not Beneficiary.objects.exists()


def test_an_older_run_stored_as_an_english_sentence_is_shown_as_it_is(member, loaded_insurer, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "errors.csv").write_text(
        "line;column;reason\n5;nir;wrong check key\n", encoding="utf-8"
    )
    run = ImportRun.objects.create(
        insurer=loaded_insurer, file_name="ancien.csv", status="succeeded", message="3 rejected row(s) have no "
        "readable adherent number", counts={"rows_read": 9, "rejected": 1}, report_dir=str(tmp_path / "old"),
    )  # fmt: skip
    page = _text(member.get(f"/assureur/imports/{run.pk}/"))
    assert "3 rejected row(s) have no readable adherent number" in page and "wrong check key" in page
    csv_text = b"".join(member.get(f"/assureur/imports/{run.pk}/rejets.csv").streaming_content).decode()
    assert csv_text.splitlines()[1] == "5;nir;wrong check key"


def test_dry_run_from_the_portal_changes_nothing(member, loaded_insurer):
    _upload(
        member,
        "/assureur/imports/charger/",
        {"file": _file(loaded_insurer), "mode": "delta", "dry_run": "on"},
    )
    assert ImportRun.objects.get().status == ImportRun.Status.DRY_RUN
    assert not Beneficiary.objects.exists()


def _loaded_then_half(member, insurer):
    rows = _rows(insurer, 40)
    _upload(member, "/assureur/imports/charger/", {"file": _file(insurer, rows=rows), "mode": "delta"})
    kept = {rows[0][1]}
    return [r for r in rows if r[1] in kept]


def test_a_dry_run_above_the_threshold_says_what_it_would_do(member, loaded_insurer):
    half = _loaded_then_half(member, loaded_insurer)
    before, open_before = registry_state(), _open_contracts(loaded_insurer)
    response = _upload(
        member,
        "/assureur/imports/charger/",
        {"file": _file(loaded_insurer, rows=half), "mode": "full", "dry_run": "on"},
    )
    run = ImportRun.objects.order_by("-pk").first()
    assert response.url == f"/assureur/imports/{run.pk}/"
    assert run.status == "dry_run" and run.counts["above_threshold"] is True
    assert run.counts["contracts_ended"] == open_before - 1  # what it would end
    assert run.notes[0]["code"] == "above_threshold_dry_run"
    assert registry_state() == before
    page = _text(member.get(response.url))
    assert "au-delà du seuil de sécurité" in page and "Forcer" in page
    _assert_no_raw_code(page)


def test_above_the_threshold_without_force_is_refused(member, loaded_insurer):
    half = _loaded_then_half(member, loaded_insurer)
    before = registry_state()
    _upload(member, "/assureur/imports/charger/", {"file": _file(loaded_insurer, rows=half), "mode": "full"})
    run = ImportRun.objects.order_by("-pk").first()
    assert run.status == "refused" and run.notes[0]["code"] == "above_threshold"
    assert registry_state() == before


def test_force_needs_the_confirmation_and_full_mode(member, loaded_insurer):
    half = _loaded_then_half(member, loaded_insurer)
    before, runs = registry_state(), ImportRun.objects.count()
    for posted in (
        {"mode": "full", "force": "on"},  # no confirmation
        {"mode": "delta", "force": "on", "confirm_force": "on"},
        {"mode": "full", "force": "on", "confirm_force": "on", "dry_run": "on"},
    ):
        response = member.post(
            "/assureur/imports/charger/", {"file": _file(loaded_insurer, rows=half), **posted}
        )
        assert response.status_code == 400, posted
    assert registry_state() == before and ImportRun.objects.count() == runs


def test_force_without_a_fresh_second_factor_loads_nothing(member, loaded_insurer):
    half = _loaded_then_half(member, loaded_insurer)
    before, runs = registry_state(), ImportRun.objects.count()
    age_second_factor(member, 3600)
    response = _upload(
        member,
        "/assureur/imports/charger/",
        {"file": _file(loaded_insurer, rows=half), "mode": "full", "force": "on", "confirm_force": "on"},
        HTTP_REFERER="/assureur/imports/",
    )
    assert response.status_code == 302 and "reauthenticate" in response.url
    assert registry_state() == before and ImportRun.objects.count() == runs
    assert not SecurityEvent.objects.filter(tag="registry.import_forced").exists()


def test_force_with_a_fresh_second_factor_ends_the_absent_contracts_and_is_recorded(member, loaded_insurer):
    half = _loaded_then_half(member, loaded_insurer)
    open_before = _open_contracts(loaded_insurer)
    response = _upload(
        member,
        "/assureur/imports/charger/",
        {"file": _file(loaded_insurer, rows=half), "mode": "full", "force": "on", "confirm_force": "on"},
    )
    run = ImportRun.objects.order_by("-pk").first()
    assert response.url == f"/assureur/imports/{run.pk}/"
    assert run.status == "succeeded" and run.counts["contracts_ended"] == open_before - 1
    assert _open_contracts(loaded_insurer) == 1
    assert run.notes == [{"code": "forced"}]
    assert SecurityEvent.objects.filter(tag="registry.import_forced").count() == 1
    assert "forcé" in _text(member.get(response.url))


def test_rejected_rows_are_paginated_on_the_page(member, loaded_insurer):
    _upload(
        member,
        "/assureur/imports/charger/",
        {"file": _file(loaded_insurer, 60, bad_lines=range(55)), "mode": "delta"},
    )
    run = ImportRun.objects.get()
    assert run.counts["rejected"] == 55
    first = _text(member.get(f"/assureur/imports/{run.pk}/"))
    assert first.count("jour impossible") == 50 and "page 1 sur 2" in first
    second = _text(member.get(f"/assureur/imports/{run.pk}/?page=2"))
    assert second.count("jour impossible") == 5 and "page 2 sur 2" in second
    assert _text(member.get(f"/assureur/imports/{run.pk}/?page=x")).count("jour impossible") == 50


def test_a_malformed_upload_is_a_form_error(member, loaded_insurer):
    response = _upload(member, "/assureur/imports/charger/", {"mode": "delta"})
    assert response.status_code == 400 and not ImportRun.objects.exists()


# ---------------------------------------------------------------------------------------------- products files


def _products(insurer, extra_rows=()):
    text = synthetic.products_file_text(insurer.amc_number)
    lines = text.strip().splitlines()
    body, trailer = lines[:-1], lines[-1]
    body += list(extra_rows)
    count = len(body) - 2
    return "\n".join([*body, f"#end;{count}"]) + "\n", trailer


def test_products_file_from_the_portal(member, loaded_insurer):
    text, _trailer = _products(loaded_insurer, ["NOUVEAU;Nouvelle offre;O;PHAR;2026-01-01;100;100;;N;;"])
    response = _upload(
        member,
        "/assureur/imports/produits/",
        {"products-file": SimpleUploadedFile("produits.csv", text.encode())},
    )
    run = ImportRun.objects.get(kind="products")
    assert response.url == f"/assureur/imports/{run.pk}/"
    assert run.status == "succeeded" and run.file_name == "produits.csv"
    assert run.counts["products_created"] == 1 and run.counts["rejected"] == 0
    assert loaded_insurer.products.filter(code="NOUVEAU").exists()
    page = _text(member.get(response.url))
    assert "Produits créés" in page and "produits.csv" in page
    _assert_no_raw_code(page)


def test_products_file_with_bad_rows_shows_them_and_a_dry_run_changes_nothing(member, loaded_insurer):
    text, _trailer = _products(loaded_insurer, ["BAD;Offre;peut-être;PHAR;2026-01-01;100;100;;N;;"])
    upload = SimpleUploadedFile("produits.csv", text.encode())
    before = registry_state()
    _upload(member, "/assureur/imports/produits/", {"products-file": upload, "products-dry_run": "on"})
    run = ImportRun.objects.get(kind="products")
    assert run.status == "dry_run" and run.counts["rejected"] == 1
    assert registry_state() == before
    page = _text(member.get(f"/assureur/imports/{run.pk}/"))
    assert "O ou N attendu" in page and "responsible" in page
    assert "O or N expected" in _text(member.get(f"/assureur/imports/{run.pk}/", **EN))


def test_a_refused_products_file_is_recorded_and_changes_nothing(member, loaded_insurer):
    before = registry_state()
    response = _upload(
        member,
        "/assureur/imports/produits/",
        {"products-file": SimpleUploadedFile("p.csv", b"#rempart-products;1;999999999\n")},
        follow=True,
    )
    run = ImportRun.objects.get(kind="products")
    assert run.status == "refused" and run.notes == [{"code": "other_insurer"}]
    assert "autre assureur" in _text(response)
    assert registry_state() == before


# ---------------------------------------------------------------------------------------------- state, access


def test_the_registry_state_in_counts(member, loaded_insurer):
    from rempart.surveillance.models import Canary

    _upload(
        member, "/assureur/imports/charger/", {"file": _file(loaded_insurer, bad_lines=[3]), "mode": "delta"}
    )
    for _ in range(3):
        Canary.objects.create(insurer=loaded_insurer, tag=os.urandom(32), sealed_card=b"sealed")
    Canary.objects.create(
        insurer=loaded_insurer, tag=os.urandom(32), sealed_card=b"x", retired_at=dt.datetime.now(dt.UTC)
    )
    page = _text(member.get("/assureur/registre/"))
    contracts = Contract.objects.filter(insurer=loaded_insurer)
    assert f"<td><strong>{contracts.count()}</strong></td>" in page
    assert "3 canaris implantés" in page
    assert "droits.csv" in page and "1 ligne rejetée" in page
    for beneficiary in Beneficiary.objects.filter(contract__insurer=loaded_insurer)[:5]:
        assert beneficiary.contract.adherent_number not in page
    english = _text(member.get("/assureur/registre/", **EN))
    assert "Registry state" in english and "3 canaries planted" in english


def test_other_organisations_reach_no_import(client, cast, loaded_insurer):
    login(client, cast.insurer_member, cast.secrets[cast.insurer_member.email])
    job_page = client.post(
        "/assureur/imports/charger/", {"file": _file(loaded_insurer, bad_lines=[1]), "mode": "delta"}
    ).url
    run_waiting()
    run = ImportRun.objects.get()
    client.post("/accounts/logout/")
    login(client, cast.owner, cast.secrets[cast.owner.email])
    assert client.get(job_page).status_code == 404  # another organisation's job
    for url in [
        "/assureur/imports/",
        f"/assureur/imports/{run.pk}/",
        f"/assureur/imports/{run.pk}/rejets.csv",
        "/assureur/registre/",
    ]:
        assert client.get(url).status_code == 404, url
    for url in ("/assureur/imports/charger/", "/assureur/imports/produits/"):
        assert client.post(url, {"mode": "delta"}).status_code == 404, url
    assert Path(run.report_dir).exists()
