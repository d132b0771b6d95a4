"""deploy/postgres/roles.sql on a real database: the app role appends to the ledger and cannot change it.

A fresh database and three roles with names unique to this run are created, roles.sql is applied, the schema is
migrated *as the owner role* (a real `rempart migrate`), then the application runs *as the app role*: the demo set-up,
a rights check through the gate (one more ledger row) and `rempart ledger verify`. Every refusal below is checked to
be PostgreSQL's privilege error (42501), not the ledger's trigger: the grants hold even where a trigger would not
(TRUNCATE fires no row trigger). Everything is dropped at the end.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import errors

ROOT = Path(__file__).resolve().parents[3]
ROLES_SQL = ROOT / "deploy" / "postgres" / "roles.sql"

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.slow,
    pytest.mark.skipif(
        "postgresql" not in settings.DATABASES["default"]["ENGINE"], reason="PostgreSQL roles need PostgreSQL"
    ),
]

# The demo's card (rempart/accounts/demo.py): covered in optics.
DEMO_CARD = (
    "amc_number='391689460', adherent_number='DEMO-0001', nir='285057512345623', "
    "birth_date='1985-05-12', domain='OPTI'"
)


def roles_sql(names: dict[str, str]) -> str:
    """roles.sql with this run's role names, without psql's backslash commands (psycopg runs it)."""
    text = ROLES_SQL.read_text()
    text = re.sub(r"\brempart_(owner|app|readonly)\b", lambda m: names[m.group(1)], text)
    return "\n".join(line for line in text.splitlines() if not line.startswith("\\"))


class Cluster:
    """The test run's PostgreSQL server, a scratch database on it, and connections as each role."""

    def __init__(self, tmp: Path) -> None:
        db = settings.DATABASES["default"]
        self.host, self.port = db.get("HOST") or "127.0.0.1", str(db.get("PORT") or 5432)
        self.admin = {"user": db["USER"], "password": db.get("PASSWORD") or None}
        suffix = secrets.token_hex(4)
        self.names = {kind: f"rempart_{kind}_t{suffix}" for kind in ("owner", "app", "readonly")}
        self.password = secrets.token_urlsafe(16)
        self.dbname = f"rempart_roles_t{suffix}"
        self.var_dir = tmp / "var"

    def connect(self, role: str | None = None, dbname: str | None = None) -> psycopg.Connection:
        user = {"user": self.names[role], "password": self.password} if role else self.admin
        return psycopg.connect(
            host=self.host, port=self.port, dbname=dbname or self.dbname, autocommit=True, **user
        )

    def url(self, role: str) -> str:
        return f"postgres://{self.names[role]}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def rempart(self, role: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "DATABASE_URL": self.url(role),
            "REMPART_VAR_DIR": str(self.var_dir),
            "REMPART_ENV": "demo",
            "DJANGO_SETTINGS_MODULE": "rempart.settings",
        }
        for name in ("REMPART_REDIS_URL", "REMPART_SURVEILLANCE_STORE", "REMPART_TASKS_BACKEND"):
            env.pop(name, None)
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
        return result


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("pg_roles"))
    with c.connect(dbname="postgres") as admin:
        admin.execute(f'CREATE DATABASE "{c.dbname}"')
    try:
        with c.connect() as conn:
            conn.execute(roles_sql(c.names))
            conn.execute(roles_sql(c.names))  # idempotent: a second run changes nothing and fails on nothing
            for name in c.names.values():
                conn.execute(f"ALTER ROLE \"{name}\" PASSWORD '{c.password}'")
        c.rempart("owner", "migrate", "--noinput", "-v", "0")
        c.rempart("app", "demo_setup", "--beneficiaries", "30")
        yield c
    finally:
        with c.connect(dbname="postgres") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{c.dbname}" WITH (FORCE)')
            for name in c.names.values():
                admin.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def app(cluster):
    with cluster.connect("app") as conn:
        yield conn


def refused(conn: psycopg.Connection, sql: str) -> bool:
    """True when PostgreSQL refuses the statement for want of a privilege (not for any other reason)."""
    try:
        conn.execute(sql)
    except errors.InsufficientPrivilege:
        return True
    return False


def _partition(conn) -> str:
    row = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'ledger_disclosure' ORDER BY 1 DESC LIMIT 1"
    ).fetchone()
    return row[0]


LEDGER_ROW = (
    "INSERT INTO ledger_disclosure (created_at, chain, seq, prev_hash, row_hash, reference, channel, purpose, "
    "session_ref, domain, outcome, fields, hash_version) VALUES (now(), 0, 999999, '\\x00', '\\x00', "
    "'RC-TEST-ROLE-0001', 'cli', 'test', '', 'OPTI', 'covered', '{}', 1)"
)


