"""Shared test fixtures: a synthetic insurer with products, and a writer of rights files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.models import Insurer
from rempart.registry.products_import import import_products

TODAY = dt.date(2026, 11, 25)


@pytest.fixture
def insurer(db, tmp_path) -> Insurer:
    spec = synthetic.plan_insurers(seed=99, beneficiaries=3000)[0]
    insurer = Insurer.objects.create(
        amc_number=spec.amc_number, name=spec.name, kind=spec.kind, dpo_email=spec.dpo_email
    )
    products = tmp_path / "products.csv"
    products.write_text(synthetic.products_file_text(insurer.amc_number), encoding="utf-8")
    assert not import_products(products, insurer).errors
    return insurer


@pytest.fixture
def rows_for(insurer):
    """Valid synthetic rows (lists of fields) for the insurer."""

    def make(count: int, seed: int = 5) -> list[list[str]]:
        spec = synthetic.InsurerSpec(0, insurer.amc_number, insurer.name, insurer.kind, "", count)
        return list(synthetic.beneficiary_rows(spec, seed, TODAY))

    return make


@pytest.fixture
def rights_file(tmp_path, insurer):
    """Write rows into a rights file (format v1) and return its path."""
    counter = iter(range(10_000))

    def write(rows: list[list[str]], *, trailer: int | None = None, amc: str | None = None) -> Path:
        path = tmp_path / f"rights-{next(counter)}.csv"
        lines = [fmt.magic_line(amc or insurer.amc_number), fmt.header_line()]
        lines += [";".join(row) for row in rows]
        lines.append(fmt.trailer_line(len(rows) if trailer is None else trailer))
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def cast(db):
    from rempart.testing import build_cast

    return build_cast()


@pytest.fixture
def client_class():
    """Make more browsers (each with its own cookies and address)."""
    from django.test import Client

    return Client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2id is the production hasher (tested in accounts/tests/test_admin_and_factors.py); tests need speed."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _jobs_run_after_commit(settings, tmp_path):
    """No worker process runs beside the tests: a job runs in the process that committed it (browser tests,
    transactional tests). In ordinary tests nothing commits, so jobs wait until the test runs them
    (``rempart.jobs.inline.run_waiting``), as a worker would."""
    settings.REMPART_JOBS_EAGER = True
    settings.REMPART_JOBS_DIR = str(tmp_path / "jobs")


@pytest.fixture(autouse=True)
def _own_ledger_anchor_dir(settings, tmp_path):
    """Each test's signed ledger anchors in its own directory: anchors of another database would not match."""
    settings.REMPART_LEDGER_ANCHOR_DIR = str(tmp_path / "ledger-anchors")
    settings.REMPART_LEDGER_ARCHIVE_DIR = str(tmp_path / "ledger-archive")  # never the real archive


@pytest.fixture(autouse=True)
def _default_language():
    """A page asked in English leaves English active in the process: each test starts in French again."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """Per-process caches (kill switches, canary tags, alert memo, baselines) must not leak from one test to the next."""
    from rempart.accounts import tokens
    from rempart.gate import core as gate_core
    from rempart.ledger import fast_append
    from rempart.surveillance import canaries, clientele, responses, switches
    from rempart.surveillance.engine import baselines

    fast_append.forget()  # the connection's chain head and ids: each test's first row goes the transactional way
    switches.forget()
    canaries.forget()
    clientele.forget()
    baselines.forget()
    gate_core.forget()
    tokens.forget_recent()  # tokens accepted in the last second (their standing then read with the lookup)
    responses._recent_alerts.clear()
    yield
    tokens.forget_recent()
    switches.forget()
    canaries.forget()
    clientele.forget()


@pytest.fixture(autouse=True)
def _empty_money_ledger_after_transactional_tests(request):
    """SQLite: Django empties tables with DELETE after a transactional test, which the money ledger's append-only
    triggers refuse. Wipe it first, as an administrator would (PostgreSQL's TRUNCATE needs nothing)."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or (
        marker is not None and marker.kwargs.get("transaction")
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so this teardown runs before its flush
    yield
    from django.db import connection

    if connection.vendor == "sqlite":
        from rempart.accounting.testing import wipe_ledger

        wipe_ledger()
