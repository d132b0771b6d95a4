"""Counters shared by every server process: in the database (embedded default) or in Redis.

Every counter is a *sliding* window cut into buckets, whatever it counts; no window restarts at a clock
hour or at midnight, so a script gains nothing by pacing itself around a boundary. A window of
``seconds`` with buckets of ``bucket`` seconds sums ``seconds / bucket + 1`` buckets: every hit of the last
``seconds`` is always counted (hence "at most N in any ``seconds``, whatever the alignment"), and a hit is
forgotten between ``seconds`` and ``seconds + bucket`` after it happened.

Two kinds, both updated and read in one call per check (one Redis script call — one per actor on a Redis
Cluster, pipelined —, or one short transaction):
- *counts* (checks per minute, per hour, misses, refused attempts…): a hit adds to the current bucket;
- *distinct counts* (beneficiaries confirmed, new identities): the store remembers when each member was
  last seen; a sight is *fresh* for a window when the member was not seen in the window's ``seconds``
  before it, and a fresh sight adds one to that window's buckets. The value is the number of members
  first seen (after a pause of at least the window) within the window: N + 1 different people confirmed
  within any ``seconds`` always make it exceed N.
Increments are atomic (SQL upsert, Redis INCRBY in a server-side script), so processes count together.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int  # the span judged: every hit of the last ``seconds`` is counted
    bucket: int  # bucket length: a hit is forgotten between ``seconds`` and ``seconds + bucket`` later

    def span(self, now: int) -> range:
        """The buckets summed at ``now``: the current one and the ``seconds / bucket`` before it."""
        current = now // self.bucket
        return range(current - self.seconds // self.bucket, current + 1)


MINUTE = Window("minute", 60, 10)
HOUR = Window("hour", 3600, 300)
DAY = Window("day", 86400, 3600)
WEEK = Window("week", 7 * 86400, 86400)
LONGEST = WEEK  # last sights are kept this long (plus a day); no distinct window may be longer


@dataclass(frozen=True)
class Count:
    key: str
    window: Window
    add: int = 1  # 0: read only

    @property
    def name(self) -> str:
        return f"{self.key}|{self.window.name}"


@dataclass(frozen=True)
class Distinct:
    key: str
    member: str | None  # None: read only
    windows: tuple[Window, ...]

    def __post_init__(self) -> None:
        if any(w.seconds > LONGEST.seconds for w in self.windows):
            raise ValueError("distinct windows are at most a week long (last sights are kept that long)")

    def name(self, window: Window) -> str:
        """The window's value: members seen fresh within it."""
        return f"{self.key}|distinct|{window.name}"

    def fresh_name(self, window: Window) -> str:
        """1 if this sight was fresh for the window (it raised the value), else 0."""
        return f"{self.key}|distinct|{window.name}|fresh"


class Store(Protocol):
    def update(
        self, counts: list[Count], distincts: list[Distinct], now: float | None = None
    ) -> dict[str, int]: ...

    def recent(self, key: str, value: str | None, keep: int = 12) -> list[str]: ...

    def clear(self) -> None: ...


def _distinct_key(distinct: Distinct) -> str:
    return f"{distinct.key}|d"


# Placeholders only are formatted into these (``%s`` groups); every value is a parameter.
_UPSERT_COUNTS = (
    "INSERT INTO surveillance_counter (key, size, bucket, count) VALUES {values} "
    "ON CONFLICT (key, size, bucket) DO UPDATE SET count = surveillance_counter.count + excluded.count"
)
_READ_COUNTS = "SELECT key, size, bucket, count FROM surveillance_counter WHERE {conditions}"
_READ_SEEN = "SELECT key, member, seen FROM surveillance_seenmember WHERE {conditions}"
_UPSERT_SEEN = (
    "INSERT INTO surveillance_seenmember (key, member, seen) VALUES {values} "
    "ON CONFLICT (key, member) DO UPDATE SET seen = excluded.seen"
)


