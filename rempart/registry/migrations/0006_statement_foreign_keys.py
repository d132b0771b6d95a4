"""The registry's three bulk-loaded foreign keys checked once per statement on PostgreSQL (rempart.lib.statement_fk).

The model fields say ``db_constraint=False`` so that Django no longer manages a constraint; the database still
refuses orphans: on PostgreSQL through the statement-level guards installed here, on SQLite through the original
constraint, which this migration leaves in place.
"""

import django.db.models.deletion
from django.db import migrations, models

from rempart.lib.statement_fk import StatementForeignKey, foreign_key_constraints

GUARDS = (
    StatementForeignKey(
        "beneficiary_contract_fk", "registry_beneficiary", "contract_id", "registry_contract"
    ),
    StatementForeignKey("contract_insurer_fk", "registry_contract", "insurer_id", "registry_insurer"),
    StatementForeignKey("contract_product_fk", "registry_contract", "product_id", "registry_product"),
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for guard in GUARDS:
            for name in foreign_key_constraints(cursor, guard.child, guard.column):
                cursor.execute(f'ALTER TABLE {guard.child} DROP CONSTRAINT "{name}"')
            for statement in guard.create_sql():
                cursor.execute(statement)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for guard in GUARDS:
            for statement in guard.drop_sql():
                cursor.execute(statement)
            cursor.execute(
                f"ALTER TABLE {guard.child} ADD CONSTRAINT {guard.name} FOREIGN KEY ({guard.column}) "
                f"REFERENCES {guard.parent} (id) DEFERRABLE INITIALLY DEFERRED"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0005_importrun_notes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="beneficiary",
                    name="contract",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="beneficiaries",
                        to="registry.contract",
                    ),
                ),
                migrations.AlterField(
                    model_name="contract",
                    name="insurer",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="contracts",
                        to="registry.insurer",
                    ),
                ),
                migrations.AlterField(
                    model_name="contract",
                    name="product",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="contracts",
                        to="registry.product",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(install, uninstall)],
        ),
    ]
