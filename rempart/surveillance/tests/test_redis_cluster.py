"""Redis Cluster (docs/redis.md): the surveillance counters and Django's cache on a real 3-node cluster that
this module starts (redis-server processes on free 127.0.0.1 ports, in a temporary directory) and always stops.

What must hold: one actor's keys on one slot; a check touching several actors (account, organisation,
address) counts without a CROSSSLOT error; the same sequence of updates gives the same answers on one Redis
server, on the cluster and in the database; ``clear`` reaches every primary; a node down raises the same error
as a single server down, and the gate then behaves the same (no answer, the ledger row kept); allauth's rate
limits work on the cluster cache.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from rempart.surveillance.counters import (
    DAY,
    HOUR,
    MINUTE,
    WEEK,
    Count,
    DatabaseStore,
    Distinct,
    RedisStore,
    get_store,
    hash_tag,
)

SINGLE_URL = "redis://127.0.0.1:6379/10"  # this module's database on the plain server
MIDNIGHT = 1_795_651_200


def _free_port() -> int:
    """A port free on 127.0.0.1 whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port > 55000:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair found")


class LocalCluster:
    """Three primaries, no replicas, nothing written to disk but the nodes' configuration files."""

    def __init__(self, root: Path, size: int = 3, node_timeout_ms: int = 1000) -> None:
        self.root, self.size, self.node_timeout_ms = root, size, node_timeout_ms
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        while len(self.ports) < self.size:
            port = _free_port()
            if port not in self.ports:
                self.ports.append(port)
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            self._wait(lambda p=port: self._cli(p, "ping") == "PONG", f"node {port} answers")
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            self._wait(
                lambda p=port: "cluster_state:ok" in self._cli(p, "cluster", "info"), "cluster_state:ok"
            )

    def _start_node(self, port: int) -> None:
        directory = self.root / str(port)
        directory.mkdir(exist_ok=True)
        log = open(directory / "redis.log", "ab")  # noqa: SIM115 - kept open for the process's life
        self.processes[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", str(self.node_timeout_ms),
             "--dir", str(directory), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    @staticmethod
    def _cli(port: int, *command: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, timeout=5
        )
        return done.stdout.strip()

    @staticmethod
    def _wait(condition, what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise RuntimeError(f"Redis Cluster: timed out waiting for {what}")

    def kill(self, port: int) -> None:
        process = self.processes.pop(port)
        process.kill()
        process.wait(timeout=10)

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)

    def node_of(self, client: RedisCluster, key: str) -> int:
        return client.nodes_manager.get_node_from_slot(client.keyslot(key)).port


def _start_cluster(root: Path) -> LocalCluster:
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server and redis-cli are not installed (apt-get install redis-server)")
    cluster = LocalCluster(root)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One cluster for the module's tests that leave it whole."""
    started = _start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def doomed_cluster(tmp_path):
    """A cluster of its own for a test that kills one of its nodes."""
    started = _start_cluster(tmp_path)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def on_cluster(cluster):
    store = RedisStore(cluster.url, cluster=True)
    store.clear()
    yield store
    store.clear()


@pytest.fixture
def single():
    store = RedisStore(SINGLE_URL)
    store.clear()
    yield store
    store.clear()


def _actors_on_distinct_nodes(cluster: LocalCluster, client: RedisCluster) -> tuple[str, str, str]:
    """An account, an organisation and an address whose hash tags live on three different nodes."""
    found: dict[int, dict[str, str]] = {}
    for i in range(1, 500):
        for kind, key in (("u", f"u:{i}"), ("o", f"o:{i}"), ("ip", f"ip:2001:db8::{i:x}")):
            found.setdefault(cluster.node_of(client, "{" + hash_tag(key) + "}"), {}).setdefault(kind, key)
    nodes = sorted(found)
    return found[nodes[0]]["u"], found[nodes[1]]["o"], found[nodes[2]]["ip"]


# --- keys and slots -------------------------------------------------------------------------------------


def test_the_hash_tag_is_the_actor():
    assert hash_tag("u:12") == hash_tag("u:12:miss") == hash_tag("u:12:confirmed") == "u:12"
    assert hash_tag("t:7:adherents") == "t:7" and hash_tag("o:None") == "o:None"
    assert hash_tag("ip:192.0.2.1:miss") == "ip:192.0.2.1"
    assert hash_tag("ip:2001:db8::cafe:miss") == hash_tag("ip:2001:db8::cafe") == "ip:2001:db8::cafe"
    assert hash_tag("ip:::ffff:192.0.2.1:miss") == "ip:::ffff:192.0.2.1"
    assert hash_tag("u:{1}:x") == "u:(1)"  # a brace would end Redis's tag early


def test_every_key_of_one_actor_is_on_one_slot(on_cluster, cluster):
    store, client = on_cluster, on_cluster.client
    store.update(
        [Count("u:12", MINUTE), Count("u:12", HOUR), Count("u:12:miss", HOUR), Count("u:12:new", WEEK)],
        [Distinct("u:12:confirmed", "42", (HOUR, DAY))],
        now=MIDNIGHT,
    )
    store.recent("u:12:adherents", "A-0001")
    keys = [k.decode() for node in client.get_primaries() for k in client.scan_iter(target_nodes=node)]
    assert len(keys) == 8 and all("{u:12}" in k for k in keys), keys
    slots = {client.cluster_keyslot(k) for k in keys}  # asked of the server: CLUSTER KEYSLOT
    assert slots == {client.cluster_keyslot("u:12")}


def test_a_check_touching_three_actors_on_three_nodes_counts_without_crossslot(on_cluster, cluster):
    store, client = on_cluster, on_cluster.client
    account, organisation, address = _actors_on_distinct_nodes(cluster, client)
    counts = [Count(account, MINUTE), Count(account, HOUR), Count(organisation, DAY),
              Count(f"{account}:miss", HOUR), Count(f"{address}:miss", HOUR)]  # fmt: skip
    distincts = [Distinct(f"{account}:confirmed", "7", (HOUR, DAY))]

    def evalsha_calls() -> int:
        stats = client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        return sum(s.get("cmdstat_evalsha", {}).get("calls", 0) for s in stats.values())

    before = evalsha_calls()
    for n in (1, 2):
        values = store.update(counts, distincts, now=MIDNIGHT + n)
        assert values[f"{account}|minute"] == n and values[f"{organisation}|day"] == n
        assert values[f"{address}:miss|hour"] == n and values[f"{account}:miss|hour"] == n
        assert values[f"{account}:confirmed|distinct|day"] == 1
        assert values[f"{account}:confirmed|distinct|day|fresh"] == int(n == 1)
    assert evalsha_calls() - before == 2 * 3  # one script call per actor, no more

    # Why the split: the same keys in one script call are refused by the cluster.
    with pytest.raises((RedisClusterException, ResponseError)):
        store._update(
            keys=[f"rempart:sv:{{{account}}}:c:x", f"rempart:sv:{{{organisation}}}:c:x"], args=[1, "", ""]
        )


def test_the_configuration_switch_gives_the_cluster_store(settings, cluster):
    settings.REMPART_SURVEILLANCE_STORE = "redis"
    settings.REMPART_SURVEILLANCE_REDIS_URL = cluster.url
    settings.REMPART_REDIS_CLUSTER = True
    store = get_store()
    assert isinstance(store.client, RedisCluster)
    try:
        assert store.update([Count("u:switch", MINUTE)], [], now=MIDNIGHT)["u:switch|minute"] == 1
    finally:
        store.clear()


# --- the same answers everywhere ------------------------------------------------------------------------


@pytest.mark.parametrize("window", [MINUTE, HOUR, DAY, WEEK], ids=lambda w: w.name)
def test_sliding_windows_on_the_cluster(on_cluster, window):
    key = f"u:align-{window.name}"
    start = MIDNIGHT - window.seconds // 2 + 1
    instants = [start + round(i * window.seconds / 9) for i in range(10)]
    values = [on_cluster.update([Count(key, window)], [], now=t)[f"{key}|{window.name}"] for t in instants]
    assert values == list(range(1, 11))
    read = Count(key, window, add=0)
    assert on_cluster.update([read], [], now=instants[-1] + window.seconds + window.bucket)[read.name] == 0


def test_distinct_counts_on_the_cluster(on_cluster):
    key = "u:people"

    def see(member, t):
        v = on_cluster.update([Count("o:3", DAY)], [Distinct(key, member, (HOUR, DAY))], now=t)
        return v[f"{key}|distinct|hour"], v[f"{key}|distinct|hour|fresh"], v[f"{key}|distinct|day"]

    t = MIDNIGHT - 30
    assert see("a", t) == (1, 1, 1)
    assert see("b", t + 10) == (2, 1, 2)
    assert see("a", t + 60) == (2, 0, 2)
    assert see("a", t + 3600 + 60) == (1, 1, 2)
    assert see("a", t + 86400 + 3600 + 120) == (1, 1, 1)


ACTORS = ["u:1", "t:2", "o:3", "ip:192.0.2.9", "ip:2001:db8::1"]
SUFFIXES = ["", ":miss", ":new", ":blocked"]
DISTINCT_WINDOWS = {"u:1:confirmed": (HOUR, DAY), "t:2:confirmed": (HOUR,), "o:3:seen": (MINUTE, HOUR, WEEK)}
# One call never names a counter twice: the database store's upsert cannot (the engine never does).
update_step = st.tuples(
    st.integers(0, 4000),  # seconds since the previous update
    st.lists(
        st.tuples(
            st.sampled_from(ACTORS),
            st.sampled_from(SUFFIXES),
            st.sampled_from([MINUTE, HOUR, DAY, WEEK]),
            st.integers(0, 3),
        ),
        max_size=6,
        unique_by=lambda c: (c[0] + c[1], c[2].name),
    ),
    st.lists(
        st.tuples(st.sampled_from(sorted(DISTINCT_WINDOWS)), st.none() | st.sampled_from("abcdef")),
        max_size=3,
        unique_by=lambda d: d[0],
    ),
)


@pytest.mark.django_db
@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(update_step, min_size=1, max_size=25))
def test_the_same_updates_give_the_same_answers_on_one_server_the_cluster_and_the_database(
    steps, single, on_cluster
):
    stores = {"single": single, "cluster": on_cluster, "database": DatabaseStore()}
    for store in stores.values():
        store.clear()
    now = MIDNIGHT - 7 * 86400
    for gap, counted, seen in steps:
        now += gap
        counts = [Count(actor + suffix, window, add) for actor, suffix, window, add in counted]
        distincts = [Distinct(key, member, DISTINCT_WINDOWS[key]) for key, member in seen]
        answers = {name: store.update(counts, distincts, now=now) for name, store in stores.items()}
        assert answers["single"] == answers["cluster"] == answers["database"], (now, counts, distincts)