class DatabaseStore:
    """Counters as rows (surveillance_counter, surveillance_seenmember); old rows purged now and then."""

    PURGE_EVERY = 500

    def __init__(self) -> None:
        self._writes = 0

    def update(
        self, counts: list[Count], distincts: list[Distinct], now: float | None = None
    ) -> dict[str, int]:
        now = int(time.time() if now is None else now)
        result: dict[str, int] = {}
        counts = list(counts)
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Counts are not records: losing the last instant's increments in a crash is harmless, and not
                # waiting for the disk on every check is what keeps counting cheap.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            sights = [d for d in distincts if d.member is not None]
            previous: dict[tuple[str, str], int] = {}
            if sights:
                conditions = " OR ".join(["(key = %s AND member = %s)"] * len(sights))
                params = [v for d in sights for v in (d.key, d.member)]
                cursor.execute(_READ_SEEN.format(conditions=conditions), params)
                previous = {(k, m): s for k, m, s in cursor.fetchall()}
                values = ", ".join(["(%s, %s, %s)"] * len(sights))
                cursor.execute(
                    _UPSERT_SEEN.format(values=values), [v for d in sights for v in (d.key, d.member, now)]
                )
            for distinct in distincts:
                last = previous.get((distinct.key, distinct.member or ""))
                for window in distinct.windows:
                    fresh = distinct.member is not None and (last is None or last <= now - window.seconds)
                    result[distinct.fresh_name(window)] = int(fresh)
                    counts.append(Count(_distinct_key(distinct), window, add=int(fresh)))
            increments = []
            for count in counts:
                if count.add:
                    increments += [count.key, count.window.bucket, now // count.window.bucket, count.add]
            if increments:
                values = ", ".join(["(%s, %s, %s, %s)"] * (len(increments) // 4))
                cursor.execute(_UPSERT_COUNTS.format(values=values), increments)
            if counts:
                conditions, params = [], []
                for count in counts:
                    conditions.append("(key = %s AND size = %s AND bucket >= %s)")
                    params += [count.key, count.window.bucket, count.window.span(now).start]
                cursor.execute(_READ_COUNTS.format(conditions=" OR ".join(conditions)), params)
                rows = cursor.fetchall()
                for count in counts:
                    span = count.window.span(now)
                    result[count.name] = sum(
                        c for k, s, b, c in rows if k == count.key and s == count.window.bucket and b in span
                    )
        for distinct in distincts:
            for window in distinct.windows:
                result[distinct.name(window)] = result.pop(f"{_distinct_key(distinct)}|{window.name}")
        self._writes += 1
        if self._writes % self.PURGE_EVERY == 0:
            self.purge(now)
        return result

    def purge(self, now: float | None = None) -> None:
        """Drop buckets and last sights older than anything a window reads."""
        now = int(time.time() if now is None else now)
        horizon = now - LONGEST.seconds - 86400
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM surveillance_counter WHERE (bucket + 1) * size < %s", [horizon])
            cursor.execute("DELETE FROM surveillance_seenmember WHERE seen < %s", [horizon])
            # Members of the former fixed windows (clock hour, UTC day), before sliding windows.
            cursor.execute("DELETE FROM surveillance_distinctmember WHERE key LIKE %s", ["%|distinct|%"])

    def recent(self, key: str, value: str | None, keep: int = 12) -> list[str]:
        """The last ``keep`` values pushed under ``key`` (a small per-actor history, for patterns)."""
        from rempart.surveillance.models import DistinctMember

        if value is not None:
            stamp = time.time_ns()
            DistinctMember.objects.create(key=f"recent:{key}", bucket=stamp, member=value[:64])
            old = (
                DistinctMember.objects.filter(key=f"recent:{key}")
                .order_by("-bucket")
                .values_list("pk", flat=True)[keep:]
            )
            DistinctMember.objects.filter(pk__in=list(old)).delete()
        return list(
            DistinctMember.objects.filter(key=f"recent:{key}")
            .order_by("bucket")
            .values_list("member", flat=True)
        )

    def clear(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM surveillance_counter")
            cursor.execute("DELETE FROM surveillance_distinctmember")
            cursor.execute("DELETE FROM surveillance_seenmember")


_REDIS_UPDATE = """
-- The counters of one check in one call (on a cluster: those of one hash tag, so of one slot). Every key is
-- given in KEYS, in the order the arguments use them (packing the arguments is most of the client's cost):
-- ARGV[1] = now (seconds); ARGV[2] = the counts, ';'-separated 'bucket size,window,increment', one key each
-- (its hash); ARGV[3] = the distinct counts, ';'-separated 'member,size:window/size:window…' (empty member:
-- only read), each taking its sorted set of last sights then one hash per window. Returns the counts'
-- values, then for each distinct count and each of its windows its value and whether this sight was fresh.
-- Members contain neither ',' nor ';'.
local now = tonumber(ARGV[1])
local out = {}
local k = 0
-- A sliding count: one hash per counter, a field per bucket; the value sums the current bucket and the
-- window / size before it (older fields are dropped as they are met; the key expires when no bucket is left).
local function count(base, size, window, add)
  local current = math.floor(now / size)
  local first = current - window / size
  if add > 0 and redis.call('HINCRBY', base, current, add) == add then
    redis.call('EXPIRE', base, window + 2 * size)  -- a new bucket: the key outlives it by the window
  end
  local flat = redis.call('HGETALL', base)
  local sum, stale = 0, {}
  for i = 1, #flat, 2 do
    local bucket = tonumber(flat[i])
    if bucket < first then
      stale[#stale + 1] = flat[i]
    elseif bucket <= current then
      sum = sum + tonumber(flat[i + 1])
    end
  end
  if #stale > 0 then redis.call('HDEL', base, unpack(stale)) end
  return sum
end
for size, window, add in string.gmatch(ARGV[2], '(%d+),(%d+),(%d+)') do
  k = k + 1
  out[#out + 1] = count(KEYS[k], tonumber(size), tonumber(window), tonumber(add))
end
for member, windows in string.gmatch(ARGV[3], '([^,;]*),([%d:/]+)') do
  k = k + 1
  local seen = KEYS[k]
  local last = false
  if member ~= '' then
    last = redis.call('ZSCORE', seen, member)
    redis.call('ZADD', seen, now, member)
  end
  local keep = 0
  for size, window in string.gmatch(windows, '(%d+):(%d+)') do
    size, window = tonumber(size), tonumber(window)
    if window > keep then keep = window end
    local fresh = 0
    if member ~= '' and (not last or tonumber(last) <= now - window) then fresh = 1 end
    k = k + 1
    out[#out + 1] = count(KEYS[k], size, window, fresh)
    out[#out + 1] = fresh
  end
  if member ~= '' then
    redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - keep)
    redis.call('EXPIRE', seen, keep + 60)
  end
end
return out
"""


@lru_cache(maxsize=65536)
def hash_tag(key: str) -> str:
    """The actor a counter belongs to, which Redis Cluster hashes alone: ``u:12:miss`` → ``u:12``,
    ``o:7`` → ``o:7``, ``ip:2001:db8::1:miss`` → ``ip:2001:db8::1`` (an address is taken whole).

    Every key of one actor then lives on one slot, so one script call updates them together. Braces, which
    would end the tag early, are replaced. The tag only places keys: any answer is right, a good one is cheap.
    """
    kind, _, rest = key.partition(":")
    if kind == "ip" and rest:
        head = rest
        while head and not _is_address(head):
            head = head.rpartition(":")[0]
        tag = f"ip:{head or rest}"
    else:
        tag = f"{kind}:{rest.partition(':')[0]}" if rest else kind
    return tag.replace("{", "(").replace("}", ")")


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass
class _Call:
    """One script call: the keys of one hash tag (of every tag on a single server) and what they return."""

    keys: list[str] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)
    distincts: list[str] = field(default_factory=list)
    count_names: list[str] = field(default_factory=list)
    distinct_names: list[str] = field(default_factory=list)

    def args(self, now: int) -> list:
        return [now, ";".join(self.counts), ";".join(self.distincts)]


class RedisStore:
    """The same counters in Redis: a hash per counter (a field per bucket, the key expiring once its last
    bucket is out of the window), last sights in a sorted set per distinct count.

    Keys carry the actor as a hash tag (``rempart:sv:{u:12}:c:u:12:miss:300:3600``) and are passed in KEYS:
    a single server takes one script call per check; a Redis Cluster (``cluster=True``) one per actor the
    check touches (the account or token, the organisation, the address), sent together in one pipeline.
    A server or node that cannot be reached raises a ``redis.exceptions.RedisError`` in both cases
    (docs/redis.md, "When Redis is down").
    """

    PREFIX = "rempart:sv:"

    def __init__(self, url: str, *, cluster: bool = False) -> None:
        """``url``: the server; on a cluster, one node or several, comma-separated (seeds: any that answers)."""
        import redis

        self.cluster = cluster
        if cluster:
            from rempart.lib.redis_cache import cluster_client

            with _outage_as_connection_error():
                self.client = cluster_client(url.split(","))
        else:
            self.client = redis.Redis.from_url(url)
        self._update = self.client.register_script(_REDIS_UPDATE)

    def update(
        self, counts: list[Count], distincts: list[Distinct], now: float | None = None
    ) -> dict[str, int]:
        now = int(time.time() if now is None else now)
        prefix, calls = self.PREFIX, {}
        one = None if self.cluster else _Call()
        for c in counts:
            tag = hash_tag(c.key)
            call = one or calls.setdefault(tag, _Call())
            call.keys.append(f"{prefix}{{{tag}}}:c:{c.key}:{c.window.bucket}:{c.window.seconds}")
            call.counts.append(f"{c.window.bucket},{c.window.seconds},{c.add}")
            call.count_names.append(c.name)
        for d in distincts:
            tag = hash_tag(d.key)
            call = one or calls.setdefault(tag, _Call())
            base = f"{prefix}{{{tag}}}:d:{d.key}:"
            call.keys.append(f"{base}seen")
            call.keys += [f"{base}{w.bucket}:{w.seconds}" for w in d.windows]
            call.distincts.append(
                f"{d.member or ''}," + "/".join(f"{w.bucket}:{w.seconds}" for w in d.windows)
            )
            for w in d.windows:
                call.distinct_names += [d.name(w), d.fresh_name(w)]
        chosen = [one] if one is not None else list(calls.values())
        result: dict[str, int] = {}
        for call, reply in zip(chosen, self._run(chosen, now), strict=True):
            values = [int(v) for v in reply]
            n = len(call.count_names)
            result.update(zip(call.count_names, values[:n], strict=True))
            result.update(zip(call.distinct_names, values[n:], strict=True))
        return result

    def _run(self, calls: list[_Call], now: int) -> list:
        """One script call per ``_Call``; on a cluster they are pipelined (written to every node, then read)."""
        if not self.cluster:
            return [self._update(keys=calls[0].keys, args=calls[0].args(now))]
        from redis.exceptions import NoScriptError

        with _outage_as_connection_error():
            if len(calls) == 1:
                return [self._update(keys=calls[0].keys, args=calls[0].args(now))]
            # redis-py refuses ``pipe.evalsha`` on a cluster because a node may not know the script: a
            # NOSCRIPT is handled here (the script did not run, so it is loaded on every primary and that one
            # call sent again). Each call names its node (from its slot), or the pipeline would ask a server
            # for the command's keys first (COMMAND GETKEYS, a round trip each); a MOVED or ASK reply is
            # followed by redis-py, which sends that call again through the cluster client.
            client, sha = self.client, self._update.sha
            pipe = client.pipeline(transaction=False)
            for call in calls:
                node = client.nodes_manager.get_node_from_slot(client.keyslot(call.keys[0]))
                pipe.execute_command(
                    "EVALSHA", sha, len(call.keys), *call.keys, *call.args(now), target_nodes=node
                )
            replies = pipe.execute(raise_on_error=False)
            for i, reply in enumerate(replies):
                if isinstance(reply, NoScriptError):
                    replies[i] = self._update(keys=calls[i].keys, args=calls[i].args(now))
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            return replies

    def recent(self, key: str, value: str | None, keep: int = 12) -> list[str]:
        list_key = f"{self.PREFIX}{{{hash_tag(key)}}}:r:{key}"
        pipe = self.client.pipeline(transaction=False)
        if value is not None:
            pipe.rpush(list_key, value)
            pipe.ltrim(list_key, -keep, -1)
            pipe.expire(list_key, 86400)
        pipe.lrange(list_key, 0, -1)
        with _outage_as_connection_error():
            return [item.decode() for item in pipe.execute()[-1]]

    def clear(self) -> None:
        """Delete every counter; on a cluster, every primary node is scanned (a SCAN sees one node only)."""
        match = f"{self.PREFIX}*"
        if not self.cluster:
            for key in self.client.scan_iter(match):
                self.client.delete(key)
            return
        with _outage_as_connection_error():
            for node in self.client.get_primaries():
                for key in list(self.client.scan_iter(match, target_nodes=node)):
                    self.client.delete(key)


@contextmanager
def _outage_as_connection_error() -> Iterator[None]:
    """redis-py raises ``RedisClusterException`` (not a ``RedisError``) when no node of a cluster answers:
    raised as the ``ConnectionError`` a single server down gives, so an outage reads the same either way."""
    from redis.exceptions import ConnectionError, RedisClusterException

    try:
        yield
    except RedisClusterException as exc:
        if "slot" in str(exc):  # keys of several slots in one command: a bug, not an outage
            raise
        raise ConnectionError(f"Redis Cluster unavailable: {exc}") from exc


@cache
def _redis_store(url: str, cluster: bool) -> RedisStore:
    return RedisStore(url, cluster=cluster)


_database_store = DatabaseStore()


def get_store() -> Store:
    if settings.REMPART_SURVEILLANCE_STORE == "redis":
        url = settings.REMPART_SURVEILLANCE_REDIS_URL
        if not url:
            raise RuntimeError(
                "REMPART_SURVEILLANCE_STORE=redis needs REMPART_SURVEILLANCE_REDIS_URL or REMPART_REDIS_URL"
            )
        return _redis_store(url, bool(getattr(settings, "REMPART_REDIS_CLUSTER", False)))
    return _database_store
