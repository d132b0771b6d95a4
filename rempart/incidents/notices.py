"""Notices for the insurers of a frozen scope: French documents people open, stored with the incident.

For each insurer (controller) of a scope, Rempart (processor) produces:

1. its notification to the insurer (GDPR art. 33(2)), PDF;
2. the list of the people concerned (CSV, keyed by adherent number and line in the contract);
3. a pre-filled draft of the insurer's own notification to the CNIL (art. 33(3)), PDF;
4. a template of the letter to the people concerned (art. 34), PDF with «mail-merge» fields;
5. the mail-merge data for that letter (CSV).

The people's keys come only from ``rempart.incidents.exposure.exposure_keys``, which records the read.
The CSVs are streamed to files (bounded memory at any size); the PDFs carry numbers, never one page
per person. Every document is stored with its SHA-256; running again adds new documents.

Do not call this inside a database transaction: reading the keys appends to the ledger, whose chain
head stays locked until the enclosing transaction ends.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from reportlab.lib.units import cm

from rempart.incidents import categories, exposure, workflow
from rempart.incidents.documents import store_document
from rempart.incidents.ledger_words import ledger_line
from rempart.incidents.models import Document, Incident, Scope
from rempart.ledger.actor import Actor
from rempart.lib import csv_safe
from rempart.lib.dates import french_date, french_datetime
from rempart.lib.pdf import PdfDocument as _Pdf
from rempart.lib.progress import progress_bar
from rempart.registry.models import CareDomain, Insurer

DEFAULT_CONTACT = "Équipe sécurité Rempart"
TO_FILL = "[À COMPLÉTER]"
DRAFT_MARK = "PROJET — à relire et déposer par l'assureur"
AFFECTED_COLUMNS = (
    "numero_adherent",
    "rang",
    "donnees_exposees",
    "nombre_divulgations",
    "premiere_divulgation",
    "derniere_divulgation",
)
MERGE_COLUMNS = ("numero_adherent", "rang", "donnees_exposees", "periode")
MERGE_FIELDS_FROM_INSURER = ("civilite", "prenom", "nom", "adresse")
PROGRESS_STEP = 1000


class NoticeError(ValueError):
    """Notices cannot be generated for this scope (message safe to show)."""


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


def _category_rows(insurer: Insurer, counts: Counter) -> list[tuple[str, int]]:
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


NOT_DISCLOSED = (
    "le NIR (numéro de sécurité sociale), les nom et prénom, l'adresse postale, le téléphone, "
    "l'adresse électronique, les coordonnées bancaires et toute donnée médicale (actes, prescriptions, "
    "remboursements)"
)


def _n(number: int) -> str:
    """1234567 → '1 234 567' (French grouping, with no-break spaces)."""
    return f"{number:,}".replace(",", "\u00a0")


# --- Dates.


def _local(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment)


def _when(moment: dt.datetime | None) -> str:
    return french_datetime(moment) if moment else "—"


@lru_cache(maxsize=4096)
def period_words(first: dt.date, last: dt.date) -> str:
    if first == last:
        return f"le {french_date(first)}"
    return f"entre le {french_date(first)} et le {french_date(last)}"


def _window(scope: Scope) -> str:
    criteria = scope.criteria or {}
    since = dt.datetime.fromisoformat(criteria["since"]) if criteria.get("since") else None
    until = dt.datetime.fromisoformat(criteria["until"]) if criteria.get("until") else None
    start = f"du {_when(since)}" if since else "depuis le début du registre"
    end = f"au {_when(until)}" if until else f"jusqu'au gel du périmètre ({_when(scope.frozen_at)})"
    return f"{start} {end}"


# --- Streaming the people of one insurer into the two CSVs.


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


def _csv_time(local: dt.datetime) -> str:
    """'2026-11-25 14:03:12': local time (settings.TIME_ZONE, as the notice says), which spreadsheets read."""
    return local.isoformat(" ", "seconds")[:19]


def _csv_writer(handle):
    return csv_safe.writer(handle, lineterminator="\r\n")  # cells neutralised (no spreadsheet formulas)


def write_lists(actor: Actor, scope: Scope, insurer: Insurer, affected: Path, merge: Path, bar) -> Listed:
    """Write the affected list and the letter merge data of one insurer (UTF-8 with BOM, « ; »)."""
    listed = Listed()
    label = f"{scope.incident.number}/{scope.pk}/notices"
    zone = timezone.get_current_timezone()  # once: timezone.localtime() looks it up at every call
    pending = 0
    with (
        open(affected, "w", encoding="utf-8-sig", newline="") as affected_file,
        open(merge, "w", encoding="utf-8-sig", newline="") as merge_file,
    ):
        affected_rows, merge_rows = _csv_writer(affected_file), _csv_writer(merge_file)
        affected_rows.writerow(AFFECTED_COLUMNS)
        merge_rows.writerow(MERGE_COLUMNS)
        people = exposure.exposure_keys(actor, scope.pk, insurer_id=insurer.pk, label=label)
        for person, adherent, member in people:
            fields = frozenset(person.fields)
            short, plain = field_labels(fields)
            first, last = person.first_at.astimezone(zone), person.last_at.astimezone(zone)
            affected_rows.writerow(
                [adherent, member, short, person.disclosures, _csv_time(first), _csv_time(last)]
            )
            merge_rows.writerow([adherent, member, plain, period_words(first.date(), last.date())])
            listed.people += 1
            listed.disclosures += person.disclosures
            listed.field_sets[fields] += 1
            listed.actors.update(person.actors)
            if listed.first_at is None or person.first_at < listed.first_at:
                listed.first_at = person.first_at
            if listed.last_at is None or person.last_at > listed.last_at:
                listed.last_at = person.last_at
            pending += 1
            if pending == PROGRESS_STEP:
                bar.update(pending)
                pending = 0
    bar.update(pending)
    return listed


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
        return f"du {_when(self.listed.first_at)} au {_when(self.listed.last_at)}"

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


def _processor_notice(facts: Facts) -> bytes:
    incident, scope, insurer = facts.incident, facts.scope, facts.insurer
    pdf = _Pdf(
        title=f"{incident.number} — Notification de violation (art. 33(2) RGPD) — {insurer.name}",
        footer=facts.footer("notification du sous-traitant (art. 33(2) RGPD)"),
    )
    pdf.text(
        "De : Rempart, opérateur de tiers payant, sous-traitant (article 28 du RGPD)\n"
        f"À : {insurer.name} (numéro AMC {insurer.amc_number}), responsable de traitement\n"
        f"À l'attention de : {facts.dpo or 'votre délégué(e) à la protection des données'}\n"
        f"Établi le {_when(facts.generated_at)}",
        "small",
    )
    pdf.space()
    pdf.text("Notification d'une violation de données à caractère personnel", "title")
    pdf.text(
        f"Article 33(2) du RGPD — du sous-traitant au responsable de traitement — référence {incident.number}",
        "subtitle",
    )
    facts.ledger_alert(pdf)
    pdf.text(
        "En notre qualité de sous-traitant assurant pour votre compte le service de tiers payant (vérification "
        "des droits de vos bénéficiaires par les professionnels de santé), nous vous notifions, sans délai "
        "injustifié, une violation de données à caractère personnel concernant des personnes dont vous êtes "
        "responsable de traitement. Vous trouverez ici les éléments de votre propre notification à la CNIL "
        "(article 33(3)) ; un projet pré-rempli, la liste des personnes concernées et un modèle de lettre "
        "aux personnes (article 34) sont joints."
    )

    pdf.heading("1. En bref")
    pdf.facts(
        [
            ("Incident", f"{incident.number} — {incident.title}"),
            ("Détecté par Rempart le", _when(incident.detected_at)),
            ("Période examinée", _window(scope)),
            ("Consultations constatées", facts.seen),
            ("Personnes concernées (nombre exact)", _n(facts.people)),
            ("Enregistrements divulgués (nombre exact)", _n(facts.disclosures)),
            ("Tentatives sans correspondance", f"{_n(scope.misses)} (aucune donnée divulguée)"),
            ("Intégrité du registre", facts.ledger_verdict()),
            ("Échéance indicative CNIL (72 h)", _when(incident.deadline)),
        ]
    )

    pdf.heading("2. Nature de la violation")
    pdf.text(
        "Violation de la confidentialité : des réponses du service de vérification des droits ont été obtenues "
        "de manière illégitime."
    )
    pdf.text(f"Ce qui s'est passé : {incident.description.strip() or incident.title}")
    actors = len(facts.listed.actors)
    if actors:
        pdf.text(
            f"Les consultations ont été faites au moyen de {_n(actors)} compte(s) ou jeton(s) d'accès de professionnels "
            "de santé, identifiés dans notre registre des divulgations."
        )
    pdf.text(
        "Pour obtenir une réponse, il faut présenter les données de la carte du bénéficiaire (numéro AMC, numéro "
        "d'adhérent, NIR, date de naissance) : la personne à l'origine des consultations disposait donc déjà de "
        "ces données pour les personnes concernées, et nos réponses lui ont confirmé qu'elles étaient exactes."
    )

    pdf.heading("3. Catégories de données concernées")
    categories = _category_rows(insurer, facts.listed.per_field)
    if categories:
        pdf.facts(
            [(label, f"{_n(count)} personne(s)") for label, count in categories], widths=(12.5 * cm, 4.5 * cm)
        )
    pdf.text(
        f"Données NON divulguées : le service de vérification des droits ne renvoie jamais {NOT_DISCLOSED}. "
        "Ces données n'ont pas été communiquées par Rempart."
    )

    pdf.heading("4. Catégories et nombre de personnes et d'enregistrements")
    pdf.text(f"Catégorie de personnes : bénéficiaires de {insurer.name} (assurés et ayants droit).")
    pdf.add(f"<b>Nombre exact de personnes concernées : {_n(facts.people)}</b>")
    pdf.add(
        f"<b>Nombre exact d'enregistrements divulgués : {_n(facts.disclosures)}</b> "
        "(une réponse du service de vérification des droits = un enregistrement)."
    )
    pdf.text(
        f"Tentatives de consultation sans correspondance : {_n(scope.misses)}, sur l'ensemble de la période examinée "
        "(tous organismes confondus). Ces tentatives n'ont divulgué aucune donnée."
    )
    if facts.unlisted:
        pdf.alert(
            f"{_n(facts.unlisted)} personne(s) du périmètre ne figurent plus dans le registre des droits.",
            [
                "Leur contrat ou leur ligne a été supprimé depuis : elles sont comptées ci-dessus mais absentes de "
                "la liste jointe. Contactez-nous pour les identifier."
            ],
        )
    pdf.text(
        "La liste des personnes concernées est jointe (une ligne par personne, clé : numéro d'adhérent et rang, "
        "c'est-à-dire le numéro de ligne du bénéficiaire dans le contrat — et non son rang de naissance). "
        "Vous détenez les noms et adresses : Rempart ne les communique pas."
    )

    pdf.heading("5. Conséquences probables")
    pdf.bullets(
        [
            "Hameçonnage ciblé (appels, courriels, SMS) : connaissant l'affiliation et les droits de la personne, "
            f"un fraudeur peut se faire passer de façon crédible pour {insurer.name}, l'Assurance Maladie ou un "
            "professionnel de santé afin d'obtenir d'autres données (codes, coordonnées bancaires).",
            "Usurpation d'identité facilitée : les données de carte détenues par le fraudeur sont désormais "
            "confirmées comme exactes.",
            "Usage frauduleux des droits au tiers payant confirmés, auprès de professionnels de santé.",
        ]
    )

    pdf.heading("6. Mesures prises par Rempart")
    if facts.measures:
        pdf.bullets(facts.measures)
    else:
        pdf.text("Les mesures prises vous seront précisées dans une notification complémentaire.")
    pdf.text("Mesures que nous vous recommandons :")
    pdf.bullets(
        [
            "informer les personnes concernées (modèle de lettre et données de publipostage joints) ;",
            "alerter votre service client sur le risque d'appels et de messages frauduleux ;",
            "surveiller les demandes de prise en charge inhabituelles sur les contrats concernés.",
        ]
    )

    pdf.heading("7. Délais")
    pdf.text(
        "Votre délai de notification à la CNIL (72 heures, article 33(1)) court à partir du moment où vous avez "
        "eu connaissance de la violation. À titre indicatif, 72 heures après notre détection : "
        f"{_when(incident.deadline)}. Des informations complémentaires pourront être fournies par phases "
        "(article 33(4))."
    )

    pdf.heading("8. Références et contact")
    pdf.facts(
        [
            ("Référence", incident.number),
            ("Périmètre", f"« {scope.label} », gelé le {_when(scope.frozen_at)}"),
            ("Empreinte du périmètre (SHA-256)", scope.digest or "—"),
            ("Intégrité du registre", facts.ledger_verdict()),
            ("Contact", facts.contact),
        ],
        hashes=("Empreinte du périmètre (SHA-256)",),
    )
    if facts.attachments:
        pdf.text("Pièces jointes :")
        pdf.facts(
            [(what, f"{name}\nSHA-256 : {sha}") for what, name, sha in facts.attachments],
            widths=(4.6 * cm, 12.4 * cm),
            hashes=tuple(what for what, _name, _sha in facts.attachments),
        )
    pdf.text("Heures exprimées en heure de Paris.", "small")
    return pdf.render()


def _cnil_draft(facts: Facts, letter_name: str) -> bytes:
    incident, scope, insurer = facts.incident, facts.scope, facts.insurer
    pdf = _Pdf(
        title=f"{incident.number} — Projet de notification à la CNIL (art. 33(3) RGPD) — {insurer.name}",
        footer=facts.footer(DRAFT_MARK),
        banner=DRAFT_MARK,
    )
    pdf.text(DRAFT_MARK, "draft")
    pdf.text("Notification d'une violation de données à caractère personnel à la CNIL", "title")
    pdf.text(
        f"Article 33(3) du RGPD — projet pré-rempli par Rempart (sous-traitant) pour {insurer.name} "
        f"(responsable de traitement), à partir de l'incident {incident.number}. Les mentions {TO_FILL} sont à "
        "renseigner par l'assureur, qui relit l'ensemble et dépose la notification (téléservice de la CNIL).",
        "subtitle",
    )
    facts.ledger_alert(pdf)

    pdf.heading("Responsable de traitement")
    pdf.facts(
        [
            ("Organisme", f"{insurer.name} (numéro AMC {insurer.amc_number})"),
            ("SIREN, adresse", TO_FILL),
            ("Représentant légal", TO_FILL),
            ("Personne à contacter", TO_FILL),
            ("Type de notification", f"initiale (compléments possibles par phases, article 33(4)) {TO_FILL}"),
        ]
    )

    pdf.heading("b) Délégué à la protection des données")
    pdf.facts(
        [
            ("Nom", insurer.dpo_name or TO_FILL),
            ("Courriel", insurer.dpo_email or TO_FILL),
            ("Téléphone", insurer.dpo_phone or TO_FILL),
        ]
    )

    pdf.heading("Chronologie")
    late_reason = (
        f"{TO_FILL} (obligatoire : la notification intervient plus de 72 heures après la détection)"
        if facts.late
        else f"sans objet si la notification est déposée avant le {_when(incident.deadline)} ; sinon {TO_FILL}"
    )
    pdf.facts(
        [
            ("Faits constatés", facts.seen),
            ("Période examinée", _window(scope)),
            ("Détection par le sous-traitant (Rempart)", _when(incident.detected_at)),
            ("Prise de connaissance par l'organisme", f"{TO_FILL} (réception de la notification de Rempart)"),
            ("Échéance indicative (72 h)", _when(incident.deadline)),
            ("Motifs du retard", late_reason),
        ]
    )

    pdf.heading("a) Nature de la violation")
    pdf.text(
        "Violation de la confidentialité : consultations illégitimes du service de vérification des droits au "
        "tiers payant exploité par Rempart, sous-traitant de l'organisme."
    )
    pdf.text(f"Circonstances : {incident.description.strip() or incident.title}")
    pdf.text(f"Origine : acte malveillant {TO_FILL} (à confirmer).")
    pdf.text("Catégories de données concernées :")
    categories = _category_rows(insurer, facts.listed.per_field)
    if categories:
        pdf.facts(
            [(label, f"{_n(count)} personne(s)") for label, count in categories], widths=(12.5 * cm, 4.5 * cm)
        )
    pdf.text(f"Données non concernées : {NOT_DISCLOSED} (jamais renvoyés par le service).")
    pdf.text(f"Catégories de personnes : bénéficiaires de {insurer.name} (assurés et ayants droit).")
    pdf.facts(
        [
            ("Nombre de personnes concernées", f"{_n(facts.people)} (nombre exact)"),
            ("Nombre d'enregistrements concernés", f"{_n(facts.disclosures)} (nombre exact)"),
        ]
    )

    pdf.heading("c) Conséquences probables")
    pdf.bullets(
        [
            "hameçonnage ciblé (appels, courriels, SMS se réclamant de l'organisme ou de l'Assurance Maladie) ;",
            "usurpation d'identité facilitée par la confirmation des données de carte détenues par le fraudeur ;",
            "usage frauduleux des droits au tiers payant auprès de professionnels de santé.",
        ]
    )
    pdf.text(f"Gravité estimée par l'organisme : {TO_FILL}")

    pdf.heading("d) Mesures prises ou envisagées")
    pdf.text("Par le sous-traitant (Rempart) :")
    pdf.bullets(facts.measures or [f"{TO_FILL} (voir la notification de Rempart)"])
    pdf.text(f"Par l'organisme : {TO_FILL}")

    pdf.heading("Information des personnes (article 34)")
    pdf.text(
        f"Envisagée : courrier individuel aux {_n(facts.people)} personne(s) concernée(s) (modèle joint : "
        f"{letter_name}), date prévue {TO_FILL}."
    )
    pdf.heading("Aspects transfrontaliers")
    pdf.text(f"Personnes concernées dans d'autres États membres : {TO_FILL}")
    pdf.space()
    pdf.text(
        f"Référence Rempart : {incident.number}, périmètre « {scope.label} » (empreinte SHA-256 {scope.digest or '—'}). "
        f"Intégrité du registre : {facts.ledger_verdict()}. Contact Rempart : {facts.contact}. "
        "Heures exprimées en heure de Paris.",
        "small",
    )
    return pdf.render()


def _letter(facts: Facts, merge_name: str) -> bytes:
    incident, insurer = facts.incident, facts.insurer
    pdf = _Pdf(
        title=f"{incident.number} — Modèle de lettre aux personnes concernées (art. 34 RGPD) — {insurer.name}",
        footer=facts.footer("modèle de lettre (art. 34 RGPD)"),
    )
    pdf.text(f"Modèle de lettre aux personnes concernées — {insurer.name}", "title")
    pdf.text("Article 34 du RGPD — notes pour l'organisme (cette page n'est pas à envoyer)", "subtitle")
    pdf.bullets(
        [
            f"Cette lettre est à adapter puis à envoyer par {insurer.name} aux {_n(facts.people)} personne(s) "
            "concernée(s), sans délai injustifié.",
            f"Champs à remplir à partir de vos fichiers (Rempart ne détient pas les adresses) : "
            f"{', '.join('«' + name + '»' for name in MERGE_FIELDS_FROM_INSURER)}.",
            f"Champs remplis par le fichier de publipostage {merge_name} (une ligne par personne) : "
            f"{', '.join('«' + name + '»' for name in MERGE_COLUMNS)}. Rapprochez-le de vos fichiers par le "
            "numéro d'adhérent et le rang (numéro de ligne du bénéficiaire dans le contrat). Dans un tableur, "
            "importez la colonne numero_adherent en texte pour garder les zéros en tête.",
            "Relisez la partie « Ce que nous avons fait » et complétez «signataire».",
            "De préférence par courrier ou dans l'espace adhérent ; si vous l'envoyez par courriel, n'y mettez "
            "aucun lien cliquable ni pièce jointe, pour ne pas ressembler aux messages frauduleux.",
        ]
    )
    pdf.page_break()

    pdf.text(insurer.name, "h2")
    pdf.text("«civilite» «prenom» «nom»\n«adresse»", "letter")
    pdf.text(f"Référence : {incident.number} — adhérent «numero_adherent», rang «rang»", "small")
    pdf.space(0.2)
    pdf.text(
        "Objet : information sur un incident de sécurité concernant certaines de vos données", "letter_head"
    )
    pdf.text("«civilite»,", "letter")
    pdf.text(
        "Nous vous informons qu'un incident de sécurité a touché le service de tiers payant que les professionnels "
        f"de santé utilisent pour vérifier vos droits, exploité pour le compte de {insurer.name} par notre "
        "prestataire Rempart.",
        "letter",
    )
    pdf.text("Ce qui s'est passé", "letter_head")
    pdf.text(
        f"Le {french_date(_local(incident.detected_at).date())}, des consultations anormales de ce service ont été détectées. "
        "Vos données ont été consultées «periode». Les informations suivantes ont été communiquées à la personne "
        "à l'origine de ces consultations : «donnees_exposees».",
        "letter",
    )
    pdf.text("Ce qui n'a pas été communiqué", "letter_head")
    pdf.text(
        "Ce service ne communique jamais votre numéro de sécurité sociale, vos nom et prénom, votre adresse, votre "
        "téléphone, votre adresse électronique, vos coordonnées bancaires ni vos données médicales. Pour faire ces "
        "consultations, cette personne devait toutefois déjà connaître certaines informations de votre carte de "
        "tiers payant (numéro d'adhérent, numéro de sécurité sociale, date de naissance).",
        "letter",
    )
    pdf.text("Les conséquences possibles", "letter_head")
    pdf.text(
        f"Ces informations pourraient servir à vous contacter en se faisant passer pour {insurer.name}, "
        "l'Assurance Maladie ou un professionnel de santé, afin d'obtenir d'autres informations (mots de passe, "
        "codes, coordonnées bancaires) : c'est ce qu'on appelle l'hameçonnage. Elles pourraient aussi servir à "
        "une tentative d'usurpation de votre identité.",
        "letter",
    )
    pdf.text("Ce que nous avons fait", "letter_head")
    measures = [_without_stamp(line) for line in facts.measures]
    if measures:
        pdf.bullets(measures, "letter_bullet")
    else:
        pdf.text(f"{TO_FILL} (mesures prises)", "letter")
    pdf.text("Ce que nous vous conseillons", "letter_head")
    pdf.bullets(
        [
            "Méfiez-vous des appels, courriels ou SMS inattendus qui parlent de votre complémentaire santé, de vos "
            "droits ou de vos remboursements, même s'ils citent des informations exactes vous concernant.",
            f"Ne communiquez jamais vos mots de passe, vos codes reçus par SMS ni vos coordonnées bancaires : "
            f"{insurer.name} ne vous les demandera jamais par téléphone, courriel ou SMS.",
            "Ne cliquez pas sur les liens et n'ouvrez pas les pièces jointes des messages douteux. En cas de doute, "
            "raccrochez et appelez-nous au numéro habituel (sur votre carte de tiers payant ou dans votre espace "
            "adhérent).",
            "Vérifiez vos relevés de remboursement (espace adhérent, compte ameli) et signalez-nous toute prestation "
            "que vous n'avez pas reçue.",
            "Vous pouvez signaler un courriel frauduleux sur signal-spam.fr, un SMS frauduleux en le transférant "
            "au 33700, et trouver de l'aide sur cybermalveillance.gouv.fr.",
        ],
        "letter_bullet",
    )
    pdf.text("Pour toute question", "letter_head")
    pdf.text(
        f"Notre délégué(e) à la protection des données : {facts.dpo or '«contact_dpo»'}. Vous pouvez aussi "
        "adresser une réclamation à la CNIL (www.cnil.fr).",
        "letter",
    )
    pdf.text(
        "Nous vous prions de nous excuser pour cet incident et vous prions d'agréer, «civilite», l'expression de "
        "nos salutations distinguées.",
        "letter",
    )
    pdf.text(f"«signataire»\n{insurer.name}", "letter")
    return pdf.render()


def _without_stamp(line: str) -> str:
    """'25/11/2026 14:03 — Compte suspendu' (workflow.add_measure) → 'Compte suspendu'."""
    head, separator, tail = line.partition(" — ")
    if separator and len(head) == 16 and head[2] == "/" and head[13] == ":":
        return tail
    return line


# --- Putting it together.


def _work_dir() -> Path:
    """Temporary files hold adherent numbers: keep them in the private incident directory."""
    path = Path(settings.REMPART_INCIDENT_DIR) / ".work"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _name(incident: Incident, scope: Scope, insurer: Insurer, what: str, stamp: str, ext: str) -> str:
    return f"{incident.number}-P{scope.pk}_{what}_{insurer.amc_number}_{stamp}.{ext}"


class _TeeBar:
    """The terminal's progress bar, also told to ``on_progress(done, total)`` (a job's progress)."""

    def __init__(self, bar, on_progress) -> None:
        self.bar, self.on_progress = bar, on_progress

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, n: int) -> None:
        self.bar.update(n)
        if self.on_progress is not None:
            self.on_progress(self.bar.n, self.bar.total)

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.bar.set_postfix_str(text, refresh=refresh)


def generate_notices(
    incident: Incident,
    scope: Scope,
    *,
    by=None,
    actor: Actor,
    show_progress: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> list[Document]:
    """Write and store the five documents of every insurer of the scope; return them (all or none stored).

    The documents are French legal texts whatever the language of the analyst's console."""
    with translation.override("fr"):
        return _generate_notices(
            incident, scope, by=by, actor=actor, show_progress=show_progress, on_progress=on_progress
        )


