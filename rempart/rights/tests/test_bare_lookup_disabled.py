"""The benchmark's bare lookup (no token, no ledger) is unreachable with the normal settings."""

import importlib
import json
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from rempart.ledger.models import Disclosure
from rempart.rights import bare_lookup

URL = "/bench/bare-lookup"


def body(family, **extra):
    return {"amc_number": family.amc, "adherent_number": family.adherent, "nir": family.parent_nir,
            "birth_date": family.parent_birth, "domain": "OPTI", **extra}  # fmt: skip


@pytest.mark.django_db
def test_bare_lookup_is_404_under_the_normal_settings(client, settings):
    assert settings.ROOT_URLCONF == "rempart.urls"
    assert not getattr(settings, "REMPART_BENCH_BARE_LOOKUP", False)
    for response in (
        client.post(URL, data="{}", content_type="application/json"),
        client.post(URL + "/", data="{}", content_type="application/json"),
        client.get(URL),
    ):
        assert response.status_code == 404
    with pytest.raises(Resolver404):
        resolve(URL)


@pytest.mark.django_db
def test_the_view_itself_refuses_without_the_bench_flag(family, settings):
    """Even if a URLconf routed to it by mistake, the view answers 404 unless the bench flag is on."""
    settings.ROOT_URLCONF = "rempart.rights.bare_lookup"
    request = RequestFactory().post(URL, data=json.dumps(body(family)), content_type="application/json")
    with pytest.raises(bare_lookup.Http404):
        bare_lookup.bare_lookup(request)


@pytest.mark.django_db
def test_with_the_bench_settings_it_answers_only_an_outcome(client, family, settings):
    settings.ROOT_URLCONF = "rempart.rights.bare_lookup"
    settings.REMPART_BENCH_BARE_LOOKUP = True
    hit = client.post(URL, data=json.dumps(body(family)), content_type="application/json")
    assert hit.status_code == 200 and hit.json() == {"outcome": "match"}
    child = body(family, birth_date=family.child_birth, birth_rank=1)
    assert client.post(URL, data=json.dumps(child), content_type="application/json").json() == {
        "outcome": "match"
    }
    miss = client.post(
        URL, data=json.dumps(body(family, birth_date="1985-05-13")), content_type="application/json"
    )
    assert miss.status_code == 200 and miss.json() == {"outcome": "no_match"}
    assert Disclosure.objects.count() == 0  # the point: no ledger, which is why it is never on in production


def test_the_bench_settings_refuse_to_load_outside_the_benchmark(monkeypatch):
    monkeypatch.delenv("REMPART_BENCH", raising=False)
    monkeypatch.delitem(sys.modules, "rempart.bench_settings", raising=False)
    with pytest.raises(ImproperlyConfigured, match="REMPART_BENCH=1"):
        importlib.import_module("rempart.bench_settings")
