"""Every counter slides: N + 1 hits within any window's span are always seen, whatever the alignment.

Played on both stores (database and Redis) at instants chosen around bucket and clock boundaries
(hh:00, midnight UTC), where fixed windows used to restart.
"""

import pytest

from rempart.surveillance.counters import DAY, HOUR, MINUTE, WEEK, Count, Distinct, Window, get_store

pytestmark = pytest.mark.django_db

MIDNIGHT = 1_795_651_200  # a UTC midnight (2026-11-26), so also an hour and a bucket boundary of every window
WINDOWS = [MINUTE, HOUR, DAY, WEEK]


def _offsets(window: Window) -> list[int]:
    """Starting points: on a bucket boundary, just after, just before, and halfway through a bucket."""
    return [0, 1, window.bucket - 1, window.bucket // 2]


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_hits_within_the_span_are_all_counted_whatever_the_alignment(store, window):
    counts = get_store()
    for n, offset in enumerate(_offsets(window)):
        key = f"u:align-{window.name}-{n}"
        start = MIDNIGHT - window.seconds // 2 + offset  # the span straddles midnight (and hh:00)
        instants = [start + round(i * window.seconds / 9) for i in range(10)]  # 10 hits, first to last = span
        assert instants[-1] - instants[0] == window.seconds
        values = [counts.update([Count(key, window)], [], now=t)[f"{key}|{window.name}"] for t in instants]
        assert values == list(range(1, 11)), (offset, values)


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w.name)
def test_a_hit_is_forgotten_at_most_one_bucket_after_the_span(store, window):
    counts = get_store()
    key = f"u:forget-{window.name}"
    start = MIDNIGHT + 1
    counts.update([Count(key, window)], [], now=start)
    read = Count(key, window, add=0)
    assert counts.update([read], [], now=start + window.seconds)[read.name] == 1
    assert counts.update([read], [], now=start + window.seconds + window.bucket)[read.name] == 0


def test_the_clock_hour_no_longer_restarts_a_count(store):
    """The measured gap: 30 at hh:50-hh:59 and 30 at hh:00-hh:09 were 30 per clock hour, now 60 in 20 minutes."""
    counts = get_store()
    key = "u:boundary"
    value = 0
    for i in range(60):
        t = MIDNIGHT - 600 + i * 20
        value = counts.update([], [Distinct(key, f"person-{i}", (HOUR, DAY))], now=t)[f"{key}|distinct|hour"]
    assert value == 60


def test_distinct_counts_count_people_once_and_again_after_a_pause_of_the_window(store):
    counts = get_store()
    key = "u:people"

    def see(member, t):
        values = counts.update([], [Distinct(key, member, (HOUR, DAY))], now=t)
        return (
            values[f"{key}|distinct|hour"],
            values[f"{key}|distinct|hour|fresh"],
            values[f"{key}|distinct|day"],
            values[f"{key}|distinct|day|fresh"],
        )

    t = MIDNIGHT - 30
    assert see("a", t) == (1, 1, 1, 1)
    assert see("b", t + 10) == (2, 1, 2, 1)
    assert see("a", t + 60) == (2, 0, 2, 0)  # the same person again: not a new one
    # An hour later: "a" is fresh for the hour (b, seen over an hour ago, has left it), the same day's person.
    assert see("a", t + 3600 + 60) == (1, 1, 2, 0)
    assert see("a", t + 86400 + 3600 + 120) == (1, 1, 1, 1)  # a day later: fresh for both windows
    read = counts.update([], [Distinct(key, None, (HOUR, DAY))], now=t + 86400 + 3600 + 130)
    assert read[f"{key}|distinct|hour"] == 1 and read[f"{key}|distinct|hour|fresh"] == 0


def test_several_counters_in_one_call_do_not_mix(store):
    counts = get_store()
    values = counts.update(
        [Count("u:x", MINUTE), Count("u:x", HOUR), Count("u:y", MINUTE, add=3)],
        [Distinct("u:x:confirmed", "1", (HOUR, DAY)), Distinct("u:y:confirmed", "1", (HOUR,))],
        now=MIDNIGHT,
    )
    assert values["u:x|minute"] == 1 and values["u:x|hour"] == 1 and values["u:y|minute"] == 3
    assert values["u:x:confirmed|distinct|day"] == 1 and values["u:y:confirmed|distinct|hour"] == 1


def test_a_distinct_window_longer_than_the_memory_is_refused():
    with pytest.raises(ValueError):
        Distinct("u:z", "1", (Window("month", 30 * 86400, 86400),))


def test_redis_counts_one_check_in_one_call(settings):
    settings.REMPART_SURVEILLANCE_STORE = "redis"
    settings.REMPART_SURVEILLANCE_REDIS_URL = "redis://127.0.0.1:6379/15"
    counts = get_store()
    counts.clear()
    counts.update([Count("u:calls", MINUTE)], [], now=MIDNIGHT)  # loads the script
    calls = []
    original = counts.client.execute_command

    def counted(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    counts.client.execute_command = counted
    try:
        counts.update(
            [Count("u:calls", MINUTE), Count("u:calls", HOUR), Count("o:1", DAY), Count("u:calls:new", WEEK)],
            [Distinct("u:calls:confirmed", "42", (HOUR, DAY))],
            now=MIDNIGHT + 5,
        )
    finally:
        del counts.client.execute_command
        counts.clear()
    assert calls == ["EVALSHA"]


def test_the_database_store_purges_what_no_window_reads(db):
    from rempart.surveillance.counters import DatabaseStore
    from rempart.surveillance.models import Counter, SeenMember

    counts = DatabaseStore()
    counts.update([Count("u:old", WEEK)], [Distinct("u:old", "1", (DAY,))], now=MIDNIGHT)
    counts.update([Count("u:new", WEEK)], [Distinct("u:new", "1", (DAY,))], now=MIDNIGHT + 9 * 86400)
    counts.purge(MIDNIGHT + 9 * 86400 + 1)
    assert not Counter.objects.filter(key__startswith="u:old").exists()
    assert not SeenMember.objects.filter(key="u:old").exists()
    assert Counter.objects.filter(key__startswith="u:new").exists() and SeenMember.objects.filter(key="u:new")