def _generate_notices(
    incident: Incident, scope: Scope, *, by=None, actor: Actor, show_progress: bool, on_progress
) -> list[Document]:
    if scope.incident_id != incident.pk:
        raise NoticeError("ce périmètre appartient à un autre incident")
    scope.incident = incident
    totals = {int(key): value for key, value in (scope.per_insurer or {}).items()}
    insurers = Insurer.objects.in_bulk(list(totals))
    missing = sorted(set(totals) - set(insurers))
    if missing:
        raise NoticeError(f"organisme(s) introuvable(s) dans le registre : {', '.join(map(str, missing))}")
    generated_at = timezone.now()
    stamp = f"{_local(generated_at):%Y%m%d-%H%M%S}"
    order = sorted(totals, key=lambda pk: (insurers[pk].name, pk))
    documents: list[Document] = []
    with tempfile.TemporaryDirectory(dir=_work_dir(), prefix="notices-") as work:
        # 1. Stream every insurer's people to files (reads recorded by the gate), before any write here.
        lists = {}
        bar = _TeeBar(
            progress_bar(
                sum(int(totals[pk]["people"]) for pk in order),
                "notices",
                unit="personne",
                enabled=show_progress,
            ),
            on_progress,
        )
        with bar:
            for pk in order:
                insurer = insurers[pk]
                affected = Path(work) / _name(incident, scope, insurer, "liste-personnes", stamp, "csv")
                merge = Path(work) / _name(incident, scope, insurer, "publipostage", stamp, "csv")
                bar.set_postfix_str(insurer.name[:30], refresh=False)
                lists[pk] = (affected, merge, write_lists(actor, scope, insurer, affected, merge, bar))
        # 2. Store everything in one go: all the documents, or none.
        try:
            with transaction.atomic():
                for pk in order:
                    documents += _store_insurer(
                        incident, scope, insurers[pk], totals[pk], lists[pk], generated_at, stamp, by
                    )
                _log(incident, scope, insurers, totals, order, documents, by)
        except BaseException:
            for document in documents:
                document.file.storage.delete(document.file.name)
            raise
    return documents


