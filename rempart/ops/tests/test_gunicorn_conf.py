"""deploy/gunicorn.conf.py: every name is one gunicorn knows (it ignores the others silently), values come from
the environment, and the hooks are safe in the master (never raise, delete only prometheus-client's files)."""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "deploy" / "gunicorn.conf.py"
HELPERS = {"annotations", "os", "Path"}


def load(monkeypatch, **env) -> dict:
    for name in [n for n in os.environ if n.startswith("REMPART_WEB_") or n == "REMPART_FORWARDED_ALLOW_IPS"]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(CONF))


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, tuple]] = []

    def info(self, message, *args):
        self.lines.append(("info", args))

    def exception(self, message, *args):
        self.lines.append(("exception", args))


def server() -> types.SimpleNamespace:
    return types.SimpleNamespace(log=Log())


def test_every_setting_is_a_gunicorn_setting_of_the_right_type(monkeypatch):
    namespace = load(monkeypatch)
    cfg = Config()
    names = {n for n in namespace if not n.startswith("_") and n not in HELPERS}
    unknown = names - set(cfg.settings)
    assert not unknown, f"gunicorn would ignore these silently: {unknown}"
    for name in names:
        cfg.set(name, namespace[name])  # gunicorn's own validators: a wrong type raises
    assert cfg.worker_class_str == "gthread"
    assert cfg.accesslog is None  # the app writes one JSON line per request itself
    assert callable(cfg.settings["child_exit"].get()) and callable(cfg.settings["on_starting"].get())


def test_values_come_from_the_environment(monkeypatch):
    namespace = load(
        monkeypatch,
        REMPART_WEB_BIND="10.0.0.5:8000, unix:/run/rempart-web/gunicorn.sock",
        REMPART_WEB_WORKERS="6",
        REMPART_WEB_THREADS="1",
        REMPART_WEB_TIMEOUT="20",
        REMPART_FORWARDED_ALLOW_IPS="10.0.1.10,10.0.1.11",
    )
    assert namespace["bind"] == ["10.0.0.5:8000", "unix:/run/rempart-web/gunicorn.sock"]
    assert (namespace["workers"], namespace["threads"], namespace["worker_class"]) == (6, 1, "sync")
    assert namespace["timeout"] == 20
    assert namespace["forwarded_allow_ips"] == "10.0.1.10,10.0.1.11"


def test_defaults_trust_only_this_machine_and_listen_only_on_it(monkeypatch):
    namespace = load(monkeypatch)
    assert namespace["bind"] == ["127.0.0.1:8000"]
    assert "*" not in namespace["forwarded_allow_ips"]
    assert namespace["timeout"] <= 60 and namespace["max_requests"] > 0


def test_on_starting_empties_only_the_metrics_files(monkeypatch, tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"stale")
    (directory / "notes.txt").write_text("not ours")
    outside = tmp_path / "precious.db"
    outside.write_bytes(b"keep")
    (directory / "link.db").symlink_to(outside)
    namespace = load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(directory))
    namespace["on_starting"](server())
    assert sorted(p.name for p in directory.iterdir()) == ["link.db", "notes.txt"]
    assert outside.read_bytes() == b"keep"


def test_on_starting_creates_the_directory_and_does_nothing_without_one(monkeypatch, tmp_path):
    directory = tmp_path / "run" / "metrics"
    namespace = load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(directory))
    namespace["on_starting"](server())
    assert directory.is_dir() and oct(directory.stat().st_mode)[-3:] == "700"
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    namespace["on_starting"](server())  # no directory configured: nothing to do, nothing raised


def test_child_exit_calls_the_ops_hook(monkeypatch):
    from rempart.ops import metrics

    calls = []
    monkeypatch.setattr(metrics, "gunicorn_child_exit", lambda srv, worker: calls.append(worker.pid))
    namespace = load(monkeypatch)
    namespace["child_exit"](server(), types.SimpleNamespace(pid=4242))
    assert calls == [4242]


def test_child_exit_survives_a_failing_hook(monkeypatch):
    from rempart.ops import metrics

    def broken(srv, worker):
        raise OSError("disk full")

    monkeypatch.setattr(metrics, "gunicorn_child_exit", broken)
    namespace = load(monkeypatch)
    srv = server()
    namespace["child_exit"](srv, types.SimpleNamespace(pid=4242))  # the master goes on
    assert srv.log.lines == [("exception", (4242,))]