def test_recent_on_the_cluster(on_cluster):
    for n in range(15):
        history = on_cluster.recent("u:5:adherents", f"A-{n:04d}", keep=12)
    assert history == [f"A-{n:04d}" for n in range(3, 15)]
    assert on_cluster.recent("u:5:adherents", None) == history


def test_clear_reaches_every_primary(on_cluster, cluster):
    store, client = on_cluster, on_cluster.client
    account, organisation, address = _actors_on_distinct_nodes(cluster, client)
    store.update(
        [Count(account, MINUTE), Count(organisation, DAY), Count(f"{address}:miss", HOUR)], [], now=MIDNIGHT
    )
    client.set("not-ours", "1")  # a key of someone else: left alone
    per_node = {n.port: client.dbsize(target_nodes=n) for n in client.get_primaries()}
    assert sorted(per_node.values())[0] >= 1 and sum(per_node.values()) == 4, per_node
    store.clear()
    keys = [k for node in client.get_primaries() for k in client.scan_iter(target_nodes=node)]
    assert keys == [b"not-ours"]
    client.delete("not-ours")


def test_a_node_that_forgot_the_script_counts_once(on_cluster, cluster):
    """A node restarted (its script cache empty) answers NOSCRIPT: the script is loaded and that call sent
    again; the calls that did run are not repeated."""
    store, client = on_cluster, on_cluster.client
    account, organisation, address = _actors_on_distinct_nodes(cluster, client)
    counts = [Count(account, MINUTE), Count(organisation, DAY), Count(f"{address}:miss", HOUR)]
    store.update(counts, [], now=MIDNIGHT)
    client.get_node_from_key("{" + organisation + "}").redis_connection.script_flush()
    values = store.update(counts, [], now=MIDNIGHT + 1)
    assert values == {f"{account}|minute": 2, f"{organisation}|day": 2, f"{address}:miss|hour": 2}


