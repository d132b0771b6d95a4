"""Which Rempart member a Pro Santé Connect identity is: the professional's RPPS, set by their owner or the
operator, never by the professional alone (a PSC login never creates an account)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ProfessionalIdentity(models.Model):
    """The RPPS by which one member may log in with Pro Santé Connect."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="psc_identity"
    )
    rpps = models.CharField(_("RPPS"), max_length=11, unique=True)
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    linked_at = models.DateTimeField(default=timezone.now)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("identité Pro Santé Connect")
        verbose_name_plural = _("identités Pro Santé Connect")

    def __str__(self) -> str:
        return f"RPPS {self.rpps} → {self.user_id}"
