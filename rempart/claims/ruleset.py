"""The figures of claims adjudication, read from a versioned data file (``data/claims-rules-v1.json``).

Like the PEC engine's rule set: every figure carries its effective date and source, the file's SHA-256
goes into each decision's ``rule_version``, so that a stored decision can be reproduced. The money rules
themselves (rates, forfaits, ceilings) are the products' guarantees, not figures of this file.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .reasons import Reason

CODE_SYSTEMS = ("LPP", "CIP13", "NGAP", "CCAM", "OTHER")
#: The anomalies that may send an invoice to review when the rules list them.
ANOMALIES = (
    Reason.POSSIBLE_DUPLICATE,
    Reason.AMO_NOT_PAID,
    Reason.LATE_INVOICE,
    Reason.GUARANTEE_REQUIRES_PEC,
)
DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "data" / "claims-rules-v1.json"
_DOMAIN = re.compile(r"^[A-Z]{4}$")
_FIGURES = (
    "domains",
    "catalogue_domains",
    "time_limit_days",
    "max_lines",
    "max_quantity",
    "max_line_cents",
    "cip13_prefix",
    "review_amount_cents",
    "review_amount_counts_pec",
    "review_anomalies",
    "late_invoice_days",
)


@dataclass(frozen=True)
class DomainRules:
    code_systems: frozenset[str]
    prescription: bool  # the prescriber's RPPS is required
    pec: bool  # the invoice is paid against a prise en charge, not the guarantee


@dataclass(frozen=True)
class Figure:
    name: str
    effective_from: dt.date
    source: str


@dataclass(frozen=True)
class ClaimRules:
    version: str
    sha256: str
    domains: Mapping[str, DomainRules]
    catalogue_domains: frozenset[str]
    time_limit_days: int
    max_lines: int
    max_quantity: int
    max_line_cents: int
    cip13_prefix: str
    review_amount_cents: int | None  # None: no review on the amount
    review_amount_counts_pec: bool
    review_anomalies: frozenset[str]
    late_invoice_days: int
    figures: Mapping[str, Figure]

    @property
    def label(self) -> str:
        """What a decision stores as ``rule_version``: the file's version and the start of its hash."""
        return f"{self.version}+{self.sha256[:12]}"


class ClaimRulesError(ValueError):
    """The rules file is unusable; the message names the figure."""


def _whole(name: str, value: object, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ClaimRulesError(f"{name}: a whole number of at least {low} expected")
    return value


def _domains(value: object) -> dict[str, DomainRules]:
    if not isinstance(value, dict) or not value:
        raise ClaimRulesError("domains: a mapping of domain codes expected")
    domains = {}
    for code, spec in value.items():
        if not _DOMAIN.match(str(code)) or not isinstance(spec, dict):
            raise ClaimRulesError(f"domains: {code!r} is not a 4-letter domain code with its rules")
        systems = spec.get("code_systems")
        if not isinstance(systems, list) or not systems or not set(systems) <= set(CODE_SYSTEMS):
            raise ClaimRulesError(
                f"domains.{code}.code_systems: a list among {', '.join(CODE_SYSTEMS)} expected"
            )
        flags = (spec.get("prescription"), spec.get("pec"))
        if not all(isinstance(flag, bool) for flag in flags):
            raise ClaimRulesError(f"domains.{code}: prescription and pec must be true or false")
        domains[code] = DomainRules(frozenset(systems), *flags)
    return domains


def parse_rules(data: bytes) -> ClaimRules:
    """Check and read a rules file's bytes; :class:`ClaimRulesError` names the first bad figure."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClaimRulesError(f"not a JSON rules file ({exc})") from None
    if (
        not isinstance(doc, dict)
        or doc.get("format") != "rempart-claims-rules"
        or doc.get("format_version") != 1
    ):
        raise ClaimRulesError("not a rempart-claims-rules file of format version 1")
    figures = doc.get("figures") or {}
    provenance = {}
    for name in _FIGURES:
        item = figures.get(name)
        if not isinstance(item, dict) or "value" not in item or not item.get("source"):
            raise ClaimRulesError(f"{name}: missing, or without a value and a source")
        try:
            provenance[name] = Figure(name, dt.date.fromisoformat(item["effective_from"]), item["source"])
        except (KeyError, TypeError, ValueError):
            raise ClaimRulesError(f"{name}: effective_from YYYY-MM-DD expected") from None
    value = {name: figures[name]["value"] for name in _FIGURES}
    domains = _domains(value["domains"])
    catalogue_domains = value["catalogue_domains"]
    if not isinstance(catalogue_domains, list) or not set(catalogue_domains) <= set(domains):
        raise ClaimRulesError("catalogue_domains: a list of domains of 'domains' expected")
    anomalies = value["review_anomalies"]
    if not isinstance(anomalies, list) or not set(anomalies) <= {str(a) for a in ANOMALIES}:
        raise ClaimRulesError(f"review_anomalies: a list among {', '.join(ANOMALIES)} expected")
    threshold = value["review_amount_cents"]
    prefix = value["cip13_prefix"]
    if not isinstance(prefix, str) or not re.fullmatch(r"[0-9]{0,12}", prefix):
        raise ClaimRulesError("cip13_prefix: a string of at most 12 digits expected")
    if not isinstance(value["review_amount_counts_pec"], bool):
        raise ClaimRulesError("review_amount_counts_pec: true or false expected")
    version = doc.get("version")
    if not isinstance(version, str) or not 0 < len(version) <= 20:
        raise ClaimRulesError("version: a string of 1 to 20 characters expected")
    return ClaimRules(
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        domains=domains,
        catalogue_domains=frozenset(catalogue_domains),
        time_limit_days=_whole("time_limit_days", value["time_limit_days"], 1),
        max_lines=_whole("max_lines", value["max_lines"], 1),
        max_quantity=_whole("max_quantity", value["max_quantity"], 1),
        max_line_cents=_whole("max_line_cents", value["max_line_cents"], 1),
        cip13_prefix=prefix,
        review_amount_cents=None if threshold is None else _whole("review_amount_cents", threshold),
        review_amount_counts_pec=value["review_amount_counts_pec"],
        review_anomalies=frozenset(anomalies),
        late_invoice_days=_whole("late_invoice_days", value["late_invoice_days"], 1),
        figures=provenance,
    )


def load_rules(path: str | Path) -> ClaimRules:
    return parse_rules(Path(path).read_bytes())


@functools.cache
def default_rules() -> ClaimRules:
    """The rule set shipped with Rempart (``data/claims-rules-v1.json``), loaded once per process."""
    return load_rules(DEFAULT_RULES_PATH)
