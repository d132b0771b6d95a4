"""deploy/: the systemd units are valid and hardened, run commands that exist, keep the owner's database URL away
from the application's processes; the example environment names every variable settings.py reads, with no secret."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
LONG_RUNNING = ("rempart-web.service", "rempart-worker.service", "rempart-scheduler.service")
ONE_SHOT = ("rempart-migrate.service", "rempart-partitions.service")
HARDENING = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "ReadWritePaths": "/var/lib/rempart",
    "CapabilityBoundingSet": "",
    "User": "rempart",
    "EnvironmentFile": "/etc/rempart/rempart.env",
}
SECRET_NAMES = (
    "REMPART_SECRET_KEY",
    "REMPART_DATA_KEYS",
    "REMPART_BLIND_INDEX_KEY",
    "REMPART_LEDGER_SIGNING_KEY",
)


def unit(name: str) -> dict[str, list[str]]:
    """[Service] keys → every value (systemd allows a key several times)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in (UNITS / name).read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.parametrize("name", LONG_RUNNING + ONE_SHOT)
def test_each_unit_is_hardened(name):
    service = unit(name)
    for key, value in HARDENING.items():
        assert value in service.get(key, []), f"{name}: {key}={value} missing"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_units_restart_on_failure(name):
    assert unit(name)["Restart"] == ["on-failure"]


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_the_application_never_sees_the_owner_role(name):
    assert "/etc/rempart/owner.env" not in unit(name)["EnvironmentFile"]


@pytest.mark.parametrize("name", ONE_SHOT)
def test_the_release_steps_run_as_the_owner_role(name):
    files = unit(name)["EnvironmentFile"]
    # later files win: the owner's DATABASE_URL replaces the app role's
    assert files == ["/etc/rempart/rempart.env", "/etc/rempart/owner.env"]


def test_units_run_commands_that_exist():
    commands = get_commands()
    for name in LONG_RUNNING + ONE_SHOT:
        for line in unit(name)["ExecStart"]:
            program, *args = line.split()
            if program.endswith("/rempart"):
                assert args[0].replace("-", "_") in commands, f"{name}: rempart {args[0]} does not exist"
            else:
                assert program == "/opt/rempart/venv/bin/gunicorn" and args == [
                    "-c",
                    "/opt/rempart/app/deploy/gunicorn.conf.py",
                ]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path):
    for path in UNITS.iterdir():
        text = re.sub(r"/opt/rempart/venv/bin/\S+", "/bin/true", path.read_text())
        (tmp_path / path.name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # systemd only warns about unknown keys or bad values, on standard error: there must be none
    relevant = [line for line in (result.stdout + result.stderr).splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not relevant, result.stdout + result.stderr


def _example() -> dict[str, str]:
    values = {}
    for line in (DEPLOY / "rempart.env.example").read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_the_example_environment_names_every_variable_settings_reads():
    read = set(
        re.findall(r'"((?:REMPART_[A-Z0-9_]+)|DATABASE_URL)"', (ROOT / "rempart" / "settings.py").read_text())
    )
    read |= set(SECRET_NAMES)
    read |= set(
        re.findall(
            r'"(REMPART_(?:WEB_[A-Z_]+|FORWARDED_ALLOW_IPS))"', (DEPLOY / "gunicorn.conf.py").read_text()
        )
    )
    missing = sorted(read - set(_example()) - {"REMPART_WEB_TMP_DIR"})  # set by rempart-web.service
    assert not missing, f"add to deploy/rempart.env.example: {missing}"


def test_the_example_environment_holds_no_secret():
    values = _example()
    assert values["REMPART_ENV"] == "production"
    for name in (
        *SECRET_NAMES,
        "REMPART_EMAIL_PASSWORD",
        "REMPART_ALERT_WEBHOOK_SECRET",
        "REMPART_METRICS_TOKEN",
    ):
        assert "CHANGE-ME" in values[name], name
    for name in ("DATABASE_URL", "REMPART_REPLICA_URL", "REMPART_REDIS_URL", "REMPART_RQ_URL"):
        assert "CHANGE-ME" in values[name], name
    assert values["DATABASE_URL"].startswith("postgres://rempart_app:")  # never the owner, never postgres
