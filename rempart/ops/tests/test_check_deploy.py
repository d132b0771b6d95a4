"""``rempart check-deploy``: the demo fails with the expected ids, a production configuration passes, and each
production setting put back to a wrong value fails on its own id (and only on it, or Django's twin of it)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError

from rempart.ops import deploy_checks

ROOT = Path(__file__).resolve().parents[3]
SECRET_SETTINGS = deploy_checks.SECRET_SETTINGS


def _key() -> str:
    import base64

    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def production(settings, monkeypatch, tmp_path):
    """Everything as production wants it; the services answer (probes replaced)."""
    values = {
        "REMPART_SECRET_KEY": secrets.token_urlsafe(50),
        "REMPART_DATA_KEYS": f"1:{_key()}",
        "REMPART_BLIND_INDEX_KEY": _key(),
        "REMPART_LEDGER_SIGNING_KEY": _key(),
    }
    for env_name, value in values.items():
        monkeypatch.setenv(env_name, value)
        setattr(settings, SECRET_SETTINGS[env_name], value)
    settings.VAR_DIR = tmp_path
    settings.REMPART_ENV = "production"
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["rempart.example.org"]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.REMPART_TRUSTED_PROXY_COUNT = 1
    settings.REMPART_BASE_URL = "https://rempart.example.org"
    settings.REDIS_URL = "redis://redis.internal:6379/0"
    settings.REMPART_SURVEILLANCE_STORE = "redis"
    settings.REMPART_SURVEILLANCE_REDIS_URL = "redis://redis.internal:6379/1"
    settings.REMPART_TASKS_BACKEND = "rq"
    settings.REMPART_RQ_URL = "redis://redis.internal:6379/2"
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "django_rq"]  # as settings.py does for rq
    settings.RQ_QUEUES = {"default": {"URL": settings.REMPART_RQ_URL, "DEFAULT_TIMEOUT": 3600}}
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "Rempart <no-reply@rempart.example.org>"
    settings.REMPART_PAYMENTS_DEBTOR = {
        "name": "Opérateur",
        "iban": "FR1420041010050500013M02606",
        "bic": "PSSTFRPP",
    }
    settings.REMPART_BILLING_CREDITOR_ID = "FR98ZZZ999999"
    settings.REMPART_METRICS_TOKEN = secrets.token_urlsafe(32)
    settings.REMPART_METRICS_ALLOW_NETS = []
    settings.REMPART_JOBS_EAGER = False
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    probes = {"redis": [], "workers": [{"worker_id": "w-1", "host": "app1"}]}
    monkeypatch.setattr(deploy_checks, "redis_problem", lambda url: probes["redis"].append(url) or None)
    monkeypatch.setattr(deploy_checks, "live_workers", lambda: probes["workers"])
    monkeypatch.setattr(deploy_checks, "database_vendor", lambda: "postgresql")
    monkeypatch.setattr(
        deploy_checks,
        "database_state",
        lambda: {"pending": 0, "superuser": False, "owner": False, "can_change_ledger": False},
    )
    return {"settings": settings, "secrets": values, "probes": probes}


def ids(outcome: dict) -> set[str]:
    return {problem.id for problem in outcome["problems"]}


def test_a_production_configuration_passes(production):
    outcome = deploy_checks.run()
    assert outcome["problems"] == [], [p.line() for p in outcome["problems"]]
    assert outcome["ok"]
    # HSTS for subdomains and preload are accepted, with a reason, and said so
    assert {item["id"] for item in outcome["accepted"]} == {"security.W005", "security.W021"}
    # every Redis the configuration names was asked, each once
    assert sorted(production["probes"]["redis"]) == [
        "redis://redis.internal:6379/0",
        "redis://redis.internal:6379/1",
        "redis://redis.internal:6379/2",
    ]


def test_the_command_exits_zero_and_says_ok_in_production(production, capsys):
    call_command("check_deploy")
    assert "OK: ready for production." in capsys.readouterr().out
    call_command("check_deploy", "--json")
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and document["problems"] == []


def test_the_demo_fails_with_the_expected_ids(db, settings, capsys):
    with pytest.raises(CommandError) as failure:
        call_command("check_deploy", "--json")
    assert failure.value.returncode == 1
    found = {problem["id"] for problem in json.loads(capsys.readouterr().out)["problems"]}
    expected = {
        "rempart.E001",  # REMPART_ENV
        "rempart.E007",  # no HTTPS
        "rempart.E008",  # http:// base URL
        "rempart.E014",  # counters in the database
        "rempart.E021",  # console email
        "rempart.E023",  # demo debtor IBAN
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    }
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        expected.add("rempart.E010")
    assert expected <= found, expected - found


@pytest.mark.slow
def test_the_real_command_on_the_demo_exits_one_and_prints_no_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REMPART_", "DATABASE_URL"))}
    env["REMPART_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "check_deploy"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert "rempart.E001: REMPART_ENV is 'demo'" in result.stdout
    assert all(line.split(":", 1)[0].startswith(("rempart.", "security.", "accepted ")) for line in lines), (
        lines
    )
    assert (
        sum(line.startswith("rempart.E003") for line in lines) == 4
    )  # the four secrets, from var/secrets.env
    demo_secrets = [
        line.partition("=")[2] for line in (tmp_path / "secrets.env").read_text().splitlines() if "=" in line
    ]
    assert demo_secrets and not any(value in result.stdout + result.stderr for value in demo_secrets)
    assert "problem(s)" in result.stderr


# One wrong setting at a time: its id, and nothing else but Django's own twin of the same problem.
WRONG = [
    ("REMPART_ENV", "demo", "rempart.E001", set()),
    ("DEBUG", True, "rempart.E002", {"security.W018"}),
    ("ALLOWED_HOSTS", ["*"], "rempart.E005", set()),
    ("ALLOWED_HOSTS", [], "rempart.E005", {"security.W020"}),
    ("ALLOWED_HOSTS", ["localhost", "127.0.0.1"], "rempart.W006", set()),
    ("SESSION_COOKIE_SECURE", False, "rempart.E007", {"security.W012"}),
    ("CSRF_COOKIE_SECURE", False, "rempart.E007", {"security.W016"}),
    ("SECURE_SSL_REDIRECT", False, "rempart.E007", {"security.W008"}),
    ("SECURE_HSTS_SECONDS", 3600, "rempart.E007", set()),
    ("REMPART_BASE_URL", "http://rempart.example.org", "rempart.E008", set()),
    ("REMPART_TRUSTED_PROXY_COUNT", 0, "rempart.W009", set()),
    ("REMPART_SURVEILLANCE_STORE", "database", "rempart.E014", set()),
    ("REDIS_URL", None, "rempart.W015", set()),
    (
        "TASKS",
        {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}},
        "rempart.E017",
        set(),
    ),
    ("TASKS", {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}, "rempart.E017", set()),
    ("TASKS", {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}, "rempart.W018", set()),
    ("REMPART_JOBS_EAGER", True, "rempart.E027", set()),
    ("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend", "rempart.E021", set()),
    ("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend", "rempart.E021", set()),
    ("DEFAULT_FROM_EMAIL", "Rempart <no-reply@rempart.invalid>", "rempart.W022", set()),
    (
        "REMPART_PAYMENTS_DEBTOR",
        {"name": "x", "iban": "FR76 3000 6000 0112 3456 7890 189", "bic": "AGRIFRPPXXX"},
        "rempart.E023",
        set(),
    ),
    ("REMPART_BILLING_CREDITOR_ID", "FR72ZZZ123456", "rempart.E024", set()),
    ("REMPART_METRICS_TOKEN", "", "rempart.W025", set()),
    ("REMPART_METRICS_TOKEN", "short", "rempart.E026", set()),
    ("SECRET_KEY", "too-short", "rempart.E003", {"security.W009"}),
]


@pytest.mark.parametrize(
    ("name", "value", "expected", "twins"), WRONG, ids=[f"{w[0]}={w[1]!r}"[:60] for w in WRONG]
)
def test_each_setting_fails_alone(production, name, value, expected, twins):
    setattr(production["settings"], name, value)
    found = ids(deploy_checks.run())
    assert expected in found
    assert found <= {expected} | twins, found


@pytest.mark.parametrize("env_name", sorted(SECRET_SETTINGS))
def test_a_secret_read_from_var_is_refused(production, monkeypatch, env_name):
    monkeypatch.delenv(env_name)  # the value in settings came from var/secrets.env, not the environment
    assert ids(deploy_checks.run()) == {"rempart.E003"}


def test_a_demo_secret_copied_into_the_environment_is_refused(production, tmp_path):
    value = production["secrets"]["REMPART_DATA_KEYS"]
    (tmp_path / "secrets.env").write_text(f"# Demo secrets\nREMPART_DATA_KEYS={value}\n")
    outcome = deploy_checks.run()
    assert ids(outcome) == {"rempart.E004"}
    assert value not in " ".join(p.line() for p in outcome["problems"])


def test_redis_not_answering_is_an_error_per_server(production, monkeypatch):
    monkeypatch.setattr(
        deploy_checks, "redis_problem", lambda url: "ConnectionError" if url.endswith("/1") else None
    )
    outcome = deploy_checks.run()
    assert ids(outcome) == {"rempart.E016"}
    (problem,) = outcome["problems"]
    assert "surveillance" in problem.message and "redis.internal" not in problem.line()


def test_the_real_redis_probe_reports_a_closed_port_without_the_address():
    error = deploy_checks.redis_problem("redis://:hunter2-password@127.0.0.1:1/0")
    assert error and "hunter2" not in error and "127.0.0.1" not in error


def test_no_live_worker_fails(production):
    production["probes"]["workers"] = []
    assert ids(deploy_checks.run()) == {"rempart.E020"}


@pytest.mark.parametrize("exception", [ImportError, AttributeError])
def test_without_the_jobs_app_the_worker_check_fails(production, monkeypatch, exception):
    def missing():
        raise exception("rempart.jobs.stats")

    monkeypatch.setattr(deploy_checks, "live_workers", missing)
    outcome = deploy_checks.run()
    assert ids(outcome) == {"rempart.E019"}
    assert "jobs app unavailable" in outcome["problems"][0].message


def test_the_worker_probe_reads_the_jobs_heartbeats(db):
    """The real probe, on the real jobs app: no beat yet, no worker."""
    assert deploy_checks.live_workers() == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"pending": 2, "superuser": False, "owner": False, "can_change_ledger": False}, "rempart.E012"),
        ({"pending": 0, "superuser": True, "owner": True, "can_change_ledger": True}, "rempart.E013"),
        ({"pending": 0, "superuser": False, "owner": True, "can_change_ledger": True}, "rempart.E013"),
        ({"pending": 0, "superuser": False, "owner": False, "can_change_ledger": True}, "rempart.E013"),
    ],
)
def test_database_state_problems(production, monkeypatch, state, expected):
    monkeypatch.setattr(deploy_checks, "database_state", lambda: state)
    assert ids(deploy_checks.run()) == {expected}


def test_a_database_that_does_not_answer(production, monkeypatch):
    def down():
        raise OperationalError("connection refused for user rempart_app at db.internal")

    monkeypatch.setattr(deploy_checks, "database_state", down)
    outcome = deploy_checks.run()
    assert ids(outcome) == {"rempart.E011"}
    assert "db.internal" not in outcome["problems"][0].line()


def test_sqlite_is_refused(production, monkeypatch):
    monkeypatch.setattr(deploy_checks, "database_vendor", lambda: "sqlite")
    assert ids(deploy_checks.run()) == {"rempart.E010"}


@pytest.mark.postgres_only
def test_the_real_database_probe_sees_a_superuser(db, settings):
    """The test suite connects as PostgreSQL's superuser: exactly what production must not do."""
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("PostgreSQL only")
    state = deploy_checks.database_state()
    assert state["pending"] == 0
    assert state["superuser"] is True and state["can_change_ledger"] is True
