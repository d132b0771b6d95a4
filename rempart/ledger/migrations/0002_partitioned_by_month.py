# Hand-checked. On PostgreSQL the ledger becomes a table partitioned by month of created_at (see
# rempart/ledger/partitions.py and docs/incident-response.md "Ledger storage"); SQLite keeps one table.

from django.db import migrations, models

PG_REBUILD = """
CREATE SEQUENCE ledger_disclosure_id_seq_p;
CREATE TABLE ledger_disclosure_p (
    id bigint NOT NULL DEFAULT nextval('ledger_disclosure_id_seq_p'),
    created_at timestamptz NOT NULL,
    chain smallint NOT NULL CHECK (chain >= 0),
    seq bigint NOT NULL,
    prev_hash bytea NOT NULL,
    row_hash bytea NOT NULL,
    reference varchar(24) NOT NULL,
    channel varchar(8) NOT NULL,
    purpose varchar(32) NOT NULL,
    organisation_id bigint NULL,
    user_id bigint NULL,
    token_id bigint NULL,
    session_ref varchar(64) NOT NULL,
    ip_address inet NULL,
    insurer_id bigint NULL,
    beneficiary_id bigint NULL,
    presented_hash bytea NULL,
    domain varchar(4) NOT NULL,
    care_date date NULL,
    outcome varchar(12) NOT NULL,
    fields jsonb NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE ledger_disclosure_default PARTITION OF ledger_disclosure_p DEFAULT;
"""
COLUMNS = (
    "id, created_at, chain, seq, prev_hash, row_hash, reference, channel, purpose, organisation_id, user_id, "
    "token_id, session_ref, ip_address, insurer_id, beneficiary_id, presented_hash, domain, care_date, outcome, fields"
)
PG_INDEXES = """
CREATE INDEX disclosure_org_time ON ledger_disclosure (organisation_id, created_at);
CREATE INDEX disclosure_user_time ON ledger_disclosure (user_id, created_at);
CREATE INDEX disclosure_token_time ON ledger_disclosure (token_id, created_at);
CREATE INDEX disclosure_beneficiary_time ON ledger_disclosure (beneficiary_id, created_at);
CREATE INDEX disclosure_ip_time ON ledger_disclosure (ip_address inet_ops, created_at);
CREATE INDEX disclosure_chain_seq ON ledger_disclosure (chain, seq);
CREATE INDEX ledger_disclosure_reference ON ledger_disclosure (reference);
CREATE INDEX disclosure_time ON ledger_disclosure USING brin (created_at);
CREATE TRIGGER ledger_disclosure_append_only BEFORE UPDATE OR DELETE ON ledger_disclosure
  FOR EACH ROW EXECUTE FUNCTION rempart_ledger_append_only();
"""


SQLITE_GUARD = """
CREATE TRIGGER IF NOT EXISTS ledger_disclosure_no_update BEFORE UPDATE ON ledger_disclosure
BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
"""


def sqlite_guard(apps, schema_editor):
    """SQLite rebuilt the table for the operations above, and its trigger went with the old table."""
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_GUARD)


def partition(apps, schema_editor):
    """PostgreSQL: rebuild the ledger as a partitioned table (monthly partitions + a default one), rows kept."""
    if schema_editor.connection.vendor != "postgresql":
        return
    from rempart.ledger.partitions import ensure_partitions

    with schema_editor.connection.cursor() as cursor:
        cursor.execute(PG_REBUILD)
        cursor.execute("SELECT min(created_at) FROM ledger_disclosure")
        oldest = cursor.fetchone()[0]
    ensure_partitions(
        schema_editor.connection, table="ledger_disclosure_p", since=oldest
    )  # names: ledger_disclosure_…
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO ledger_disclosure_p ({COLUMNS}) SELECT {COLUMNS} FROM ledger_disclosure")  # noqa: S608
        cursor.execute(
            "SELECT setval('ledger_disclosure_id_seq_p', coalesce(max(id), 0) + 1, false) FROM ledger_disclosure"
        )
        cursor.execute("DROP TABLE ledger_disclosure")
        cursor.execute("ALTER TABLE ledger_disclosure_p RENAME TO ledger_disclosure")
        cursor.execute("ALTER SEQUENCE ledger_disclosure_id_seq_p RENAME TO ledger_disclosure_id_seq")
        cursor.execute("ALTER SEQUENCE ledger_disclosure_id_seq OWNED BY ledger_disclosure.id")
        cursor.execute(PG_INDEXES)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0001_initial"),
    ]
    atomic = True

    operations = [
        migrations.RemoveConstraint(
            model_name="disclosure",
            name="disclosure_chain_seq",
        ),
        migrations.AlterField(
            model_name="disclosure",
            name="channel",
            field=models.CharField(
                choices=[
                    ("portal", "Portail"),
                    ("api", "API"),
                    ("console", "Console opérateur"),
                    ("cli", "Ligne de commande"),
                ],
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="disclosure",
            name="created_at",
            field=models.DateTimeField(),
        ),
        migrations.AlterField(
            model_name="disclosure",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("covered", "Couvert"),
                    ("not_covered", "Non couvert"),
                    ("no_match", "Aucune correspondance"),
                    ("listed", "Liste d'exposition"),
                ],
                max_length=12,
            ),
        ),
        migrations.AlterField(
            model_name="disclosure",
            name="reference",
            field=models.CharField(db_index=True, max_length=24),
        ),
        migrations.AddIndex(
            model_name="disclosure",
            index=models.Index(fields=["chain", "seq"], name="disclosure_chain_seq"),
        ),
        migrations.AddIndex(
            model_name="disclosure",
            index=models.Index(fields=["created_at"], name="disclosure_time"),
        ),
        migrations.AddIndex(
            model_name="disclosure",
            index=models.Index(fields=["ip_address", "created_at"], name="disclosure_ip_time"),
        ),
        migrations.RunPython(sqlite_guard, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(partition, migrations.RunPython.noop, elidable=False),
    ]
