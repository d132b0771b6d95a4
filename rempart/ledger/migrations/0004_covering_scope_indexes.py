# Hand-written. PostgreSQL only: the actor and address indexes carry (insurer_id, beneficiary_id, outcome), so that a
# scope's totals are read from the index alone (bench/scope.py: a one-year organisation scope over 100 M rows went
# from 1.8 s to 17 ms). Django's state keeps the plain indexes: SQLite has no covering indexes.
#
# On a large live ledger, build them without a long lock instead: CREATE INDEX … ON ONLY ledger_disclosure …, then
# CREATE INDEX CONCURRENTLY on each partition and ALTER INDEX … ATTACH PARTITION (docs/incident-response.md).

from django.db import migrations

INDEXES = {
    "disclosure_org_time": "organisation_id, created_at",
    "disclosure_user_time": "user_id, created_at",
    "disclosure_token_time": "token_id, created_at",
    "disclosure_ip_time": "ip_address inet_ops, created_at",
}


def covering(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, keys in INDEXES.items():
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(
            f"CREATE INDEX {name} ON ledger_disclosure ({keys}) INCLUDE (insurer_id, beneficiary_id, outcome)"
        )


def plain(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, keys in INDEXES.items():
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")
        schema_editor.execute(f"CREATE INDEX {name} ON ledger_disclosure ({keys})")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_chain_checkpoints")]
    operations = [migrations.RunPython(covering, plain, elidable=False)]
