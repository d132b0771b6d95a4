"""Counters shared by every server process: in the database (embedded default) or in Redis.

Two kinds, both updated and read in one call per check (one or two round trips):
- *sliding counts* (checks per minute, per hour, misses per hour): a window is cut into buckets
  (e.g. an hour into twelve 5-minute buckets); a hit increments the current bucket and the window's
  value is the sum of its buckets;
- *distinct counts* (beneficiaries confirmed per hour, per day): the members of the current fixed window
  (the clock hour, the UTC day).
Increments are atomic (SQL upsert, Redis INCR/SADD), so several processes count correctly together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int
    bucket: int  # seconds per bucket (sliding) or the fixed window length (distinct)


MINUTE = Window("minute", 60, 10)
HOUR = Window("hour", 3600, 300)
DAY = Window("day", 86400, 86400)
FIXED_HOUR = Window("hour", 3600, 3600)


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
    window: Window
    member: str | None  # None: read only

    @property
    def name(self) -> str:
        return f"{self.key}|distinct|{self.window.name}"


class Store(Protocol):
    def update(
        self, counts: list[Count], distincts: list[Distinct], now: float | None = None
    ) -> dict[str, int]: ...

    def recent(self, key: str, value: str | None, keep: int = 12) -> list[str]: ...

    def clear(self) -> None: ...


def _buckets(window: Window, now: float) -> tuple[int, range]:
    current = int(now) // window.bucket
    return current, range(current - window.seconds // window.bucket + 1, current + 1)


# Placeholders only are formatted into these (``%s`` groups); every value is a parameter.
_UPSERT_COUNTS = (
    "INSERT INTO surveillance_counter (key, size, bucket, count) VALUES {values} "
    "ON CONFLICT (key, size, bucket) DO UPDATE SET count = surveillance_counter.count + excluded.count"
)
_READ_COUNTS = "SELECT key, size, bucket, count FROM surveillance_counter WHERE {conditions}"
_ADD_MEMBERS = (
    "INSERT INTO surveillance_distinctmember (key, bucket, member) VALUES {values} "
    "ON CONFLICT (key, bucket, member) DO NOTHING"
)
_READ_MEMBERS = "SELECT key, count(*) FROM surveillance_distinctmember WHERE {conditions} GROUP BY key"


class DatabaseStore:
    """Counters as rows (surveillance_counter, surveillance_distinctmember); old buckets purged now and then."""

    PURGE_EVERY = 500

    def __init__(self) -> None:
        self._writes = 0

    def update(
        self, counts: list[Count], distincts: list[Distinct], now: float | None = None
    ) -> dict[str, int]:
        now = time.time() if now is None else now
        result: dict[str, int] = {}
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # Counts are not records: losing the last instant's increments in a crash is harmless, and not
                # waiting for the disk on every check is what keeps counting cheap.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            increments = []
            for count in counts:
                if count.add:
                    current, _all = _buckets(count.window, now)
                    increments += [count.key, count.window.bucket, current, count.add]
            if increments:
                values = ", ".join(["(%s, %s, %s, %s)"] * (len(increments) // 4))
                cursor.execute(_UPSERT_COUNTS.format(values=values), increments)
            if counts:
                conditions, params = [], []
                for count in counts:
                    _current, span = _buckets(count.window, now)
                    conditions.append("(key = %s AND size = %s AND bucket >= %s)")
                    params += [count.key, count.window.bucket, span.start]
                cursor.execute(_READ_COUNTS.format(conditions=" OR ".join(conditions)), params)
                rows = cursor.fetchall()
                for count in counts:
                    _current, span = _buckets(count.window, now)
                    result[count.name] = sum(
                        c
                        for k, s, b, c in rows
                        if k == count.key and s == count.window.bucket and b >= span.start
                    )
            members = [
                (d.name, int(now) // d.window.bucket, d.member) for d in distincts if d.member is not None
            ]
            if members:
                values = ", ".join(["(%s, %s, %s)"] * len(members))
                cursor.execute(_ADD_MEMBERS.format(values=values), [v for member in members for v in member])
            if distincts:
                params = [v for d in distincts for v in (d.name, int(now) // d.window.bucket)]
                conditions = " OR ".join(["(key = %s AND bucket = %s)"] * len(distincts))
                cursor.execute(_READ_MEMBERS.format(conditions=conditions), params)
                found = dict(cursor.fetchall())
                for distinct in distincts:
                    result[distinct.name] = found.get(distinct.name, 0)
        self._writes += 1
        if self._writes % self.PURGE_EVERY == 0:
            self.purge(now)
        return result

    def purge(self, now: float | None = None) -> None:
        """Drop buckets older than two days (nothing reads further back)."""
        horizon = int((time.time() if now is None else now) - 2 * 86400)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM surveillance_counter WHERE bucket * size < %s", [horizon])
            for window in (DAY, FIXED_HOUR):
                cursor.execute(
                    "DELETE FROM surveillance_distinctmember WHERE key LIKE %s AND bucket < %s",
                    [f"%|distinct|{window.name}", horizon // window.bucket],
                )

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


_REDIS_UPDATE = """
-- All the counters of one check in one call, with three arguments (packing them is most of the client's cost):
-- ARGV[1] = now (seconds); ARGV[2] = the counts, ';'-separated 'prefix,bucket size,window,increment';
-- ARGV[3] = the distinct counts, ';'-separated 'prefix,window,member' (empty member: only read).
-- Returns the values in that order. Prefixes contain neither ',' nor ';'.
local now = tonumber(ARGV[1])
local out = {}
for prefix, size, window, add in string.gmatch(ARGV[2], '([^,;]+),(%d+),(%d+),(%d+)') do
  size, window, add = tonumber(size), tonumber(window), tonumber(add)
  local current = math.floor(now / size)
  local base = prefix .. ':' .. size .. ':'
  if add > 0 then
    redis.call('INCRBY', base .. current, add)
    redis.call('EXPIRE', base .. current, window + size)
  end
  local sum = 0
  for bucket = current - window / size + 1, current do
    local value = redis.call('GET', base .. bucket)
    if value then sum = sum + tonumber(value) end
  end
  out[#out + 1] = sum
end
for prefix, window, member in string.gmatch(ARGV[3], '([^,;]+),(%d+),([^;]*)') do
  window = tonumber(window)
  local key = prefix .. ':' .. window .. ':' .. math.floor(now / window)
  if member ~= '' then
    redis.call('SADD', key, member)
    redis.call('EXPIRE', key, window + 60)
  end
  out[#out + 1] = redis.call('SCARD', key)
end
return out
"""


class RedisStore:
    """The same counters as Redis keys with expiry; one server-side script call per check.

    (Keys are built inside the script, so this store expects a single Redis server, not a cluster.)
    """

    PREFIX = "rempart:sv:"

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self._update = self.client.register_script(_REDIS_UPDATE)

    def update(
        self, counts: list[Count], distincts: list[Distinct], now: float | None = None
    ) -> dict[str, int]:
        now = int(time.time() if now is None else now)
        counted = ";".join(
            f"{self.PREFIX}c:{c.key},{c.window.bucket},{c.window.seconds},{c.add}" for c in counts
        )
        members = ";".join(f"{self.PREFIX}d:{d.key},{d.window.bucket},{d.member or ''}" for d in distincts)
        args = [now, counted, members]
        values = self._update(keys=[], args=args)
        names = [item.name for item in (*counts, *distincts)]
        return {name: int(value) for name, value in zip(names, values, strict=True)}

    def recent(self, key: str, value: str | None, keep: int = 12) -> list[str]:
        list_key = f"{self.PREFIX}r:{key}"
        pipe = self.client.pipeline(transaction=False)
        if value is not None:
            pipe.rpush(list_key, value)
            pipe.ltrim(list_key, -keep, -1)
            pipe.expire(list_key, 86400)
        pipe.lrange(list_key, 0, -1)
        return [item.decode() for item in pipe.execute()[-1]]

    def clear(self) -> None:
        for key in self.client.scan_iter(f"{self.PREFIX}*"):
            self.client.delete(key)


@cache
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


_database_store = DatabaseStore()


def get_store() -> Store:
    if settings.REMPART_SURVEILLANCE_STORE == "redis":
        url = settings.REMPART_SURVEILLANCE_REDIS_URL
        if not url:
            raise RuntimeError(
                "REMPART_SURVEILLANCE_STORE=redis needs REMPART_SURVEILLANCE_REDIS_URL or REMPART_REDIS_URL"
            )
        return _redis_store(url)
    return _database_store
