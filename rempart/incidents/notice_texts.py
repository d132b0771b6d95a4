"""The French texts of an insurer's three PDFs: Rempart's notice, the CNIL draft, the letter template.

1. :func:`processor_notice_pdf`: Rempart's notification to the insurer (GDPR art. 33(2));
2. :func:`cnil_draft_pdf`: a pre-filled draft of the insurer's own notification to the CNIL (art. 33(3));
3. :func:`letter_pdf`: the letter to the people concerned (art. 34), with «mail-merge» fields.

Legal prose, kept apart from the orchestration (``notices.py``) so that it can be read and reviewed as
text; every figure comes from the :class:`~rempart.incidents.notice_facts.Facts`, never one page per person.
"""

from __future__ import annotations

import datetime as dt

from reportlab.lib.units import cm

from rempart.incidents.models import Scope
from rempart.incidents.notice_facts import Facts, category_rows, local_time, moment_words
from rempart.lib.dates import french_date
from rempart.lib.pdf import PdfDocument as _Pdf

TO_FILL = "[À COMPLÉTER]"
DRAFT_MARK = "PROJET — à relire et déposer par l'assureur"
MERGE_COLUMNS = ("numero_adherent", "rang", "donnees_exposees", "periode")  # filled by the merge file
MERGE_FIELDS_FROM_INSURER = ("civilite", "prenom", "nom", "adresse")  # filled by the insurer

NOT_DISCLOSED = (
    "le NIR (numéro de sécurité sociale), les nom et prénom, l'adresse postale, le téléphone, "
    "l'adresse électronique, les coordonnées bancaires et toute donnée médicale (actes, prescriptions, "
    "remboursements)"
)


def _n(number: int) -> str:
    """1234567 → '1 234 567' (French grouping, with no-break spaces)."""
    return f"{number:,}".replace(",", "\u00a0")


def _window(scope: Scope) -> str:
    criteria = scope.criteria or {}
    since = dt.datetime.fromisoformat(criteria["since"]) if criteria.get("since") else None
    until = dt.datetime.fromisoformat(criteria["until"]) if criteria.get("until") else None
    start = f"du {moment_words(since)}" if since else "depuis le début du registre"
    end = (
        f"au {moment_words(until)}"
        if until
        else f"jusqu'au gel du périmètre ({moment_words(scope.frozen_at)})"
    )
    return f"{start} {end}"


def processor_notice_pdf(facts: Facts) -> bytes:
    incident, scope, insurer = facts.incident, facts.scope, facts.insurer
    pdf = _Pdf(
        title=f"{incident.number} — Notification de violation (art. 33(2) RGPD) — {insurer.name}",
        footer=facts.footer("notification du sous-traitant (art. 33(2) RGPD)"),
    )
    pdf.text(
        "De : Rempart, opérateur de tiers payant, sous-traitant (article 28 du RGPD)\n"
        f"À : {insurer.name} (numéro AMC {insurer.amc_number}), responsable de traitement\n"
        f"À l'attention de : {facts.dpo or 'votre délégué(e) à la protection des données'}\n"
        f"Établi le {moment_words(facts.generated_at)}",
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
            ("Détecté par Rempart le", moment_words(incident.detected_at)),
            ("Période examinée", _window(scope)),
            ("Consultations constatées", facts.seen),
            ("Personnes concernées (nombre exact)", _n(facts.people)),
            ("Enregistrements divulgués (nombre exact)", _n(facts.disclosures)),
            ("Tentatives sans correspondance", f"{_n(scope.misses)} (aucune donnée divulguée)"),
            ("Intégrité du registre", facts.ledger_verdict()),
            ("Échéance indicative CNIL (72 h)", moment_words(incident.deadline)),
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
    categories = category_rows(insurer, facts.listed.per_field)
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
        f"{moment_words(incident.deadline)}. Des informations complémentaires pourront être fournies par phases "
        "(article 33(4))."
    )

    pdf.heading("8. Références et contact")
    pdf.facts(
        [
            ("Référence", incident.number),
            ("Périmètre", f"« {scope.label} », gelé le {moment_words(scope.frozen_at)}"),
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


def cnil_draft_pdf(facts: Facts, letter_name: str) -> bytes:
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
        else f"sans objet si la notification est déposée avant le {moment_words(incident.deadline)} ; sinon {TO_FILL}"
    )
    pdf.facts(
        [
            ("Faits constatés", facts.seen),
            ("Période examinée", _window(scope)),
            ("Détection par le sous-traitant (Rempart)", moment_words(incident.detected_at)),
            ("Prise de connaissance par l'organisme", f"{TO_FILL} (réception de la notification de Rempart)"),
            ("Échéance indicative (72 h)", moment_words(incident.deadline)),
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
    categories = category_rows(insurer, facts.listed.per_field)
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


def letter_pdf(facts: Facts, merge_name: str) -> bytes:
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
        f"Le {french_date(local_time(incident.detected_at).date())}, des consultations anormales de ce service ont été détectées. "
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
