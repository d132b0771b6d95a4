"""Prises en charge (PEC): a commitment of the insurer on one quote, decided at once, reproducible.

A PEC keeps what the decision needs to be reproduced (the quote, the rule and data versions, the
amounts) and nothing of the person's identity: the beneficiary is an internal id, reached through
the recording gate only.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def new_number() -> str:
    """PEC-XXXX-XXXX: readable over the phone (base32 without ambiguous letters)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"PEC-{raw[:4]}-{raw[4:]}"


class Pec(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted", _("Accordée")
        PARTIAL = "partially_accepted", _("Accordée en partie")
        REFUSED = "refused", _("Refusée")

    number = models.CharField(max_length=16, unique=True, default=new_number)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="pecs")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    insurer = models.ForeignKey("registry.Insurer", on_delete=models.PROTECT, related_name="+")
    beneficiary_id = models.BigIntegerField(db_index=True)  # internal id: identity stays in the registry
    domain = models.CharField(max_length=4)
    status = models.CharField(max_length=20, choices=Status.choices)
    delivery_date = models.DateField()
    valid_until = models.DateField(null=True, blank=True)
    quote = models.JSONField()  # prescription (no prescriber name) and lines, as decided
    decision = models.JSONField()  # per line: amounts, reason codes, explanation
    total_committed_cents = models.BigIntegerField()
    rule_version = models.CharField(max_length=40)
    data_version = models.CharField(max_length=80)
    ledger_reference = models.CharField(max_length=24)
    idempotency_key = models.CharField(max_length=80, blank=True)
    request_fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("prise en charge")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="pec_idempotency_per_organisation",
            )
        ]
        indexes = [models.Index(fields=["beneficiary_id", "domain", "delivery_date"], name="pec_history")]

    def __str__(self) -> str:
        return self.number

    @property
    def active(self) -> bool:
        return self.cancelled_at is None and self.status != self.Status.REFUSED
