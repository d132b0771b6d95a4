"""Surveillance: counters (database store), actor states, alerts, kill switches and canary beneficiaries."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Counter(models.Model):
    """One time bucket of one counter (the database store; Redis keeps the same buckets as keys)."""

    key = models.CharField(max_length=120)
    size = models.PositiveIntegerField()  # bucket length in seconds
    bucket = models.BigIntegerField()  # epoch seconds // size
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "size", "bucket"], name="counter_bucket")]

    def __str__(self) -> str:
        return f"{self.key} {self.bucket}×{self.size}s = {self.count}"


class DistinctMember(models.Model):
    """A member (e.g. a beneficiary id) seen once in a fixed window of a distinct counter."""

    key = models.CharField(max_length=120)
    bucket = models.BigIntegerField()
    member = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "bucket", "member"], name="distinct_member")]

    def __str__(self) -> str:
        return f"{self.key} {self.bucket}"


class SeenMember(models.Model):
    """When a member (a beneficiary id) was last seen by a distinct counter: a sight is *fresh* for a window
    when the previous one is older than the window (rempart.surveillance.counters)."""

    key = models.CharField(max_length=120)
    member = models.CharField(max_length=64)
    seen = models.BigIntegerField()  # epoch seconds

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "member"], name="seen_member")]
        indexes = [models.Index(fields=["seen"], name="seen_member_time")]

    def __str__(self) -> str:
        return f"{self.key} {self.seen}"


class Clientele(models.Model):
    """An organisation's memory of the people it confirmed (rempart.surveillance.clientele): when it was
    seeded from the ledger, and since when the organisation has a history (young ones are still learning)."""

    organisation_id = models.BigIntegerField(unique=True)  # no foreign key: one indexed probe per check
    seeded_at = models.DateTimeField(default=timezone.now)
    history_since = models.BigIntegerField()  # epoch seconds of its oldest remembered confirmation

    def __str__(self) -> str:
        return f"clientele of {self.organisation_id}"


class ClienteleMember(models.Model):
    """One person an organisation confirmed within the memory's span, as a keyed hash of the beneficiary id
    (the table alone does not say who is whose patient)."""

    organisation_id = models.BigIntegerField()
    tag = models.BinaryField(max_length=8)  # HMAC(key, organisation id, beneficiary id), first 8 bytes
    seen_day = models.IntegerField()  # epoch days of the last confirmation

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation_id", "tag"], name="clientele_member")]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.seen_day}"


class ActorState(models.Model):
    """Where an actor (account ``u:<id>`` or token ``t:<id>``) stands on the response ladder."""

    actor = models.CharField(max_length=40, unique=True)
    # Portal: every session of the account must prove the second factor again after this; each session that
    # did goes on (the hold is never lifted for the account as a whole: a stolen session stays held).
    step_up_since = models.DateTimeField(null=True, blank=True)
    throttled_until = models.DateTimeField(null=True, blank=True)  # API: 429 until then
    level2_count = models.PositiveIntegerField(default=0)  # how many times stepped up / throttled
    last_level2_at = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)  # after a passed step-up: velocity drains first
    known_ips = models.JSONField(default=list)  # addresses seen for this actor (the last 20)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.actor

    def holds_sessions(self, now) -> bool:
        """Sessions opened before the hold may still be held; none lives longer than the absolute lifetime."""
        if self.step_up_since is None:
            return False
        return (now - self.step_up_since).total_seconds() < settings.REMPART_SESSION_MAX_SECONDS


class Alert(models.Model):
    class Severity(models.TextChoices):
        INFO = "info", _("Information")
        WARNING = "warning", _("Avertissement")
        CRITICAL = "critical", _("Critique")

    class Status(models.TextChoices):
        OPEN = "open", _("À traiter")
        ACKNOWLEDGED = "acknowledged", _("Pris en compte")
        RESOLVED = "resolved", _("Résolu")

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    signal = models.CharField(max_length=40)
    level = models.PositiveSmallIntegerField()  # 1 alert, 2 step-up/throttle, 3 suspension, 4 organisation
    # What was done automatically, as a code of rempart.surveillance.labels.RESPONSES with its parameters
    # (translated when shown; rows from before the codes may still hold a French sentence, shown as is).
    response = models.CharField(max_length=200, blank=True)
    response_params = models.JSONField(default=dict, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    evidence = models.JSONField(default=dict)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    # Who of the operator's security team follows it up (rempart.surveillance.queue.assign).
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="alert_status_time")]

    def __str__(self) -> str:
        return f"{self.severity} {self.signal}"


class Switch(models.Model):
    """A kill switch: one account, token, organisation, insurer's organisations, or a whole channel, cut."""

    class Target(models.TextChoices):
        ACCOUNT = "account", _("Compte")
        TOKEN = "token", _("Jeton d'API")
        ORGANISATION = "organisation", _("Organisation")
        INSURER = "insurer", _("Cartes d'un assureur (toutes les vérifications)")
        CHANNEL = "channel", _("Canal")

    class Channel(models.TextChoices):
        ANY = "", _("Tous les canaux")
        PORTAL_RIGHTS = "portal_rights", _("Portail : vérification des droits")
        API_RIGHTS = "api_rights", _("API : vérification des droits")

    target = models.CharField(max_length=12, choices=Target.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    token = models.ForeignKey(
        "accounts.ApiToken", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    insurer = models.ForeignKey(
        "registry.Insurer", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    domain = models.CharField(max_length=4, blank=True)  # blank: every care domain
    reason = models.CharField(_("motif"), max_length=300)
    by_system = models.BooleanField(default=False)
    off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    off_at = models.DateTimeField(default=timezone.now)
    on_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    on_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-off_at"]

    def __str__(self) -> str:
        return f"{self.target} off: {self.reason}"

    @property
    def active(self) -> bool:
        return self.on_at is None


class Canary(models.Model):
    """A planted synthetic beneficiary. Its registry row looks like any other; only a keyed tag links them,
    so a copy of the database does not tell canaries apart. Its card data is sealed (encrypted) for the
    security staff who may need to show it to investigators."""

    insurer = models.ForeignKey("registry.Insurer", on_delete=models.PROTECT, related_name="+")
    tag = models.BinaryField(max_length=32, unique=True)  # HMAC(key, beneficiary id)
    sealed_card = models.BinaryField()  # AES-GCM JSON: amc, adherent, nir, birth date, rank
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    last_hit_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"canary {self.pk} ({self.insurer_id})"
