"""NIRs and IBANs never reach the logs, the terminal, the reports or the database in clear."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from rempart.registry import synthetic
from rempart.registry.models import Professional
from rempart.registry.seeding import create_professionals
from rempart.registry.tests.support import ADHERENT, LAST, NIR, OD_NIR, nirs_of

WRONG_KEY_NIR = "185077512345600"


def spellings(value: str) -> set[str]:
    """A value as it could leak: compact, or grouped the way it is printed."""
    forms = {value}
    if len(value) == 15:  # NIR: 1 85 07 75 123 456 59
        forms.add(
            f"{value[0]} {value[1:3]} {value[3:5]} {value[5:7]} {value[7:10]} {value[10:13]} {value[13:]}"
        )
        forms.add(value[:13])  # without its key
    else:  # IBAN in groups of four
        forms.add(" ".join(value[i : i + 4] for i in range(0, len(value), 4)))
    return forms


def database_bytes() -> bytes:
    """Everything the database holds: the SQLite files byte for byte, or every PostgreSQL column as text."""
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        data = b""
        for suffix in ("", "-wal", "-journal"):
            path = Path(f"{name}{suffix}")
            if path.exists():
                data += path.read_bytes()
        return data
    chunks = []
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
               JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
               WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"""
        )
        columns = cursor.fetchall()
        for table, column, kind in columns:
            expression = f"encode(\"{column}\", 'escape')" if kind == "bytea" else f'"{column}"::text'
            cursor.execute(f'SELECT {expression} FROM "{table}" WHERE "{column}" IS NOT NULL')  # noqa: S608
            chunks.extend(value for (value,) in cursor.fetchall())
    return "\n".join(chunks).encode()


def assert_absent(secrets: set[str], where: str, text: str) -> None:
    leaked = sorted(form for secret in secrets for form in spellings(secret) if form in text)
    assert not leaked, f"{len(leaked)} value(s) in clear in {where}"


@pytest.mark.django_db(transaction=True)
def test_no_nir_in_clear_anywhere(insurer, rows_for, rights_file, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    rows = rows_for(300)
    rows[5][NIR] = WRONG_KEY_NIR  # a rejected row: its NIR must not leak through the error report either
    rows[7][OD_NIR] = rows[7][OD_NIR] or WRONG_KEY_NIR[:-2] + "59"
    path = rights_file(rows)
    nirs = nirs_of(rows)
    assert len(nirs) > 250

    sent = []

    def collect(execute, sql, params, many, context):
        """Every statement and parameter sent through Django's cursors, before any log redaction."""
        if many and not isinstance(params, (list, tuple)):
            params = list(params)
        sent.append(f"{sql}\n{params!r}")
        return execute(sql, params, many, context)

    connection.force_debug_cursor = True  # log every SQL statement and its parameters, as DEBUG=True would
    try:
        with connection.execute_wrapper(collect):
            call_command(
                "import_rights", str(path), "--insurer", insurer.amc_number, "--report-dir", str(tmp_path / "r"),
            )  # fmt: skip
            call_command(
                "import_rights", str(path), "--insurer", insurer.amc_number, "--mode", "full", "--dry-run",
                "--report-dir", str(tmp_path / "r2"),
            )  # fmt: skip
    finally:
        connection.force_debug_cursor = False

    # (0) what was sent to the database
    statements = "\n".join(sent)
    assert "registry_beneficiary" in statements  # the wrapper saw the import's statements
    assert_absent(nirs, "the SQL sent to the database", statements)

    # (a) logs, terminal, reports
    assert any(r.name == "django.db.backends" for r in caplog.records), (
        "SQL was not logged: the check is blind"
    )
    logged = "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records) + caplog.text
    assert_absent(nirs, "the logs", logged)
    out, err = capfd.readouterr()
    assert "lignes lues" in out
    assert_absent(nirs, "stdout/stderr", out + err)
    for report in (tmp_path / "r").iterdir():
        assert_absent(nirs, report.name, report.read_text(encoding="utf-8"))

    # (b) the database, byte for byte
    stored = database_bytes()
    assert (
        rows[0][ADHERENT].encode() in stored and rows[0][LAST].encode() in stored
    )  # the check sees the data
    assert_absent(nirs, "the database", stored.decode("latin-1"))


@pytest.mark.django_db(transaction=True)
def test_no_iban_in_clear_anywhere(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    specs = list(synthetic.professionals(seed=7, count=15))
    ibans = {spec.iban for spec in specs}
    connection.force_debug_cursor = True
    try:
        assert create_professionals(7, 15) == 15
        extra = Professional(name="Optique du Port", finess="750000019")
        extra.set_iban("FR7630006000011234567890189")
        extra.save()
    finally:
        connection.force_debug_cursor = False
    ibans.add("FR7630006000011234567890189")

    for professional in Professional.objects.all():
        masked = professional.masked_iban()
        assert masked in {f"{i[:4]} •••• {i[-4:]}" for i in ibans}  # country, key, last 4: nothing more
        assert professional.iban_index
        assert_absent(ibans, "str()", str(professional))

    assert any(r.name == "django.db.backends" for r in caplog.records)
    assert_absent(ibans, "the logs", "\n".join(r.getMessage() for r in caplog.records) + caplog.text)
    out, err = capfd.readouterr()
    assert_absent(ibans, "stdout/stderr", out + err)
    stored = database_bytes()
    assert b"Optique du Port" in stored
    assert_absent(ibans, "the database", stored.decode("latin-1"))