def test_child_exit_without_the_ops_module_cleans_up_directly(monkeypatch, tmp_path):
    """An older release (no rempart.ops.metrics): prometheus-client is asked directly; live gauges go."""
    monkeypatch.setitem(sys.modules, "rempart.ops.metrics", None)  # import now raises ImportError
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "gauge_livesum_7.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")
    namespace = load(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    srv = server()
    namespace["child_exit"](srv, types.SimpleNamespace(pid=4242))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db", "gauge_livesum_7.db"]
    assert srv.log.lines == []
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    namespace["child_exit"](srv, types.SimpleNamespace(pid=1))  # neither module nor directory: a no-op


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status
    except OSError:
        return 0


def _children(pid: int) -> list[str]:
    return subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_gunicorn_starts_with_it_and_outlives_a_killed_worker(tmp_path):
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"from a previous run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMPART_", "DATABASE_URL"))}
    env.update(
        REMPART_VAR_DIR=str(tmp_path / "var"),
        REMPART_WEB_BIND=f"127.0.0.1:{port}",
        REMPART_WEB_WORKERS="2",
        REMPART_WEB_THREADS="2",
        REMPART_WEB_TMP_DIR=str(tmp_path),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        DJANGO_SETTINGS_MODULE="rempart.settings",
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        assert _wait_for(lambda: _get(url) == 200, 30), "gunicorn did not answer"
        assert not (metrics_dir / "counter_1.db").exists()  # the previous run's file went at start
        workers = _children(master.pid)
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)
        replaced = _wait_for(lambda: len(now := _children(master.pid)) == 2 and workers[0] not in now, 20)
        assert replaced, "the killed worker was not replaced"
        assert master.poll() is None and _get(url) == 200
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait(timeout=10)
    stderr = log_path.read_text(errors="replace")
    assert "Booting worker" in stderr
    assert "child_exit: metrics clean-up" not in stderr, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]


METRICS_TOKEN = "t" * 40
HEALTHZ_COUNT = "rempart_http_request_duration_seconds_count"


def _fetch(url: str, token: str | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _healthz_count(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == HEALTHZ_COUNT and s.labels.get("route") == "healthz"
    )


def _healthz_count_in_files(paths: list[Path]) -> float:
    """What one process's own files say (a scrape adds every process's files up)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    return sum(
        s.value
        for metric in MultiProcessCollector.merge([str(p) for p in paths if p.exists()])
        for s in metric.samples
        if s.name == HEALTHZ_COUNT and s.labels.get("route") == "healthz"
    )


@pytest.mark.slow
def test_metrics_under_gunicorn_add_up_both_workers_and_keep_a_dead_ones_counts(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMPART_", "DATABASE_URL"))}
    env.update(
        REMPART_VAR_DIR=str(tmp_path / "var"),
        REMPART_WEB_BIND=f"127.0.0.1:{port}",
        REMPART_WEB_WORKERS="2",
        REMPART_WEB_THREADS="2",
        REMPART_WEB_TMP_DIR=str(tmp_path),
        REMPART_METRICS_TOKEN=METRICS_TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        DJANGO_SETTINGS_MODULE="rempart.settings",
    )
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        master = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(CONF)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def healthz(_n=None) -> int:
        """1 per answered request (a new connection each time: the kernel spreads them over the workers).

        A generous timeout: a request given up on by the client while the server answers it anyway would
        be counted by the server and not here."""
        with urllib.request.urlopen(f"{base}/healthz", timeout=60) as response:  # noqa: S310 - 127.0.0.1
            return 1 if response.status == 200 else 0

    try:
        assert _wait_for(lambda: _get(f"{base}/healthz") == 200, 30), "gunicorn did not answer"
        # The probes that timed out while the workers booted were still answered once one took them from
        # the listen queue: counted by the server, not here. Start from what the files say.
        time.sleep(1)
        answered = _healthz_count_in_files(list(metrics_dir.glob("*.db")))
        workers = _children(master.pid)
        assert len(workers) == 2

        def files(pid: str) -> list[Path]:
            return [metrics_dir / f"histogram_{pid}.db", metrics_dir / f"counter_{pid}.db"]

        # Requests until each worker has answered some (at most 20 rounds of 40).
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _round in range(20):
                answered += sum(pool.map(healthz, range(40)))
                if all(_healthz_count_in_files(files(pid)) > 0 for pid in workers):
                    break
        per_worker = {pid: _healthz_count_in_files(files(pid)) for pid in workers}
        assert all(count > 0 for count in per_worker.values()), per_worker
        assert sum(per_worker.values()) == answered

        # Without the token: the site's 404, nothing shown.
        status, _headers, body = _fetch(f"{base}/metrics")
        assert status == 404 and b"rempart_" not in body
        # With it: one scrape, answered by one worker, shows both workers' requests added up.
        status, headers, body = _fetch(f"{base}/metrics", METRICS_TOKEN)
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert _healthz_count(body.decode()) == answered
        assert not any(ch.isdigit() for ch in headers.get("Server", "")), headers.get("Server")

        # A worker dies: gunicorn replaces it, and its counts stay in every later scrape, folded.
        dead = workers[0]
        os.kill(int(dead), signal.SIGKILL)
        assert _wait_for(lambda: len(now := _children(master.pid)) == 2 and dead not in now, 20)
        assert _wait_for(lambda: not any(p.exists() for p in files(dead)), 10), "dead worker's files left"
        assert (metrics_dir / "counter_compacted.db").exists()
        assert (metrics_dir / "histogram_compacted.db").exists()
        answered += sum(healthz() for _ in range(5))
        status, _headers, body = _fetch(f"{base}/metrics", METRICS_TOKEN)
        assert status == 200 and _healthz_count(body.decode()) == answered
    finally:
        master.send_signal(signal.SIGTERM)
        try:
            master.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(master.pid, signal.SIGKILL)
            master.wait(timeout=10)
    stderr = log_path.read_text(errors="replace")
    assert "child_exit: metrics clean-up" not in stderr, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
