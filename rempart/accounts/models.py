"""Who can log in and what each may do: people, organisations, memberships, invitations, API tokens, events."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)  # None gives an unusable password (invited, not yet accepted)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with email + password, then a second factor; belongs to one organisation."""

    email = models.EmailField(_("adresse électronique"), unique=True)
    full_name = models.CharField(_("nom complet"), max_length=150, blank=True)
    is_active = models.BooleanField(_("actif"), default=True)
    is_staff = models.BooleanField(_("accès à l'administration"), default=False)
    suspended_at = models.DateTimeField(_("suspendu le"), null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("personne")
        verbose_name_plural = _("personnes")

    def __str__(self) -> str:
        return self.email

    @property
    def membership(self) -> Membership | None:
        try:
            return self._membership
        except Membership.DoesNotExist:
            return None

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Organisation(models.Model):
    class Kind(models.TextChoices):
        PROFESSIONAL = "professional", _("Professionnel de santé")
        INSURER = "insurer", _("Assureur (AMC)")
        OPERATOR = "operator", _("Opérateur")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspendue")

    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices)
    name = models.CharField(_("nom"), max_length=200)
    professional = models.OneToOneField(
        "registry.Professional", on_delete=models.PROTECT, null=True, blank=True, related_name="organisation"
    )
    insurer = models.OneToOneField(
        "registry.Insurer", on_delete=models.PROTECT, null=True, blank=True, related_name="organisation"
    )
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organisation")

    def __str__(self) -> str:
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    @property
    def idle_timeout(self) -> dt.timedelta:
        minutes = settings.REMPART_IDLE_TIMEOUT_MINUTES.get(self.kind, 15)
        return dt.timedelta(minutes=minutes)


class Role(models.TextChoices):
    OWNER = "owner", _("Titulaire")
    STAFF = "staff", _("Collaborateur")
    INSURER_MEMBER = "insurer_member", _("Membre assureur")
    SUPPORT = "support", _("Support")
    SECURITY = "security", _("Analyste sécurité")
    ADMIN = "admin", _("Administrateur")
    TREASURY = "treasury", _("Trésorerie")


ROLES_BY_KIND = {
    Organisation.Kind.PROFESSIONAL: (Role.OWNER, Role.STAFF),
    Organisation.Kind.INSURER: (Role.OWNER, Role.INSURER_MEMBER),
    Organisation.Kind.OPERATOR: (Role.SUPPORT, Role.SECURITY, Role.ADMIN, Role.TREASURY),
}


class Membership(models.Model):
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="_membership")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("membre")

    def __str__(self) -> str:
        return f"{self.user} — {self.organisation} ({self.role})"


class Invitation(models.Model):
    """A single-use link that lets one person join one organisation with one role, until it expires."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("adresse électronique"))
    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invitation {self.email} → {self.organisation}"

    def is_usable(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at


class ApiToken(models.Model):
    """A bearer token for an organisation's software: scoped, expiring, stored as a hash."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("nom"), max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("jeton d'API")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def is_live(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and self.suspended_at is None and now < self.expires_at


class SecurityEvent(models.Model):
    """One security-relevant act, shown to the person, to their organisation's owner and to operator staff."""

    tag = models.CharField(max_length=40, db_index=True)
    user = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="security_events"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="security_events"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"]),
            models.Index(fields=["user", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.tag}"


class KnownDevice(models.Model):
    """A browser a person has completed a login from (a long-lived random cookie), to notice new ones."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="known_devices")
    device_hash = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "device_hash"], name="known_device_unique")]

    def __str__(self) -> str:
        return f"device of {self.user_id} since {self.first_seen:%Y-%m-%d}"


class LoginThrottle(models.Model):
    """Failed logins per key (an email or a source address): growing delays, then a lock."""

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True)
    blocked_until = models.DateTimeField(null=True)
    lock_notified = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.key[:20]}… {self.failures} failures"
