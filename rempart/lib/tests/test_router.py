"""The read-replica router without a replica (the default: exactly as before) and its settings.

Routing with a replica is tested in test_router_fake_replica.py (a second connection to the test database)
and test_replica_real.py (a real streaming replica, in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS

from rempart.lib.db_routing import REPLICA_ALIAS, ReplicaRouter, reads_may_lag, replica_status
from rempart.registry.models import Insurer

ROOT = Path(__file__).resolve().parents[3]
ROUTER = "rempart.lib.db_routing.ReplicaRouter"


@pytest.mark.django_db
def test_without_a_replica_nothing_is_routed():
    if os.environ.get("REMPART_REPLICA_URL"):
        pytest.skip("a replica is configured for this run")
    assert django_settings.DATABASE_ROUTERS == []
    assert REPLICA_ALIAS not in django_settings.DATABASES
    assert replica_status() is None
    insurer = Insurer.objects.create(amc_number="987654321", name="Mutuelle", kind="mutuelle")
    with reads_may_lag():
        assert Insurer.objects.get(pk=insurer.pk)._state.db == DEFAULT_DB_ALIAS
    # The router alone (were it installed by mistake) also keeps everything on the primary.
    with reads_may_lag():
        assert ReplicaRouter().db_for_read(Insurer) == DEFAULT_DB_ALIAS


def test_settings_install_the_replica_only_when_its_url_is_set():
    code = (
        "import django, json; from django.conf import settings as s; django.setup(); "
        "r = s.DATABASES.get('replica'); "
        "print(json.dumps([s.DATABASE_ROUTERS, r and r['TEST']['MIRROR'], r and r['OPTIONS'].get('connect_timeout'), "
        "r and r['PORT'], s.REMPART_REPLICA_MAX_LAG_SECONDS]))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_REPLICA")}
    base.update(
        DJANGO_SETTINGS_MODULE="rempart.settings", DATABASE_URL="postgres://app@127.0.0.1:5432/rempart"
    )

    def run(**extra) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code],
            env={**base, **extra},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    plain = run()
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "[[], null, null, null, 30.0]"
    with_replica = run(
        REMPART_REPLICA_URL="postgres://app@127.0.0.1:5433/rempart", REMPART_REPLICA_MAX_LAG_SECONDS="7"
    )
    assert with_replica.returncode == 0, with_replica.stderr
    assert with_replica.stdout.strip() == f'[["{ROUTER}"], "default", 3, 5433, 7.0]'
    mixed = run(REMPART_REPLICA_URL="sqlite:////tmp/replica.sqlite3")
    assert mixed.returncode != 0 and "same database engine" in mixed.stderr


def test_migrations_never_run_on_the_replica():
    router = ReplicaRouter()
    assert router.allow_migrate(REPLICA_ALIAS, "registry") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "registry") is None


def test_the_decorator_refuses_async_views():
    async def view(request):
        return None

    with pytest.raises(TypeError):
        reads_may_lag(view)