# --- a node down ----------------------------------------------------------------------------------------


@pytest.mark.slow  # a cluster of its own, then a node's failure detected
def test_a_node_down_raises_as_a_single_server_down(doomed_cluster):
    store = RedisStore(doomed_cluster.url, cluster=True)
    account, organisation, _ = _actors_on_distinct_nodes(doomed_cluster, store.client)
    store.update([Count(account, MINUTE), Count(organisation, DAY)], [], now=MIDNIGHT)
    dead = doomed_cluster.node_of(store.client, "{" + organisation + "}")
    doomed_cluster.kill(dead)

    with pytest.raises(redis.exceptions.RedisError) as on_one_server:
        RedisStore(f"redis://127.0.0.1:{dead}").update([Count(organisation, DAY)], [], now=MIDNIGHT)
    started = time.monotonic()
    with pytest.raises(redis.exceptions.RedisError) as on_the_cluster:
        store.update([Count(account, MINUTE), Count(organisation, DAY)], [], now=MIDNIGHT + 1)
    assert time.monotonic() - started < 10  # an outage is seen at once, not after minutes of retries
    assert type(on_the_cluster.value) is type(on_one_server.value) is redis.exceptions.ConnectionError

    # Once the cluster has marked the node failed, the live nodes refuse too (no partial counts): still a
    # RedisError, which surveillance treats as an outage of its store.
    live = next(p for p in doomed_cluster.ports if p != dead)
    doomed_cluster._wait(
        lambda: "cluster_state:fail" in doomed_cluster._cli(live, "cluster", "info"), "cluster_state:fail"
    )
    with pytest.raises(redis.exceptions.RedisError):
        store.update([Count(account, MINUTE)], [], now=MIDNIGHT + 2)


