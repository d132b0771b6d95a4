"""Benchmark only: the rights check's lookup with nothing around it (bench/rights_check.py).

``POST /bench/bare-lookup`` runs the gate's own lookup (``rempart.gate.core.find``: insurer →
contract → family → guarantee in one statement, then the blind-index compare) and answers ``{"outcome": "match" | "no_match"}``: no
token, no validation of the presented data, no coverage decision, no ledger row. Comparing its
throughput with ``POST /api/v1/rights/check`` in the same run gives the cost of the security.

It is reachable only with ``rempart.bench_settings``: this module is then the root URLconf (the
normal routes plus this one). The normal settings never route to it, and the view itself answers
404 unless ``REMPART_BENCH_BARE_LOOKUP`` is on (rempart/rights/tests/test_bare_lookup_disabled.py).
"""

from __future__ import annotations

import json

from django.conf import settings
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rempart.gate.core import find as _find
from rempart.lib.identifiers import LunarDate
from rempart.rights.cards import CardData
from rempart.urls import urlpatterns as normal_urlpatterns

PATH = "bench/bare-lookup"


@csrf_exempt
@require_POST
def bare_lookup(request):
    if not getattr(settings, "REMPART_BENCH_BARE_LOOKUP", False):
        raise Http404
    try:
        data = json.loads(request.body)
        card = CardData(
            str(data["amc_number"]),
            str(data["adherent_number"]),
            str(data["nir"]),
            LunarDate.parse(str(data["birth_date"])),
            int(data.get("birth_rank") or 1),
            str(data.get("domain", "")),
            timezone.localdate(),
        )
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("bad body")
    found = _find(card)
    return JsonResponse({"outcome": "match" if found.beneficiary_id is not None else "no_match"})


urlpatterns = [path(PATH, bare_lookup, name="bench-bare-lookup"), *normal_urlpatterns]
