"""The rights registry: insurers, their products and guarantees, contracts and beneficiaries, professionals.

NIR and IBAN are stored only as AES-GCM ciphertexts plus a keyed blind index (see rempart.lib.crypto).
There is deliberately no database index on a NIR blind index: beneficiaries are reached through
their contract (numéro AMC + adherent number, as printed on the card), never by NIR alone.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import mask_iban


class CareDomain(models.TextChoices):
    PHAR = "PHAR", _("Pharmacie")
    MEDE = "MEDE", _("Médecins")
    LABO = "LABO", _("Laboratoires")
    RADL = "RADL", _("Radiologie")
    AUXI = "AUXI", _("Auxiliaires médicaux")
    DENT = "DENT", _("Dentaire")
    OPTI = "OPTI", _("Optique")
    AUDI = "AUDI", _("Audioprothèses")
    HOSP = "HOSP", _("Hospitalisation")
    TRAN = "TRAN", _("Transport")
    SAGE = "SAGE", _("Sages-femmes")


# Card codes meaning "no tiers payant in this domain" (sans prise en charge, non, blank).
NO_TIERS_PAYANT_CODES = frozenset({"", "SP", "NON"})

# Domains whose guarantees carry the ceilings used by the prise en charge engine.
CEILING_DOMAINS = {CareDomain.OPTI, CareDomain.AUDI, CareDomain.DENT}


class Insurer(models.Model):
    class Kind(models.TextChoices):
        MUTUELLE = "mutuelle", _("Mutuelle")
        PREVOYANCE = "prevoyance", _("Institution de prévoyance")
        ASSUREUR = "assureur", _("Entreprise d'assurance")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspendue")
        WITHDRAWN = "withdrawn", _("Retirée")

    amc_number = models.CharField(_("numéro AMC"), max_length=9, unique=True)
    name = models.CharField(_("nom"), max_length=200)
    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices)
    dpo_name = models.CharField(_("DPO"), max_length=200, blank=True)
    dpo_email = models.EmailField(_("courriel du DPO"), blank=True)
    dpo_phone = models.CharField(_("téléphone du DPO"), max_length=30, blank=True)
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        verbose_name = _("assureur (AMC)")
        verbose_name_plural = _("assureurs (AMC)")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.amc_number})"


class Product(models.Model):
    insurer = models.ForeignKey(Insurer, on_delete=models.PROTECT, related_name="products")
    code = models.CharField(_("code"), max_length=20)
    label = models.CharField(_("libellé"), max_length=200)
    responsible = models.BooleanField(_("contrat responsable"), default=True)

    class Meta:
        verbose_name = _("produit")
        constraints = [models.UniqueConstraint(fields=["insurer", "code"], name="product_unique_code")]

    def __str__(self) -> str:
        return f"{self.code} — {self.label}"

    def guarantee_for(self, domain: str, on: dt.date) -> Guarantee | None:
        """The guarantee in force for a domain on a date (the latest version effective by then)."""
        return (
            self.guarantees.filter(domain=domain, effective_from__lte=on).order_by("-effective_from").first()
        )


class Guarantee(models.Model):
    """One version of a product's tiers payant terms for one care domain."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="guarantees")
    domain = models.CharField(_("domaine"), max_length=4, choices=CareDomain.choices)
    effective_from = models.DateField(_("en vigueur le"))
    tp_code = models.CharField(
        _("code tiers payant"), max_length=8, help_text=_("Tel qu'imprimé sur la carte")
    )
    rate_percent = models.PositiveSmallIntegerField(_("taux (% de la BR)"), null=True, blank=True)
    amount_cents = models.PositiveIntegerField(_("forfait (centimes)"), null=True, blank=True)
    pec_required = models.BooleanField(_("prise en charge requise"), default=False)
    ceilings = models.JSONField(_("plafonds (centimes)"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("garantie")
        constraints = [
            models.UniqueConstraint(
                fields=["product", "domain", "effective_from"], name="guarantee_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.domain} {self.tp_code} ({self.effective_from})"

    @property
    def tiers_payant_allowed(self) -> bool:
        return self.tp_code not in NO_TIERS_PAYANT_CODES


class Contract(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("Actif")
        SUSPENDED = "suspended", _("Suspendu")
        TERMINATED = "terminated", _("Résilié")

    id = models.AutoField(primary_key=True)  # 4 bytes, here and in every beneficiary row pointing here
    # The database checks the three foreign keys below once per statement, not once per row (migration 0006,
    # rempart.lib.statement_fk): db_constraint=False only tells Django it does not manage the constraint.
    insurer = models.ForeignKey(
        Insurer, on_delete=models.PROTECT, related_name="contracts", db_index=False, db_constraint=False
    )  # no index of its own: the unique (insurer, adherent number) index serves lookups by insurer
    adherent_number = models.CharField(_("numéro d'adhérent"), max_length=20)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="contracts", db_constraint=False
    )
    start_date = models.DateField(_("début"))
    end_date = models.DateField(_("fin"), null=True, blank=True)
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # Keyed 64-bit fingerprint of the row as last imported (see rights_format.check_row).
    fingerprint = models.BigIntegerField(editable=False)

    class Meta:
        verbose_name = _("contrat")
        constraints = [
            models.UniqueConstraint(fields=["insurer", "adherent_number"], name="contract_unique_adherent")
        ]

    def __str__(self) -> str:
        return f"{self.insurer.amc_number}/{self.adherent_number}"

    def is_open_on(self, day: dt.date) -> bool:
        return (
            self.status == self.Status.ACTIVE
            and self.start_date <= day
            and (self.end_date is None or day <= self.end_date)
        )


class Beneficiary(models.Model):
    class Quality(models.TextChoices):
        ASSURE = "A", _("Assuré principal")
        CONJOINT = "C", _("Conjoint")
        ENFANT = "E", _("Enfant")
        AUTRE = "O", _("Autre ayant droit")

    class Sex(models.TextChoices):
        MALE = "M", _("Homme")
        FEMALE = "F", _("Femme")

    id = models.AutoField(
        primary_key=True
    )  # 4 bytes: 2 billion rows are enough, and every byte counts at 33 M
    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="beneficiaries", db_index=False, db_constraint=False
    )  # checked once per statement (see Contract.insurer)
    member_number = models.PositiveSmallIntegerField(_("numéro de ligne"))
    quality = models.CharField(_("qualité"), max_length=1, choices=Quality.choices)
    last_name = models.CharField(_("nom"), max_length=60)
    first_name = models.CharField(_("prénom"), max_length=60)
    sex = models.CharField(_("sexe"), max_length=1, choices=Sex.choices)
    birth_year = models.PositiveSmallIntegerField()
    birth_month = models.PositiveSmallIntegerField(null=True, blank=True)
    birth_day = models.PositiveSmallIntegerField(null=True, blank=True)
    birth_rank = models.PositiveSmallIntegerField(_("rang de naissance"), default=1)
    nir_cipher = models.BinaryField(null=True, editable=False)
    nir_index = models.BinaryField(null=True, editable=False)
    od_nir_cipher = models.BinaryField(null=True, editable=False)
    od_nir_index = models.BinaryField(null=True, editable=False)
    coverage_start = models.DateField(_("début de couverture"))
    coverage_end = models.DateField(_("fin de couverture"), null=True, blank=True)
    # Keyed 64-bit fingerprint of the row as last imported (see rights_format.check_row).
    fingerprint = models.BigIntegerField(editable=False)

    class Meta:
        verbose_name = _("bénéficiaire")
        constraints = [
            models.UniqueConstraint(fields=["contract", "member_number"], name="beneficiary_unique_member")
        ]

    def __str__(self) -> str:
        # Never the NIR, never the name: this string may reach logs and admin pages.
        return f"bénéficiaire #{self.pk}"

    def is_covered_on(self, day: dt.date) -> bool:
        return self.coverage_start <= day and (self.coverage_end is None or day <= self.coverage_end)


class Professional(models.Model):
    """A health professional organisation (shop, pharmacy, lab, hospital) as the operator knows it."""

    class Convention(models.TextChoices):
        CONVENTIONNE = "conventionne", _("Conventionné")
        NON_CONVENTIONNE = "non_conventionne", _("Non conventionné")

    finess = models.CharField(_("FINESS"), max_length=9, null=True, blank=True, unique=True)  # noqa: DJ001 - unique when given
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    name = models.CharField(_("raison sociale"), max_length=200)
    domains = models.JSONField(_("domaines de soins"), default=list)
    address = models.CharField(_("adresse"), max_length=200, blank=True)
    postal_code = models.CharField(_("code postal"), max_length=5, blank=True)
    city = models.CharField(_("ville"), max_length=100, blank=True)
    iban_cipher = models.BinaryField(null=True, editable=False)
    iban_index = models.BinaryField(null=True, editable=False)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    # Set when the bank rejected a transfer to this IBAN (pain.002: closed account, wrong IBAN…); cleared by a
    # new IBAN. A failed IBAN is not paid again: payments are held until the owner gives a new one.
    iban_failed_at = models.DateTimeField(null=True, blank=True)
    iban_failed_reason = models.CharField(max_length=4, blank=True)  # ISO 20022 status reason code
    networks = models.JSONField(_("réseaux de soins"), default=list, blank=True)
    convention = models.CharField(
        _("convention"), max_length=20, choices=Convention.choices, default=Convention.CONVENTIONNE
    )

    class Meta:
        verbose_name = _("professionnel de santé")
        verbose_name_plural = _("professionnels de santé")

    def __str__(self) -> str:
        return self.name

    def set_iban(self, iban: str) -> None:
        cipher = field_cipher()
        self.iban_cipher = cipher.encrypt("iban", iban)
        self.iban_index = cipher.blind_index("iban", iban)

    def masked_iban(self) -> str:
        """The IBAN as anyone ever sees it: country, check key and last 4 (``FR76 •••• 1234``)."""
        if not self.iban_cipher:
            return ""
        return mask_iban(field_cipher().decrypt("iban", self.iban_cipher))


class BankDetailsChange(models.Model):
    """A new IBAN asked for by an owner, paid only after its hold (rempart.registry.bank_hold).

    Until ``hold_until`` the organisation is paid on the previous IBAN (kept here encrypted, so that what was
    paid at any instant can be answered after the release too); any owner or the operator may cancel it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        RELEASED = "released", _("Appliqué")
        CANCELLED = "cancelled", _("Annulé")
        REPLACED = "replaced", _("Remplacé par une nouvelle demande")

    professional = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="bank_changes")
    iban_cipher = models.BinaryField(editable=False)
    iban_index = models.BinaryField(editable=False)
    iban_masked = models.CharField(_("nouvel IBAN"), max_length=40)  # "FR76 •••• 1234"
    bic = models.CharField(_("BIC"), max_length=11)
    previous_iban_cipher = models.BinaryField(null=True, editable=False)
    previous_iban_masked = models.CharField(_("IBAN précédent"), max_length=40, blank=True)
    previous_bic = models.CharField(max_length=11, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(_("demandé le"))
    hold_until = models.DateTimeField(_("en attente jusqu'au"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("changement de coordonnées bancaires")
        verbose_name_plural = _("changements de coordonnées bancaires")
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["professional"],
                condition=models.Q(status="pending"),
                name="bank_change_one_pending",
            )
        ]
        indexes = [models.Index(fields=["status", "hold_until"], name="bank_change_due")]

    def __str__(self) -> str:
        return f"{self.iban_masked} ({self.get_status_display()})"


class ImportRun(models.Model):
    """One import of a rights or products file, kept as the audit trail of what changed and why."""

    class Status(models.TextChoices):
        RUNNING = "running", _("En cours")
        SUCCEEDED = "succeeded", _("Réussi")
        DRY_RUN = "dry_run", _("Simulation")
        REFUSED = "refused", _("Refusé")
        FAILED = "failed", _("Échec")
        # Never stored by the import itself: what a ``running`` run whose process is gone is shown as.
        INTERRUPTED = "interrupted", _("Interrompu")

    insurer = models.ForeignKey(Insurer, on_delete=models.PROTECT, null=True, related_name="imports")
    kind = models.CharField(max_length=10, default="rights")
    mode = models.CharField(max_length=5, default="delta")
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)
    counts = models.JSONField(default=dict)
    message = models.TextField(blank=True)  # older runs: an English sentence, shown as it is
    # The refusal or the warnings, as codes and parameters (rempart.registry.import_messages), worded when shown.
    notes = models.JSONField(default=list, blank=True)
    report_dir = models.CharField(max_length=500, blank=True)
    # Which process runs it, to tell a run in progress from one whose process died (rempart.registry.import_runs).
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True)
    process_token = models.CharField(max_length=80, blank=True)  # boot id + the process's start time
    heartbeat_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk} ({self.status})"

    def current_status(self, now: dt.datetime | None = None) -> str:
        """The status to show: ``running`` only while its process lives; a dead one is ``interrupted``.

        A run whose merge committed is never ``running``: its ``succeeded`` is written inside the merge's
        own transaction, so a process killed after the commit leaves a run that says so.
        """
        if self.status != self.Status.RUNNING:
            return self.status
        from rempart.registry.import_runs import still_running

        return self.status if still_running(self, now) else self.Status.INTERRUPTED

    def get_current_status_display(self) -> str:
        return str(self.Status(self.current_status()).label)

    def notes_text(self) -> list[str]:
        """The refusal or the warnings in the reader's language; an older run's stored sentence as it is."""
        from rempart.registry.import_messages import describe_all

        return describe_all(self.notes) if self.notes else describe_all(self.message)

    def get_mode_display(self) -> str:
        return str(IMPORT_MODES.get(self.mode, IMPORT_MODES["delta"]))

    def get_kind_display(self) -> str:
        return str(IMPORT_KINDS.get(self.kind, IMPORT_KINDS["rights"]))

    @property
    def rejected(self) -> int:
        return int(self.counts.get("rejected") or 0)


IMPORT_MODES = {"delta": _("Delta"), "full": _("Complet")}
IMPORT_KINDS = {"rights": _("Droits"), "products": _("Produits")}