@pytest.mark.slow
@pytest.mark.django_db
def test_a_check_with_a_node_down_is_refused_like_with_redis_down_and_its_row_stays(
    doomed_cluster, cast, population, settings
):
    """The gate with its counters unreachable: the answer is not given (the error reaches the caller), the
    disclosure stays recorded, whether the counters are one server or a cluster with a node down."""
    from rempart.gate import check_rights
    from rempart.incidents.tests.conftest import actor_for, card_of
    from rempart.ledger.models import Disclosure
    from rempart.surveillance.actors import actor_key

    settings.REMPART_SURVEILLANCE_ENABLED = True
    settings.REMPART_SURVEILLANCE_STORE = "redis"
    actor = actor_for(cast.staff)
    row = population.people[cast.insurer.insurer.pk][0]

    def attempt(url: str, cluster: bool) -> type[BaseException]:
        settings.REMPART_SURVEILLANCE_REDIS_URL, settings.REMPART_REDIS_CLUSTER = url, cluster
        before = Disclosure.objects.count()
        with pytest.raises(Exception) as refused:
            check_rights(actor, card_of(row, "OPTI"))
        assert Disclosure.objects.count() == before + 1  # the row is kept: what was disclosed is known
        return type(refused.value)

    client = RedisCluster.from_url(doomed_cluster.url)
    doomed_cluster.kill(doomed_cluster.node_of(client, "{" + hash_tag(actor_key(actor)) + "}"))
    client.close()
    closed = _free_port()
    try:
        assert attempt(doomed_cluster.url, True) is attempt(f"redis://127.0.0.1:{closed}", False)
    finally:
        settings.REMPART_SURVEILLANCE_STORE = "database"  # nothing left to clear on a store that is down


