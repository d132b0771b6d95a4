# Hand-checked: the ledger table, its chain heads, and the database-level append-only guard.
from django.db import migrations, models

CHAIN_COUNT = 16

PG_GUARD = """
CREATE OR REPLACE FUNCTION rempart_ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the disclosure ledger is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_disclosure_append_only BEFORE UPDATE OR DELETE ON ledger_disclosure
  FOR EACH ROW EXECUTE FUNCTION rempart_ledger_append_only();
"""
PG_UNGUARD = """
DROP TRIGGER IF EXISTS ledger_disclosure_append_only ON ledger_disclosure;
DROP FUNCTION IF EXISTS rempart_ledger_append_only();
"""
SQLITE_GUARD = """
CREATE TRIGGER ledger_disclosure_no_update BEFORE UPDATE ON ledger_disclosure
BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
"""


def guard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_GUARD)
    elif vendor == "sqlite":
        # DELETE stays possible on SQLite so the test runner can empty tables; the application has no delete path.
        schema_editor.execute(SQLITE_GUARD)


def unguard(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UNGUARD)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS ledger_disclosure_no_update")


def create_heads(apps, schema_editor):
    ChainHead = apps.get_model("ledger", "ChainHead")
    ChainHead.objects.bulk_create(
        [ChainHead(chain=n, seq=0, last_hash=bytes(32)) for n in range(CHAIN_COUNT)]
    )


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ChainHead",
            fields=[
                ("chain", models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField(default=0)),
                ("last_hash", models.BinaryField(default=bytes(32), max_length=32)),
            ],
        ),
        migrations.CreateModel(
            name="Disclosure",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("created_at", models.DateTimeField(db_index=True)),
                ("chain", models.PositiveSmallIntegerField()),
                ("seq", models.BigIntegerField()),
                ("prev_hash", models.BinaryField(max_length=32)),
                ("row_hash", models.BinaryField(max_length=32)),
                ("reference", models.CharField(max_length=24, unique=True)),
                ("channel", models.CharField(choices=[("portal", "Portail"), ("api", "API")], max_length=8)),
                ("purpose", models.CharField(max_length=32)),
                ("organisation_id", models.BigIntegerField(null=True)),
                ("user_id", models.BigIntegerField(null=True)),
                ("token_id", models.BigIntegerField(null=True)),
                ("session_ref", models.CharField(blank=True, max_length=64)),
                ("ip_address", models.GenericIPAddressField(null=True)),
                ("insurer_id", models.BigIntegerField(null=True)),
                ("beneficiary_id", models.BigIntegerField(null=True)),
                ("presented_hash", models.BinaryField(max_length=16, null=True)),
                ("domain", models.CharField(blank=True, max_length=4)),
                ("care_date", models.DateField(null=True)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("covered", "Couvert"),
                            ("not_covered", "Non couvert"),
                            ("no_match", "Aucune correspondance"),
                        ],
                        max_length=12,
                    ),
                ),
                ("fields", models.JSONField(default=list)),
            ],
            options={
                "verbose_name": "divulgation",
                "indexes": [
                    models.Index(fields=["organisation_id", "created_at"], name="disclosure_org_time"),
                    models.Index(fields=["user_id", "created_at"], name="disclosure_user_time"),
                    models.Index(fields=["token_id", "created_at"], name="disclosure_token_time"),
                    models.Index(fields=["beneficiary_id", "created_at"], name="disclosure_beneficiary_time"),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("chain", "seq"), name="disclosure_chain_seq")
                ],
            },
        ),
        migrations.RunPython(create_heads, migrations.RunPython.noop),
        migrations.RunPython(guard, unguard),
    ]
