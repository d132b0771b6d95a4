"""/metrics: closed to whoever has neither the token nor an allowed address; what it counts; bounded labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from rempart.accounts import tokens
from rempart.claims.lot_format import write_lot
from rempart.claims.tests.conftest import delivered, population, token  # noqa: F401 - fixtures
from rempart.claims.tests.test_lots import header, send, three_invoices
from rempart.conftest import TODAY
from rempart.lib import metrics
from rempart.ops import metrics as ops_metrics
from rempart.registry.rights_import import import_rights
from rempart.rights.tests.conftest import family  # noqa: F401 - fixture
from rempart.surveillance import switches
from rempart.surveillance.models import Switch

TOKEN = "m" * 40
ROOT = Path(__file__).resolve().parents[3]


# Our metrics alone (the default registry also holds the jobs collector, which reads the database).
OURS = CollectorRegistry()
for _metric in vars(metrics).values():
    if isinstance(_metric, MetricWrapperBase):
        OURS.register(_metric)


def sample(name: str, **labels) -> float:
    return OURS.get_sample_value(name, labels) or 0.0


def scrape(client, **extra):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)


@pytest.fixture(autouse=True)
def _metrics_settings(settings):
    settings.REMPART_METRICS_TOKEN = TOKEN
    settings.REMPART_METRICS_ALLOW_NETS = []
    settings.REMPART_TRUSTED_PROXY_COUNT = 0


@pytest.fixture
def rights_token(cast):
    return tokens.create_token(cast.optician, "LGO", ["rights:check"], cast.owner)[1]


def check(client, raw, fam, **body):
    payload = {"amc_number": fam.amc, "adherent_number": fam.adherent, "nir": fam.parent_nir,
               "birth_date": fam.parent_birth, "domain": "OPTI", **body}  # fmt: skip
    return client.post(
        "/api/v1/rights/check",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )


# --- who may scrape


def test_the_token_opens_metrics_in_the_prometheus_text_format(client, db):
    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    names = {fam.name for fam in text_string_to_metric_families(response.content.decode())}
    assert {"rempart_http_request_duration_seconds", "rempart_checks", "rempart_jobs"} <= names


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer wrong-token-wrong-token-wrong-token-x"},
        {"HTTP_AUTHORIZATION": f"Bearer {TOKEN[:-1]}"},
        {"HTTP_AUTHORIZATION": f"Basic {TOKEN}"},
        {"HTTP_AUTHORIZATION": TOKEN},
        {"HTTP_X_METRICS_TOKEN": TOKEN},
    ],
    ids=["none", "wrong", "prefix", "basic", "no-scheme", "other-header"],
)
def test_without_the_token_metrics_is_an_unknown_page(client, db, headers):
    response = client.get("/metrics", **headers)
    unknown = client.get("/no-such-page-here")
    assert response.status_code == unknown.status_code == 404
    assert response["Content-Type"] == unknown["Content-Type"]
    assert b"rempart_" not in response.content


def test_a_token_in_the_query_string_is_not_accepted(client, db):
    for query in (f"token={TOKEN}", f"access_token={TOKEN}", f"authorization=Bearer%20{TOKEN}"):
        assert client.get(f"/metrics?{query}").status_code == 404


def test_an_empty_token_setting_accepts_no_token(client, db, settings):
    settings.REMPART_METRICS_TOKEN = ""
    for authorization in ("Bearer ", "Bearer", "Bearer  ", "bearer \t"):
        assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 404


def test_metrics_answers_reads_only(client, db):
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 404


def test_an_allowed_network_opens_metrics_without_a_token(client, db, settings):
    settings.REMPART_METRICS_ALLOW_NETS = ["10.0.0.0/8", "2001:db8::/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.10").status_code == 404


def test_a_forged_forwarded_for_does_not_open_metrics_without_trusted_proxies(client, db, settings):
    settings.REMPART_METRICS_ALLOW_NETS = ["10.0.0.0/8"]
    spoofed = client.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert spoofed.status_code == 404


def test_behind_a_trusted_proxy_the_forwarded_client_decides(client, db, settings):
    settings.REMPART_METRICS_ALLOW_NETS = ["10.0.0.0/8"]
    settings.REMPART_TRUSTED_PROXY_COUNT = 1
    # The proxy itself is inside the network; the client it forwards is not: refused.
    outside = client.get("/metrics", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert outside.status_code == 404
    # A client that prepends an allowed address does not pass either: the proxy's own hop is read.
    prepended = client.get("/metrics", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7")
    assert prepended.status_code == 404
    inside = client.get("/metrics", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert inside.status_code == 200


def test_a_bad_network_entry_allows_nothing_and_is_reported(client, db, settings):
    settings.REMPART_METRICS_ALLOW_NETS = ["not-a-network", "10.0.0.0/33"]
    settings.REMPART_METRICS_TOKEN = "short"
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
    problems = ops_metrics.settings_problems()
    assert len(problems) == 3 and any("32 characters" in p for p in problems)


def test_metrics_is_answered_for_any_host_and_over_plain_http(client, db, settings):
    """Prometheus scrapes each app server by its address, on the private network."""
    settings.SECURE_SSL_REDIRECT = True
    assert scrape(client, HTTP_HOST="10.0.3.7:8000").status_code == 200


# --- what is counted


def test_a_check_is_counted_by_channel_purpose_and_outcome(client, cast, family, rights_token):  # noqa: F811
    labels = {"channel": "api", "purpose": "rights_check"}
    covered = sample("rempart_checks_total", **labels, outcome="covered")
    no_match = sample("rempart_checks_total", **labels, outcome="no_match")
    appended = sample("rempart_ledger_append_duration_seconds_count", kind="one")
    rows = sample("rempart_ledger_rows_appended_total", kind="one")
    assert check(client, rights_token, family).json()["outcome"] == "covered"
    assert check(client, rights_token, family, adherent_number="NOPE").json()["outcome"] == "no_match"
    assert sample("rempart_checks_total", **labels, outcome="covered") == covered + 1
    assert sample("rempart_checks_total", **labels, outcome="no_match") == no_match + 1
    assert sample("rempart_ledger_append_duration_seconds_count", kind="one") == appended + 2
    assert sample("rempart_ledger_rows_appended_total", kind="one") == rows + 2
    # The latency of the API route, under its pattern.
    assert (
        sample(
            "rempart_http_request_duration_seconds_count",
            route="api/v1/rights/check",
            method="POST",
            status="2xx",
        )
        >= 2
    )


def test_a_domain_refusal_is_counted_as_refused(client, cast, family, rights_token):  # noqa: F811
    before = sample("rempart_checks_total", channel="api", purpose="rights_check", outcome="refused")
    response = check(client, rights_token, family, domain="AUDI")
    assert response.status_code >= 400
    assert (
        sample("rempart_checks_total", channel="api", purpose="rights_check", outcome="refused") == before + 1
    )


def test_a_surveillance_refusal_is_counted_by_step_and_is_no_answer(client, cast, family, rights_token):  # noqa: F811
    switches.switch_off(
        target=Switch.Target.CHANNEL, channel=Switch.Channel.API_RIGHTS, reason="test : coupure"
    )
    refused = sample("rempart_surveillance_refusals_total", step="switched_off")
    answers = sum(
        sample("rempart_checks_total", channel="api", purpose="rights_check", outcome=o)
        for o in ("covered", "not_covered", "no_match", "refused", "rejected")
    )
    response = check(client, rights_token, family)
    assert response.status_code == 503 and response.json()["code"] == "switched_off"
    assert sample("rempart_surveillance_refusals_total", step="switched_off") == refused + 1
    after = sum(
        sample("rempart_checks_total", channel="api", purpose="rights_check", outcome=o)
        for o in ("covered", "not_covered", "no_match", "refused", "rejected")
    )
    assert after == answers


def test_an_unknown_refusal_step_is_other():
    before = sample("rempart_surveillance_refusals_total", step="other")
    metrics.record_surveillance_refusal("<script>")
    assert sample("rempart_surveillance_refusals_total", step="other") == before + 1
    assert sample("rempart_surveillance_refusals_total", step="<script>") == 0


def test_rights_import_rows_are_counted_once_committed(insurer, rows_for, rights_file, tmp_path):
    rows = rows_for(5)
    rows[2][13] = "185077512345600"  # a wrong NIR key: the row is rejected
    accepted = sample("rempart_import_rows_total", kind="rights", outcome="accepted")
    rejected = sample("rempart_import_rows_total", kind="rights", outcome="rejected")
    path = rights_file(rows)
    import_rights(path, insurer, report_dir=tmp_path / "r1", show_progress=False, today=TODAY, dry_run=True)
    assert sample("rempart_import_rows_total", kind="rights", outcome="accepted") == accepted
    import_rights(path, insurer, report_dir=tmp_path / "r2", show_progress=False, today=TODAY)
    assert sample("rempart_import_rows_total", kind="rights", outcome="accepted") == accepted + 4
    assert sample("rempart_import_rows_total", kind="rights", outcome="rejected") == rejected + 1


def test_lot_invoices_are_counted_accepted_or_rejected(client, cast, token, delivered, population):  # noqa: F811
    row, pec = delivered
    invoices = three_invoices(row, pec, population)  # one good, one with wrong totals, one for nobody
    accepted = sample("rempart_import_rows_total", kind="claims_lot", outcome="accepted")
    rejected = sample("rempart_import_rows_total", kind="claims_lot", outcome="rejected")
    body = write_lot(invoices, header(cast, total_amc_cents=sum(i["total_amc_cents"] for i in invoices)))
    assert send(client, token, body).status_code == 200
    assert sample("rempart_import_rows_total", kind="claims_lot", outcome="accepted") == accepted + 1
    assert sample("rempart_import_rows_total", kind="claims_lot", outcome="rejected") == rejected + 2
    # Sent again: the first result, nothing imported again.
    assert send(client, token, body).json()["replayed"]
    assert sample("rempart_import_rows_total", kind="claims_lot", outcome="accepted") == accepted + 1


# --- bounded labels


def _route_series() -> set[tuple]:
    return {
        tuple(sorted(s.labels.items()))
        for fam in OURS.collect()
        if fam.name == "rempart_http_request_duration_seconds"
        for s in fam.samples
        if s.name.endswith("_count")
    }


def test_a_thousand_unknown_paths_make_no_new_series(client, db):
    client.get("/no-such-page")
    client.get("/api/v1/no-such-thing")
    before = _route_series()
    for n in range(1000):
        client.get(f"/probe-{n}/185057512345623/{n}" if n % 2 else f"/api/v1/x{n}")
    after = _route_series()
    assert after == before
    assert all("probe" not in value and "1850575" not in value for labels in after for _k, value in labels)


def test_routes_are_patterns_never_paths(client, cast):
    raw = tokens.create_token(cast.optician, "LGO", ["payments:read"], cast.owner)[1]
    client.get("/api/v1/payments/PR-SECRET-0001", HTTP_AUTHORIZATION=f"Bearer {raw}")
    routes = {dict(labels)["route"] for labels in _route_series()}
    assert "api/v1/payments/<reference>" in routes
    assert not any("SECRET" in route for route in routes)


def test_odd_methods_are_one_label(client, db):
    before = sample(
        "rempart_http_request_duration_seconds_count", route="unmatched", method="other", status="4xx"
    )
    client.generic("BREW", "/nowhere")
    client.generic("PROPFIND", "/nowhere")
    after = sample(
        "rempart_http_request_duration_seconds_count", route="unmatched", method="other", status="4xx"
    )
    assert after == before + 2
    assert not any(dict(labels)["method"] in ("BREW", "PROPFIND") for labels in _route_series())


def test_job_kinds_are_bounded():
    bounded = metrics.BoundedNames(3)
    assert [bounded(n) for n in ("a.one", "a.two", "a.three", "a.four", "a.one")] == [
        "a.one",
        "a.two",
        "a.three",
        "other",
        "a.one",
    ]
    assert bounded("Robert'); DROP") == "other" and bounded("x" * 200) == "other"


# --- the job queue, read at scrape time


def _jobs(client) -> dict[tuple[str, str], float]:
    text = scrape(client).content.decode()
    return {
        (s.labels["kind"], s.labels["status"]): s.value
        for fam in text_string_to_metric_families(text)
        if fam.name == "rempart_jobs"
        for s in fam.samples
    }


def test_the_queue_depth_is_read_from_the_job_table_by_kind_and_status(client, db):
    from rempart.jobs import queue
    from rempart.jobs.kinds import all_kinds
    from rempart.jobs.models import Job
    from rempart.jobs.tests import sample_kinds  # noqa: F401 - registers the test kinds

    for _ in range(3):
        queue.enqueue("tests.count", {"n": 1})
    running = queue.enqueue("tests.slow")
    Job.objects.filter(pk=running.pk).update(status=Job.Status.RUNNING)
    failed = [queue.enqueue("tests.bug") for _ in range(2)]
    Job.objects.filter(pk__in=[j.pk for j in failed]).update(status=Job.Status.FAILED)
    done = queue.enqueue("tests.refuse")
    Job.objects.filter(pk=done.pk).update(status=Job.Status.SUCCEEDED)
    Job.objects.create(kind="gone.since_last_release", status=Job.Status.QUEUED)  # no longer registered
    jobs = _jobs(client)
    assert jobs[("tests.count", "queued")] == 3.0
    assert jobs[("tests.slow", "running")] == 1.0
    assert jobs[("tests.bug", "failed")] == 2.0
    assert jobs[("other", "queued")] == 1.0 and not any("gone" in kind for kind, _ in jobs)
    # Every registered kind shows every counted status, zeros included; succeeded is not counted.
    assert jobs[("tests.refuse", "queued")] == 0.0 and ("tests.refuse", "succeeded") not in jobs
    assert {status for _, status in jobs} == set(ops_metrics.COUNTED_JOB_STATUSES)
    assert {kind for kind, _ in jobs} == set(all_kinds()) | {"other"}


def test_the_queue_depth_costs_one_query(client, db, django_assert_num_queries):
    with django_assert_num_queries(1):
        ops_metrics.job_counts()


@pytest.mark.parametrize("broken", ["missing module", "missing function", "database down"])
def test_metrics_still_answer_when_the_job_table_cannot(client, db, monkeypatch, broken):
    if broken == "missing module":
        monkeypatch.setitem(sys.modules, "rempart.jobs.models", None)
    elif broken == "missing function":
        from rempart.jobs import kinds

        monkeypatch.delattr(kinds, "all_kinds")
    else:

        def down():
            raise OperationalError("connection refused")

        monkeypatch.setattr(ops_metrics, "job_counts", down)
    response = scrape(client)
    assert response.status_code == 200 and b"rempart_http_request_duration_seconds" in response.content
    assert _jobs(client) == {}


# --- label values: closed sets


def test_the_closed_sets_are_the_ledgers():
    from rempart.ledger.models import Disclosure

    assert set(Disclosure.Channel.values) == metrics.CHANNELS
    assert set(Disclosure.Outcome.values) == metrics.OUTCOMES


def test_an_answer_with_unknown_labels_is_counted_as_other():
    before = sample("rempart_checks_total", channel="other", purpose="other", outcome="other")
    metrics.record_answer("fax", "Purpose With Spaces 185057512345623", "maybe")
    metrics.record_answers("fax", "x" * 200, ["maybe", "maybe"])
    assert sample("rempart_checks_total", channel="other", purpose="other", outcome="other") == before + 3


# --- several processes (gunicorn workers)


def test_multiprocess_mode_adds_up_every_process(tmp_path):
    """Two processes count checks into the directory; a third one's exposition shows their sum."""
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "REMPART_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "rempart.settings",
    }
    count = "from rempart.lib import metrics\nfor _ in range({n}): metrics.record_answer('api', 'rights_check', 'covered')"
    for n in (3, 4):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True, cwd=ROOT, timeout=60)
    show = "import django; django.setup()\nfrom rempart.ops.metrics import exposition\nprint(exposition()[0].decode())"
    out = subprocess.run(
        [sys.executable, "-c", show], env=env, check=True, cwd=ROOT, timeout=60, capture_output=True
    ).stdout.decode()
    values = {
        (s.name, s.labels.get("outcome")): s.value
        for fam in text_string_to_metric_families(out)
        for s in fam.samples
    }
    assert values[("rempart_checks_total", "covered")] == 7.0
    assert len(list(directory.glob("counter_*.db"))) >= 2


def test_the_gunicorn_hook_drops_a_dead_workers_live_gauges(tmp_path, monkeypatch):
    from types import SimpleNamespace

    live, counter = tmp_path / "gauge_livesum_4242.db", tmp_path / "counter_4242.db"
    live.write_bytes(b"")
    counter.write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    ops_metrics.gunicorn_child_exit(None, SimpleNamespace(pid=4242))
    assert not live.exists() and counter.exists()  # its counters still add up; its live gauges are gone
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    ops_metrics.gunicorn_child_exit(None, SimpleNamespace(pid=4242))  # not in multiprocess mode: nothing