def _store_insurer(incident, scope, insurer, totals, lists, generated_at, stamp, by) -> list[Document]:
    affected, merge, listed = lists
    facts = Facts(
        incident=incident,
        scope=scope,
        insurer=insurer,
        people=int(totals["people"]),
        disclosures=int(totals["disclosures"]),
        listed=listed,
        generated_at=generated_at,
    )
    common = {"insurer": insurer, "scope": scope, "by": by}
    stored = []

    def keep(kind, what, ext, content_type, content, label):
        document = store_document(
            incident,
            kind=kind,
            filename=_name(incident, scope, insurer, what, stamp, ext),
            content_type=content_type,
            path_or_bytes=content,
            **common,
        )
        stored.append(document)
        facts.attachments.append((label, document.filename, document.sha256))
        return document

    csv_type = "text/csv; charset=utf-8"
    keep(
        Document.Kind.AFFECTED_LIST,
        "liste-personnes",
        "csv",
        csv_type,
        affected,
        "Liste des personnes concernées",
    )
    merge_doc = keep(
        Document.Kind.LETTER_MERGE, "publipostage", "csv", csv_type, merge, "Données de publipostage"
    )
    letter = keep(
        Document.Kind.LETTER,
        "modele-lettre-art34",
        "pdf",
        "application/pdf",
        _letter(facts, merge_doc.filename),
        "Modèle de lettre aux personnes (art. 34)",
    )
    keep(
        Document.Kind.CNIL_DRAFT,
        "projet-notification-cnil",
        "pdf",
        "application/pdf",
        _cnil_draft(facts, letter.filename),
        "Projet de notification à la CNIL (art. 33(3))",
    )
    notice = store_document(
        incident,
        kind=Document.Kind.PROCESSOR_NOTICE,
        filename=_name(incident, scope, insurer, "notification-art33-2", stamp, "pdf"),
        content_type="application/pdf",
        path_or_bytes=_processor_notice(facts),
        **common,
    )
    return [notice, *stored]


def _log(incident, scope, insurers, totals, order, documents, by) -> None:
    if not order:
        workflow.log(
            incident, "notices", f"« {scope.label} » : aucune personne concernée, aucun document", by
        )
        return
    per_insurer = "; ".join(
        f"{insurers[pk].name} : {totals[pk]['people']} personne(s), {totals[pk]['disclosures']} divulgation(s)"
        for pk in order
    )
    verdict = "" if scope.ledger_ok else " ; REGISTRE ALTÉRÉ signalé dans les notifications"
    workflow.log(
        incident,
        "notices",
        f"« {scope.label} » : {len(documents)} document(s) pour {len(order)} organisme(s) — {per_insurer}{verdict}",
        by,
    )