def test_app_role_inserts_and_reads_the_ledger(app):
    before = app.execute("SELECT count(*) FROM ledger_disclosure").fetchone()[0]
    assert before > 0  # the demo set-up, run as the app role, wrote rows
    with app.transaction(force_rollback=True):  # a raw row would break its chain for the tests below
        app.execute(LEDGER_ROW)
        assert app.execute("SELECT count(*) FROM ledger_disclosure").fetchone()[0] == before + 1


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_disclosure SET purpose = 'altered'",
        "DELETE FROM ledger_disclosure",
        "TRUNCATE ledger_disclosure",
        "UPDATE {partition} SET purpose = 'altered'",
        "DELETE FROM {partition}",
        "TRUNCATE {partition}",
        "INSERT INTO {partition} SELECT * FROM ledger_disclosure LIMIT 1",
        "TRUNCATE ledger_disclosure_default",
        "UPDATE ledger_ledgeranchor SET document = ''",
        "DELETE FROM ledger_ledgeranchor",
        "UPDATE accounting_posting SET amount_cents = 0",
        "DELETE FROM accounting_posting",
        "TRUNCATE accounting_posting, accounting_transaction",
        "DELETE FROM accounting_transaction",
        "ALTER TABLE ledger_disclosure DISABLE TRIGGER ledger_disclosure_append_only",
        "ALTER TABLE ledger_disclosure DISABLE TRIGGER ALL",
        "DROP TRIGGER ledger_disclosure_append_only ON ledger_disclosure",
        "CREATE TRIGGER sneak BEFORE INSERT ON ledger_disclosure FOR EACH ROW EXECUTE FUNCTION rempart_ledger_append_only()",
        "CREATE OR REPLACE FUNCTION rempart_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "SET session_replication_role = replica",
        "DROP TABLE ledger_disclosure",
        "ALTER TABLE ledger_disclosure DETACH PARTITION {partition}",
        "SELECT setval('ledger_disclosure_id_seq', 1)",
        "CREATE TABLE public.app_made (id int)",
        "SELECT rempart_grants()",
    ],
)
def test_app_role_cannot_change_the_append_only_tables_or_their_guards(app, sql):
    assert refused(app, sql.format(partition=_partition(app)))


def test_the_refusals_come_from_the_grants_not_only_from_the_trigger(cluster, app):
    """The owner (who has UPDATE) meets the trigger; the app role is stopped before it."""
    with cluster.connect("owner") as owner:
        with pytest.raises(errors.RaiseException, match="append-only"):
            owner.execute("UPDATE ledger_disclosure SET purpose = 'altered'")
    with pytest.raises(errors.InsufficientPrivilege):
        app.execute("UPDATE ledger_disclosure SET purpose = 'altered'")


def test_app_role_writes_the_ordinary_tables(app):
    app.execute("UPDATE ledger_chainhead SET seq = seq WHERE chain = 0")  # every append moves a head
    app.execute("UPDATE accounts_user SET full_name = full_name")
    app.execute("DELETE FROM django_session")
    app.execute("CREATE TEMPORARY TABLE scratch (id int)")  # imports and billing stage rows in temp tables
    app.execute("INSERT INTO scratch VALUES (1)")
    with app.transaction():
        app.execute("SELECT * FROM ledger_chainhead WHERE chain = 1 FOR UPDATE")


def test_app_role_runs_a_rights_check_and_verifies_the_ledger(cluster):
    script = (
        "from rempart.rights.cards import read_card_data\n"
        "from rempart.gate.rights_check import check_rights\n"
        "from rempart.ledger.actor import Actor\n"
        "from rempart.accounts.models import Organisation\n"
        "from rempart.ledger.models import Disclosure\n"
        "org = Organisation.objects.filter(kind='professional').first()\n"
        "before = Disclosure.objects.count()\n"
        f"answer = check_rights(Actor(channel='api', organisation_id=org.pk, ip='127.0.0.1'), read_card_data({DEMO_CARD}))\n"
        "print('OUTCOME', answer.outcome, Disclosure.objects.count() - before)\n"
    )
    result = cluster.rempart("app", "shell", "-c", script)
    assert "OUTCOME covered 1" in result.stdout
    verified = cluster.rempart("app", "ledger", "verify")  # reads the chains, writes its run and checkpoints
    assert verified.stdout.startswith("OK:")


def test_partitions_are_made_by_the_owner_and_new_ones_are_append_only(cluster, app):
    as_app = cluster.rempart("app", "ledger", "partitions", "--months-ahead", "30", check=False)
    assert "owner" in (as_app.stdout + as_app.stderr)
    cluster.rempart("owner", "ledger", "partitions", "--months-ahead", "30")
    newest = _partition(app)
    assert newest > "ledger_disclosure_y2028"  # 30 months ahead of now, created by the owner just now
    for sql in (f"UPDATE {newest} SET purpose = 'x'", f"DELETE FROM {newest}", f"TRUNCATE {newest}"):
        assert refused(app, sql)
    assert not refused(app, f"SELECT count(*) FROM {newest}")


def test_a_table_a_later_migration_creates_is_open_to_the_app_but_not_to_truncate(cluster, app):
    with cluster.connect("owner") as owner:
        owner.execute("CREATE TABLE later_feature (id bigserial PRIMARY KEY, note text)")
    app.execute("INSERT INTO later_feature (note) VALUES ('a')")
    app.execute("UPDATE later_feature SET note = 'b'")
    app.execute("DELETE FROM later_feature")
    assert refused(app, "TRUNCATE later_feature")
    assert refused(app, "ALTER TABLE later_feature ADD COLUMN extra int")


def test_readonly_role_reads_and_writes_nothing(cluster):
    with cluster.connect("readonly") as ro:
        assert ro.execute("SELECT count(*) FROM ledger_disclosure").fetchone()[0] > 0
        assert ro.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(errors.ReadOnlySqlTransaction):
            ro.execute("UPDATE accounts_user SET full_name = full_name")
        ro.execute("SET default_transaction_read_only = off")  # a reader may lift it, the grants still hold
        assert refused(ro, "UPDATE accounts_user SET full_name = full_name")
        assert refused(ro, "INSERT INTO ledger_chainhead (chain, seq, last_hash) VALUES (99, 0, '\\x00')")


def test_nobody_else_may_connect(cluster):
    with cluster.connect() as admin:
        acl = admin.execute(
            "SELECT datacl::text FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
    entries = acl.strip("{}").split(",")
    assert not [e for e in entries if e.startswith("=")]  # no PUBLIC entry: CONNECT and TEMPORARY revoked
    assert f"{cluster.names['app']}=Tc/" in acl
