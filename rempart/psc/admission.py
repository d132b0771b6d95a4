"""Who a verified Pro Santé Connect answer lets in, and how every refusal looks and is recorded.

The token's own rules are in ``tokens.py``; this is what follows from a believable answer: the member
linked to that RPPS, if there is one and they may log in now; for a step-up, the very person already
logged in. Any other outcome is a refusal page in the person's language and a security event, for the
organisation's owners when the professional named a practice Rempart knows.
"""

from __future__ import annotations

from allauth.account.internal.flows.login import record_authentication
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.providers.base import AuthProcess
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy

from rempart.accounts.events import record_event
from rempart.accounts.models import Organisation, User
from rempart.psc import linking, tokens
from rempart.psc.config import NATIONAL_ID_CLAIM, PROVIDER_ID, psc_settings
from rempart.psc.models import ProfessionalIdentity

PROOF_TYPE = "psc"  # the ``type`` of the second-factor record a sufficient PSC authentication leaves

# What the person reads, by refusal reason (the reason itself is recorded, the page says what to do).
UNVERIFIED = gettext_lazy(
    "La réponse de Pro Santé Connect n'a pas pu être vérifiée : rien n'a été ouvert. Recommencez la connexion."
)
MESSAGES = {
    "unknown_identity": gettext_lazy(
        "Votre identité Pro Santé Connect n'est reliée à aucun compte Rempart. Demandez au titulaire de votre "
        "organisation de relier votre numéro RPPS à votre compte, ou connectez-vous avec votre adresse "
        "électronique, votre mot de passe et votre second facteur."
    ),
    "other_user": gettext_lazy(
        "Cette identité Pro Santé Connect n'est pas celle de la personne connectée : rien n'a été confirmé."
    ),
    "acr": gettext_lazy(
        "Pro Santé Connect n'indique pas une authentification par carte CPS ou e-CPS : confirmez avec votre "
        "second facteur Rempart."
    ),
    "cancelled": gettext_lazy("La connexion avec Pro Santé Connect a été annulée."),
    "provider_error": gettext_lazy("Pro Santé Connect a refusé ou interrompu la connexion."),
}
SUSPENDED = gettext_lazy("Votre compte est suspendu. Contactez le titulaire de votre organisation.")
ORGANISATION_SUSPENDED = gettext_lazy(
    "Votre organisation est suspendue par l'opérateur. Contactez le support."
)


def refusal(request, reason: str, *, rpps: str = "", status: int = 403):
    """The refusal page; the reason is a stable code, the text is the person's language."""
    message = MESSAGES.get(reason, UNVERIFIED)
    return render(
        request, "psc/refused.html", {"reason": reason, "message": message, "rpps": rpps}, status=status
    )


def refuse(request, reason: str, *, user: User | None = None, rpps: str = "", **details) -> None:
    record_event("psc.refused", request=request, user=user, reason=reason, **details)
    raise ImmediateHttpResponse(refusal(request, reason, rpps=rpps))


def admit(request, sociallogin) -> None:
    """allauth's ``pre_social_login``: set the member this answer logs in, or refuse."""
    if sociallogin.account.provider != PROVIDER_ID:  # no other provider, even one added in the admin
        refuse(request, "provider", provider=sociallogin.account.provider)
    data = sociallogin.account.extra_data or {}
    claims, userinfo = data.get("id_token") or {}, data.get("userinfo") or {}
    national_id = userinfo.get(NATIONAL_ID_CLAIM, "")
    rpps = linking.rpps_of(national_id)
    identity = linking.member_for(national_id)
    user = identity.user if identity is not None else None
    if not _may_use_psc(user):
        _unknown_identity(request, user, national_id, rpps, userinfo)
    level = tokens.authentication_level(claims)
    strong = tokens.counts_as_second_factor(claims, psc_settings().allowed_acr)
    if sociallogin.state.get("process") == AuthProcess.REDIRECT:
        _step_up(request, user, level, strong, rpps)
        return
    if user.is_suspended:
        _refuse_to_login_page(request, user, "suspended", SUSPENDED)
    if user.membership.organisation.is_suspended:
        _refuse_to_login_page(request, user, "organisation_suspended", ORGANISATION_SUSPENDED)
    sociallogin.user = user


def _may_use_psc(user: User | None) -> bool:
    if user is None or not user.is_active:
        return False
    membership = user.membership
    return membership is not None and membership.organisation.kind == Organisation.Kind.PROFESSIONAL


def _unknown_identity(request, user, national_id: str, rpps: str, userinfo: dict) -> None:
    """No member behind this PSC identity: refused; the owners of the practice PSC names are told."""
    organisation = linking.claimed_organisation(userinfo)
    name = " ".join(str(userinfo.get(k) or "") for k in ("given_name", "family_name")).strip()
    record_event(
        "psc.unknown_identity",
        request=request,
        user=None,
        organisation=organisation,
        rpps=rpps,
        national_id=national_id if not rpps else "",
        name=name[:120],
        linked_to_inactive=user is not None,
    )
    raise ImmediateHttpResponse(refusal(request, "unknown_identity", rpps=rpps))


def _refuse_to_login_page(request, user: User, reason: str, message) -> None:
    """Refused as the password login is: the login page, with the same words."""
    record_event("psc.refused", request=request, user=user, reason=reason)
    messages.error(request, message)
    raise ImmediateHttpResponse(redirect("account_login"))


def _step_up(request, user: User, level: str, strong: bool, rpps: str) -> None:
    """A fresh PSC authentication of the person logged in here counts as a fresh second factor."""
    if not request.user.is_authenticated or request.user.pk != user.pk:
        refuse(request, "other_user", user=request.user if request.user.is_authenticated else None, rpps=rpps)
    if not strong:
        refuse(request, "acr", user=user, acr=level)
    record_authentication(request, user, "mfa", type=PROOF_TYPE, acr=level)
    record_event("mfa.step_up", request=request, user=user, factor=PROOF_TYPE, acr=level)


def on_login(request, user: User, sociallogin) -> None:
    """A PSC login completed: recorded with the level PSC gave and whether it stood for the second factor."""
    claims = (sociallogin.account.extra_data or {}).get("id_token") or {}
    level = tokens.authentication_level(claims)
    strong = tokens.counts_as_second_factor(claims, psc_settings().allowed_acr)
    ProfessionalIdentity.objects.filter(user=user).update(last_login_at=timezone.now())
    record_event(
        "psc.login", request=request, user=user, acr=level, second_factor="psc" if strong else "rempart"
    )


def authentication_error_reason(error, exception, extra_context: dict) -> str:
    """A stable code for what went wrong before an answer could be believed."""
    if isinstance(exception, tokens.PscRefusal):
        return exception.reason
    if exception is not None:
        return "provider"
    if error == "cancelled":
        return "cancelled"
    if "state" not in extra_context:  # no such login in this session: a forged, replayed or expired state
        return "state"
    return "provider_error"


def describe(reason: str) -> str:
    return str(MESSAGES.get(reason, UNVERIFIED))
