"""``ip_address__within="192.0.2.0/24"``: an address inside a network (CIDR), for incident scopes.

PostgreSQL: the inet ``<<=`` operator (a B-tree index on the address is used for it). SQLite: a
small SQL function registered on each connection, since SQLite knows nothing of addresses.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.db.backends.signals import connection_created
from django.db.models import GenericIPAddressField, Lookup


@GenericIPAddressField.register_lookup
class Within(Lookup):
    lookup_name = "within"

    def get_db_prep_lookup(self, value, connection):
        return ("%s", [str(ipaddress.ip_network(value, strict=False))])

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} <<= {rhs}::inet", [*lhs_params, *rhs_params]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"rempart_ip_within({lhs}, {rhs})", [*lhs_params, *rhs_params]


@lru_cache(maxsize=256)
def _network(text: str):
    return ipaddress.ip_network(text, strict=False)


def _within(address: str | None, network: str) -> int:
    if not address:
        return 0
    try:
        return int(ipaddress.ip_address(address) in _network(network))
    except ValueError:
        return 0


def _register(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("rempart_ip_within", 2, _within, deterministic=True)


connection_created.connect(_register)
