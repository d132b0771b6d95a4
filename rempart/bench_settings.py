"""Benchmark settings: the normal settings plus the bare lookup endpoint (bench/rights_check.py).

    DJANGO_SETTINGS_MODULE=rempart.bench_settings REMPART_BENCH=1 …

The bare lookup (rempart/rights/bare_lookup.py) answers the rights check's lookup with no
authentication, no validation and no ledger row: it exists only to measure, in the same run, what
the security around the lookup costs. These settings refuse to load unless REMPART_BENCH=1 is set,
so that they cannot be picked up by mistake in a deployment.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from rempart.settings import *  # noqa: F403
from rempart.settings import LOGGING

if os.environ.get("REMPART_BENCH") != "1":
    raise ImproperlyConfigured("rempart.bench_settings is for bench/rights_check.py only (REMPART_BENCH=1)")

# The bare lookup: its URL is only in this URLconf, and the view answers 404 unless this flag is on.
REMPART_BENCH_BARE_LOOKUP = True
ROOT_URLCONF = "rempart.rights.bare_lookup"

# Warnings and errors only, Django's own loggers included (the normal settings keep them at INFO).
LOGGING = {
    **LOGGING,
    "root": {**LOGGING["root"], "level": "WARNING"},
    "loggers": {name: {**logger, "level": "WARNING"} for name, logger in LOGGING["loggers"].items()},
}

# bench/rights_check.py --surveillance database|redis: count everything, never climb the ladder (one token
# does all the load), so that the run measures what the counting costs.
if os.environ.get("REMPART_BENCH_SURVEILLANCE") == "counting":
    from rempart.surveillance.policy import DEFAULTS

    REMPART_SURVEILLANCE = {name: 10**9 for name, value in DEFAULTS.items() if isinstance(value, int)}
