# Hand-checked. The ledger's rows get a hash version (rempart/ledger/chain.py, HASH_VERSIONS): every row already
# written was hashed without its id and keeps verifying as version 1 (the column's database default); new rows are
# version 2. Checkpoints get a MAC; verification runs and signed anchors get their tables.
#
# PostgreSQL: ledger_disclosure is partitioned (0002) and guarded by a row trigger. ADD COLUMN … DEFAULT 1 NOT NULL
# reaches every partition, rewrites nothing (a constant default is stored in the catalogue, PostgreSQL ≥ 11) and
# fires no row trigger. SQLite rebuilds the table for a column with a database default, and the append-only trigger
# goes with the old table: it is created again below, as in 0002.

from django.db import migrations, models

SQLITE_GUARD = """
CREATE TRIGGER IF NOT EXISTS ledger_disclosure_no_update BEFORE UPDATE ON ledger_disclosure
BEGIN SELECT RAISE(ABORT, 'the disclosure ledger is append-only'); END;
"""


def sqlite_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_GUARD)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0005_disclosure_outcomes"),
    ]

    operations = [
        migrations.AddField(
            model_name="disclosure",
            name="hash_version",
            field=models.PositiveSmallIntegerField(db_default=1),
        ),
        migrations.RunPython(sqlite_guard, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="chaincheckpoint",
            name="mac",
            field=models.BinaryField(default=b"", max_length=32),
        ),
        migrations.CreateModel(
            name="VerificationRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("started_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField()),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("full", "Complète"),
                            ("since", "Depuis une date"),
                            ("incremental", "Depuis les points de contrôle"),
                            ("freeze", "Gel d'un périmètre"),
                            ("anchor", "Signature d'une ancre"),
                        ],
                        max_length=12,
                    ),
                ),
                ("complete", models.BooleanField(default=False)),
                ("published", models.BooleanField(default=False)),
                ("ok", models.BooleanField()),
                ("rows", models.BigIntegerField(default=0)),
                ("problems", models.TextField(blank=True)),
                ("checkpoints_saved", models.BooleanField(default=False)),
            ],
            options={
                "indexes": [models.Index(fields=["ok", "finished_at"], name="verification_ok_time")],
            },
        ),
        migrations.CreateModel(
            name="LedgerAnchor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveIntegerField(unique=True)),
                ("anchored_at", models.DateTimeField()),
                ("trigger", models.CharField(max_length=16)),
                ("key_id", models.CharField(max_length=64)),
                ("document", models.TextField()),
            ],
            options={
                "ordering": ["-number"],
            },
        ),
    ]
