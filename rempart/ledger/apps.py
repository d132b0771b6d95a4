from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _extend_partitions(sender, using="default", **kwargs):
    """After every migrate: the ledger's monthly partitions exist for the next months (PostgreSQL)."""
    from django.db import connections

    from rempart.ledger.partitions import ensure_partitions

    connection = connections[using]
    if connection.vendor == "postgresql" and "ledger_disclosure" in connection.introspection.table_names():
        ensure_partitions(connection)


def _create_chain_heads(sender, using="default", **kwargs):
    """After every migrate (and every test flush): every chain's head exists, committed.

    A head created lazily inside a long transaction stays invisible to the others until it commits, and a
    second creator waits on it: with all the heads there, an append always finds a free one at once
    (rempart.ledger.chain._take)."""
    from django.db import connections

    from rempart.ledger.chain import GENESIS
    from rempart.ledger.models import CHAIN_COUNT, ChainHead

    if "ledger_chainhead" not in connections[using].introspection.table_names():
        return
    ChainHead.objects.using(using).bulk_create(
        [ChainHead(chain=n, seq=0, last_hash=GENESIS) for n in range(CHAIN_COUNT)], ignore_conflicts=True
    )


class LedgerConfig(AppConfig):
    name = "rempart.ledger"
    label = "ledger"
    verbose_name = "Registre des divulgations"

    def ready(self) -> None:
        from rempart.ledger import ip_lookup  # noqa: F401 - registers the CIDR lookup

        post_migrate.connect(_extend_partitions, sender=self)
        post_migrate.connect(_create_chain_heads, sender=self)
