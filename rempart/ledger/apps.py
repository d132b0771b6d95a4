from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _extend_partitions(sender, using="default", **kwargs):
    """After every migrate: the ledger's monthly partitions exist for the next months (PostgreSQL)."""
    from django.db import connections

    from rempart.ledger.partitions import ensure_partitions

    connection = connections[using]
    if connection.vendor == "postgresql" and "ledger_disclosure" in connection.introspection.table_names():
        ensure_partitions(connection)


class LedgerConfig(AppConfig):
    name = "rempart.ledger"
    label = "ledger"
    verbose_name = "Registre des divulgations"

    def ready(self) -> None:
        from rempart.ledger import ip_lookup  # noqa: F401 - registers the CIDR lookup

        post_migrate.connect(_extend_partitions, sender=self)