# --- Django's cache on the cluster -----------------------------------------------------------------------


@pytest.fixture
def cluster_cache(settings, cluster):
    from django.core.cache import cache

    settings.CACHES = {
        "default": {"BACKEND": "rempart.lib.redis_cache.RedisClusterCache", "LOCATION": cluster.url}
    }
    cache.clear()
    yield cache
    cache.clear()


def test_the_cache_operations_on_the_cluster(cluster_cache, cluster):
    from django.core.cache import caches

    from rempart.lib.redis_cache import RedisClusterCache

    cache = cluster_cache

    assert isinstance(caches["default"], RedisClusterCache)
    assert cache.add("lock", True, timeout=5) is True and cache.add("lock", True, timeout=5) is False
    cache.set("history", [1.5, 2.5], 60)
    assert cache.get("history") == [1.5, 2.5] and cache.get("absent", "default") == "default"
    cache.set("n", 1)
    assert cache.incr("n", 4) == 5
    with pytest.raises(ValueError):
        cache.incr("never-set")
    assert cache.touch("n", 30) and cache.has_key("n")
    assert cache.delete("lock") is True and cache.get("lock") is None
    data = {f"k{i}": {"i": i} for i in range(30)}
    cache.set_many(data, 60)
    client = caches["default"]._cache.get_client()
    holding = {n.port for n in client.get_primaries() if client.dbsize(target_nodes=n)}
    assert len(holding) == 3  # the keys are spread over the nodes, and read back across them
    assert cache.get_many(list(data) + ["absent"]) == data
    cache.delete_many([f"k{i}" for i in range(10)])
    assert set(cache.get_many(list(data))) == {f"k{i}" for i in range(10, 30)}
    cache.set_many({"gone": 1}, 0)
    assert cache.get("gone") is None
    cache.clear()
    assert sum(client.dbsize(target_nodes=n) for n in client.get_primaries()) == 0


def test_allauth_rate_limits_failed_logins_on_the_cluster_cache(cluster_cache, cast, client):
    """allauth's login_failed limit (10 per 5 minutes per login) keeps its history in the cache: on the
    cluster, the failures are recorded there, and the next try is refused even with the right password."""
    from rempart.testing import PASSWORD

    for _ in range(10):
        response = client.post("/accounts/login/", {"login": cast.staff.email, "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    refused = client.post("/accounts/login/", {"login": cast.staff.email, "password": PASSWORD})
    assert not (refused.status_code == 302 and "/accounts/2fa/" in refused.url)
    backend = cluster_cache._cache
    cluster = backend.get_client()
    keys = [k for n in cluster.get_primaries() for k in cluster.scan_iter(target_nodes=n)]
    per_login = [k for k in keys if b"login_failed:10/" in k]
    assert len(per_login) == 1, keys
    history = backend._serializer.loads(cluster.get(per_login[0]))
    # Rempart's own login throttle (database rows) stops the form first; each failure allauth saw is there.
    assert history and all(abs(t - time.time()) < 120 for t in history)
