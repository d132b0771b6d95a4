"""Files of a scope for people to open: one CSV per insurer (keyed by adherent number and rank) and a summary.

Streams from rempart.incidents.exposure (which records the read), so memory stays bounded whatever the number of people.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.utils import timezone
from django.utils.translation import gettext

from rempart.accounts.models import ApiToken, Organisation, User
from rempart.incidents.scope import PersonExposure, ScopeCriteria, ScopeSummary
from rempart.lib import csv_safe
from rempart.registry.models import Insurer

FIELD_LABELS = {
    "identity_confirmed": "identité confirmée",
    "valid_until": "date de fin de validité des droits",
}
PREFIX_LABELS = {
    "coverage": "couverture {domain}",
    "tp_terms": "conditions de tiers payant {domain}",
}


def describe_fields(fields: Iterable[str]) -> str:
    """What was disclosed or confirmed, in French, e.g. « identité confirmée, couverture OPTI »."""
    labels = []
    for name in sorted(fields):
        prefix, _, domain = name.partition(":")
        if name in FIELD_LABELS:
            labels.append(FIELD_LABELS[name])
        elif domain and prefix in PREFIX_LABELS:
            labels.append(PREFIX_LABELS[prefix].format(domain=domain))
        else:
            labels.append(name)
    return ", ".join(labels)


class ActorNames:
    """Readable names for (organisation, user, token) ids, looked up once each."""

    def __init__(self) -> None:
        self._organisations: dict[int, str] = {}
        self._users: dict[int, str] = {}
        self._tokens: dict[int, str] = {}

    def _lookup(self, cache: dict, model, pk: int | None, render) -> str | None:
        if pk is None:
            return None
        if pk not in cache:
            found = model.objects.filter(pk=pk).first()
            cache[pk] = render(found) if found else f"#{pk}"
        return cache[pk]

    def label(self, organisation_id, user_id, token_id) -> str:
        parts = [
            self._lookup(self._organisations, Organisation, organisation_id, lambda o: o.name),
            self._lookup(self._users, User, user_id, lambda u: u.email),
            self._lookup(self._tokens, ApiToken, token_id, lambda t: f"jeton rmp_{t.prefix}…"),
        ]
        return " / ".join(part for part in parts if part)


def _when(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%d/%m/%Y %H:%M:%S") if value else ""


def describe(criteria: dict) -> list[str]:
    """The criteria in words, for the console and the documents (emails and prefixes, not ids)."""
    parts = []
    if criteria.get("user_ids"):
        emails = User.objects.filter(pk__in=criteria["user_ids"]).values_list("email", flat=True)
        parts.append(gettext("comptes : %s") % ", ".join(sorted(emails)))
    if criteria.get("token_ids"):
        prefixes = ApiToken.objects.filter(pk__in=criteria["token_ids"]).values_list("prefix", flat=True)
        parts.append(gettext("jetons : %s") % ", ".join(f"rmp_{p}…" for p in sorted(prefixes)))
    if criteria.get("organisation_ids"):
        names = Organisation.objects.filter(pk__in=criteria["organisation_ids"]).values_list(
            "name", flat=True
        )
        parts.append(gettext("organisations : %s") % ", ".join(sorted(names)))
    if criteria.get("networks"):
        parts.append(gettext("adresses : %s") % ", ".join(criteria["networks"]))
    if criteria.get("channels"):
        parts.append(gettext("canaux : %s") % ", ".join(criteria["channels"]))
    window = ScopeCriteria.from_json(criteria)
    if window.since or window.until:
        since = timezone.localtime(window.since).strftime("%d/%m/%Y %H:%M") if window.since else "…"
        until = (
            timezone.localtime(window.until).strftime("%d/%m/%Y %H:%M")
            if window.until
            else gettext("maintenant")
        )
        parts.append(gettext("période : %(since)s → %(until)s") % {"since": since, "until": until})
    return parts


HEADER = [
    "numero_adherent", "rang", "donnees_exposees", "nombre_divulgations", "premiere_divulgation",
    "derniere_divulgation", "acteurs",
]  # fmt: skip


def write_per_insurer(
    stream: Iterator[tuple[PersonExposure, str, int]], out_dir: Path, *, progress=None
) -> dict[int, tuple[Path, int]]:
    """Write one CSV per insurer from a stream ordered by insurer; returns {insurer id: (path, people)}."""
    names = ActorNames()
    amc = dict(Insurer.objects.values_list("pk", "amc_number"))
    written: dict[int, tuple[Path, int]] = {}
    handle = writer = None
    current = None
    try:
        for person, adherent, member in stream:
            if person.insurer_id != current:
                if handle:
                    handle.close()
                current = person.insurer_id
                path = out_dir / f"personnes-{amc.get(current, current)}.csv"
                handle = path.open("w", encoding="utf-8-sig", newline="")
                writer = csv_safe.writer(handle)
                writer.writerow(HEADER)
                written[current] = (path, 0)
            actors = sorted(names.label(*actor) for actor in person.actors)
            writer.writerow([
                adherent, member, describe_fields(person.fields), person.disclosures,
                _when(person.first_at), _when(person.last_at), " | ".join(actors),
            ])  # fmt: skip
            written[current] = (written[current][0], written[current][1] + 1)
            if progress is not None:
                progress.update(1)
    finally:
        if handle:
            handle.close()
    return written


def write_summary(
    out_dir: Path,
    criteria: ScopeCriteria,
    summary: ScopeSummary,
    files: dict[int, tuple[Path, int]],
    description: list[str],
) -> Path:
    """summary.txt (for people) and summary.json (for tools), with the totals per insurer."""
    insurers = {pk: (name, amc) for pk, name, amc in Insurer.objects.values_list("pk", "name", "amc_number")}
    lines = [
        "Périmètre d'exposition — Rempart",
        f"Établi le {_when(timezone.now())}",
        "Critères : " + " · ".join(description),
        "",
        f"Personnes exposées : {summary.people}",
        f"Divulgations : {summary.disclosures}",
        f"Tentatives sans correspondance (rien divulgué) : {summary.misses}",
        "",
        "Par assureur (AMC ; nom ; personnes ; divulgations ; fichier) :",
    ]
    data = {"criteria": criteria.to_json(), "people": summary.people, "disclosures": summary.disclosures,
            "misses": summary.misses, "insurers": []}  # fmt: skip
    for pk, totals in sorted(summary.per_insurer.items()):
        name, amc = insurers.get(pk, (f"#{pk}", ""))
        path = files.get(pk, (None, 0))[0]
        lines.append(
            f"  {amc} ; {name} ; {totals.people} ; {totals.disclosures} ; {path.name if path else '—'}"
        )
        data["insurers"].append({"amc_number": amc, "name": name, "people": totals.people,
                                 "disclosures": totals.disclosures, "file": path.name if path else None})  # fmt: skip
    (out_dir / "summary.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    summary_path = out_dir / "summary.txt"
    summary_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return summary_path
