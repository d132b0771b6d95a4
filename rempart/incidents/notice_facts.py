"""What the notices of one insurer state, and in which words: its share of a frozen scope.

:class:`Listed` is what the stream of the insurer's people showed, :class:`Facts` everything its three
PDFs say (the frozen totals, the incident, the ledger's verdict); the French words of exposed fields,
dates and periods are shared by the CSVs (``notices.write_lists``) and the PDFs (``notice_texts``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from django.utils import timezone

from rempart.incidents import categories
from rempart.incidents.ledger_words import ledger_line
from rempart.incidents.models import Incident, Scope
from rempart.lib.dates import french_date, french_datetime
from rempart.lib.pdf import PdfDocument as _Pdf
from rempart.registry.models import CareDomain, Insurer

DEFAULT_CONTACT = "Équipe sécurité Rempart"


# --- What was exposed, in the words of the documents.

_IDENTITY = "identity_confirmed"
_VALID_UNTIL = "valid_until"


def _domain(code: str) -> str:
    try:
        return str(CareDomain(code).label)
    except ValueError:
        return code


def _domain_codes(fields, prefix: str) -> list[str]:
    """The care domains of the fields with this prefix ("coverage:", "tp_terms:"), in the usual order."""
    order = {code: index for index, code in enumerate(CareDomain.values)}
    codes = [name.split(":", 1)[1] for name in fields if name.startswith(prefix)]
    return sorted(codes, key=lambda code: (order.get(code, 99), code))


def _domains(fields, prefix: str) -> list[str]:
    return [_domain(code) for code in _domain_codes(fields, prefix)]


@lru_cache(maxsize=4096)
def field_labels(fields: frozenset[str]) -> tuple[str, str]:
    """(short label for the affected list, plain words for the letter) of one person's exposed fields."""
    short, plain = [], []
    if _IDENTITY in fields:
        short.append("identité confirmée")
        plain.append("la confirmation que vous êtes couvert(e) par votre complémentaire santé")
    coverage = _domains(fields, "coverage:")
    if coverage:
        short.append(f"droits ouverts ({' / '.join(coverage)})")
        plain.append(f"l'état de vos droits au tiers payant ({', '.join(d.lower() for d in coverage)})")
    terms = _domains(fields, "tp_terms:")
    if terms:
        short.append(f"conditions de tiers payant ({' / '.join(terms)})")
        plain.append(f"vos conditions de prise en charge ({', '.join(d.lower() for d in terms)})")
    if _VALID_UNTIL in fields:
        short.append("date de fin de validité des droits")
        plain.append("la date de fin de validité de vos droits")
    known = {_IDENTITY, _VALID_UNTIL}
    others = sorted(f for f in fields if f not in known and not f.startswith(("coverage:", "tp_terms:")))
    described = [found for found in map(categories.words, others) if found]  # words, never a raw code
    short += list(dict.fromkeys(found[0] for found in described))
    plain += list(dict.fromkeys(found[1] for found in described))
    words = plain[0] if len(plain) < 2 else f"{', '.join(plain[:-1])} et {plain[-1]}"
    return ", ".join(short), words


def category_rows(insurer: Insurer, counts: Counter) -> list[tuple[str, int]]:
    """(category in words, number of people) for every field category exposed, in a fixed order."""
    rows = []
    if counts.get(_IDENTITY):
        rows.append(
            (
                f"Confirmation de l'identité et de l'affiliation à {insurer.name} "
                "(la personne est bien couverte par ce contrat)",
                counts[_IDENTITY],
            )
        )
    for prefix, words in (
        ("coverage:", "Ouverture des droits au tiers payant"),
        ("tp_terms:", "Conditions de tiers payant (code, taux ou montant de prise en charge)"),
    ):
        for code in _domain_codes(counts, prefix):
            rows.append((f"{words} — {_domain(code)}", counts[prefix + code]))
    if counts.get(_VALID_UNTIL):
        rows.append(("Date de fin de validité des droits", counts[_VALID_UNTIL]))
    grouped: Counter = Counter()  # the other codes, in words (a person counted once per code, as above)
    for name in sorted(counts):
        if name not in (_IDENTITY, _VALID_UNTIL) and not name.startswith(("coverage:", "tp_terms:")):
            category = categories.grouping(name)
            if category:
                grouped[category] = max(grouped[category], counts[name])
    rows += sorted(grouped.items())
    return rows


# --- Dates.


def local_time(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment)


def moment_words(moment: dt.datetime | None) -> str:
    return french_datetime(moment) if moment else "—"


@lru_cache(maxsize=4096)
def period_words(first: dt.date, last: dt.date) -> str:
    if first == last:
        return f"le {french_date(first)}"
    return f"entre le {french_date(first)} et le {french_date(last)}"


@dataclass
class Listed:
    """What the stream of one insurer's people showed (to check against the frozen totals)."""

    people: int = 0
    disclosures: int = 0
    field_sets: Counter = field(default_factory=Counter)
    first_at: dt.datetime | None = None
    last_at: dt.datetime | None = None
    actors: set = field(default_factory=set)

    @property
    def per_field(self) -> Counter:
        counts: Counter = Counter()
        for fields, people in self.field_sets.items():
            for name in fields:
                counts[name] += people
        return counts


@dataclass
class Facts:
    incident: Incident
    scope: Scope
    insurer: Insurer
    people: int  # frozen totals for this insurer: the numbers notified
    disclosures: int
    listed: Listed
    generated_at: dt.datetime
    attachments: list[tuple[str, str, str]] = field(default_factory=list)  # (what, file name, sha256)

    @property
    def unlisted(self) -> int:
        """People of the frozen scope the registry no longer knows (their keys could not be listed)."""
        return max(self.people - self.listed.people, 0)

    @property
    def contact(self) -> str:
        return self.incident.contact.strip() or DEFAULT_CONTACT

    @property
    def dpo(self) -> str:
        parts = [self.insurer.dpo_name, self.insurer.dpo_email, self.insurer.dpo_phone]
        return " — ".join(p.strip() for p in parts if p and p.strip())

    @property
    def seen(self) -> str:
        if self.listed.first_at is None:
            return "—"
        return f"du {moment_words(self.listed.first_at)} au {moment_words(self.listed.last_at)}"

    @property
    def measures(self) -> list[str]:
        return [line.strip() for line in self.incident.measures.splitlines() if line.strip()]

    @property
    def late(self) -> bool:
        return self.generated_at > self.incident.deadline

    def ledger_alert(self, pdf: _Pdf) -> None:
        if self.scope.ledger_ok:
            return
        report = [line for line in self.scope.ledger_report.splitlines() if line.strip()]
        shown = [line[:300] for line in report[:15]]
        if len(report) > 15:
            shown.append(f"… et {len(report) - 15} autre(s) anomalie(s).")
        pdf.alert(
            "REGISTRE ALTÉRÉ — le contrôle d'intégrité du registre des divulgations a échoué sur la période "
            "examinée : des lignes ont été modifiées ou supprimées après leur inscription.",
            [
                "Les chiffres de ce document sont ceux du registre tel qu'il est : ils peuvent être incomplets "
                "(des consultations ont pu être effacées ou attribuées à un autre compte). L'analyse se poursuit ; "
                "une notification complémentaire suivra.",
                *shown,
            ],
        )

    def ledger_verdict(self) -> str:
        if self.scope.ledger_ok:
            return ledger_line(self.scope)  # rows verified, from which checkpoint, the scope's own re-hashed
        return "ALTÉRÉ — voir l'avertissement en tête de document"

    def footer(self, what: str) -> str:
        return f"{self.incident.number} — {what} — {self.insurer.name}"
