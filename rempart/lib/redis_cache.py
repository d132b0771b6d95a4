"""Django's Redis cache on a Redis Cluster (``REMPART_REDIS_CLUSTER=1``, docs/redis.md).

Django's ``RedisCache`` talks to one server (or a primary and replicas): its client is a ``redis.Redis`` on a
connection pool, and its multi-key calls (``mget``, a pipelined ``mset``) assume every key on that server. A
cluster needs ``redis.cluster.RedisCluster``, which finds each key's node from its slot. This backend keeps
Django's client and serializer and swaps only what differs: the client, and the three multi-key operations,
spread over the keys' slots. One-key operations (all allauth's rate limits use: ``add``, ``get``, ``set``,
``delete``, and ``incr``) are Django's own, unchanged.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


def cluster_client(urls: list[str], **options: Any):
    """A ``RedisCluster`` seeded by every URL (the first one's carries the credentials and TLS options): it
    learns the other nodes, and the slots, from the first seed that answers, so one node down at start-up
    does not stop the process."""
    from urllib.parse import urlsplit

    from redis.cluster import ClusterNode, RedisCluster

    others = [urlsplit(url.strip()) for url in urls[1:]]
    return RedisCluster.from_url(
        urls[0].strip(),
        startup_nodes=[ClusterNode(u.hostname, u.port or 6379) for u in others],
        **options,
    )


class RedisClusterCacheClient(RedisCacheClient):
    """Django's Redis cache client with one ``RedisCluster`` (thread-safe, it keeps a pool per node)."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        # Django's own options (serializer, pool_class, parser_class) are taken by the parent; the others go
        # to RedisCluster (socket timeouts, retries…).
        super().__init__(servers, **options)
        self._cluster_options = {k: v for k, v in self._pool_options.items() if k != "parser_class"}
        self._cluster = None

    def get_client(self, key: Any = None, *, write: bool = False):
        if self._cluster is None:
            self._cluster = cluster_client(self._servers, **self._cluster_options)
        return self._cluster

    def get_many(self, keys):
        keys = list(keys)
        values = self.get_client(None).mget_nonatomic(keys)
        return {k: self._serializer.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def set_many(self, data, timeout):
        # One SET per key (with its expiry), pipelined: the pipeline sends each node its keys at once.
        pipe = self.get_client(None, write=True).pipeline(transaction=False)
        for key, value in data.items():
            if timeout == 0:  # Django's meaning: expired at once
                pipe.delete(key)
            else:
                pipe.set(key, self._serializer.dumps(value), ex=timeout)
        pipe.execute()

    def delete_many(self, keys):
        client = self.get_client(None, write=True)
        for key in keys:  # one DEL per key: keys of several slots may not share one command
            client.delete(key)

    def clear(self):
        """Flush every primary (the cluster has one database, and its cache is all of it, as in Django's)."""
        from redis.cluster import RedisCluster

        return bool(self.get_client(None, write=True).flushdb(target_nodes=RedisCluster.PRIMARIES))


class RedisClusterCache(RedisCache):
    """``CACHES = {"default": {"BACKEND": "rempart.lib.redis_cache.RedisClusterCache", "LOCATION":
    "redis://node-1:6379,redis://node-2:6379"}}``: any reachable node(s) of the cluster."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = RedisClusterCacheClient
