"""The demo's cast: one organisation of each kind, each person with a known password and a TOTP secret.

Demo only: refused when REMPART_ENV=production.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from allauth.mfa.utils import decrypt
from django.conf import settings
from django.db import transaction

from rempart.accounts.models import Membership, Organisation, Role, User
from rempart.registry.models import Insurer, Professional

DEMO_PASSWORD = "rempart-demo-2026"
OPTICIAN_OWNER = "opticien@demo.rempart.test"
OPERATOR_ADMIN = "admin@demo.rempart.test"  # prepares the demo's payment runs
TREASURER = "tresorier@demo.rempart.test"  # approves them: the four eyes' second pair


@dataclass(frozen=True)
class DemoPerson:
    email: str
    full_name: str
    kind: str
    role: str


CAST = (
    DemoPerson(OPTICIAN_OWNER, "Claire Opticienne", "professional", Role.OWNER),
    DemoPerson("vendeur@demo.rempart.test", "Hugo Vendeur", "professional", Role.STAFF),
    DemoPerson("donnees@demo.rempart.test", "Inès Données", "insurer", Role.OWNER),
    DemoPerson(OPERATOR_ADMIN, "Alex Admin", "operator", Role.ADMIN),
    DemoPerson("soc@demo.rempart.test", "Sam Analyste", "operator", Role.SECURITY),
    DemoPerson(TREASURER, "Théo Trésorier", "operator", Role.TREASURY),
)


def refuse_in_production() -> None:
    if settings.PRODUCTION:
        raise RuntimeError("demo accounts are refused when REMPART_ENV=production")


def demo_totp_secret(email: str) -> str:
    """A per-person secret derived from the local secret key: stable across runs of the same demo."""
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:demo-totp:{email}".encode()).digest()
    return base64.b32encode(digest[:20]).decode()


def _organisations() -> dict[str, Organisation]:
    professionals = Professional.objects.order_by("pk")
    optician = (
        next((p for p in professionals.iterator() if "OPTI" in p.domains), None) or professionals.first()
    )
    insurer = Insurer.objects.order_by("pk").first()
    if optician is None or insurer is None:
        raise RuntimeError("the registry is empty: run `rempart generate` first")
    pro, _ = Organisation.objects.get_or_create(
        professional=optician, defaults={"kind": Organisation.Kind.PROFESSIONAL, "name": optician.name}
    )
    ins, _ = Organisation.objects.get_or_create(
        insurer=insurer, defaults={"kind": Organisation.Kind.INSURER, "name": insurer.name}
    )
    op, _ = Organisation.objects.get_or_create(
        kind=Organisation.Kind.OPERATOR, name="Opérateur Rempart (démo)"
    )
    return {"professional": pro, "insurer": ins, "operator": op}


@transaction.atomic
def create_demo_cast() -> list[tuple[DemoPerson, Organisation]]:
    refuse_in_production()
    organisations = _organisations()
    result = []
    for person in CAST:
        organisation = organisations[person.kind]
        user = User.objects.filter(email=person.email).first()
        if user is None:
            user = User.objects.create_user(person.email, DEMO_PASSWORD, full_name=person.full_name)
        user.is_staff = person.kind == "operator"
        user.is_superuser = person.role == Role.ADMIN
        user.save()
        Membership.objects.update_or_create(
            user=user, defaults={"organisation": organisation, "role": person.role}
        )
        EmailAddress.objects.update_or_create(
            user=user, email=person.email, defaults={"verified": True, "primary": True}
        )
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            TOTP.activate(user, demo_totp_secret(person.email))
        result.append((person, organisation))
    return result


def current_code(email: str) -> str:
    import pyotp

    refuse_in_production()
    if email not in {person.email for person in CAST}:
        raise RuntimeError("demo-code only gives codes of the demo logins")
    authenticator = Authenticator.objects.get(user__email=email, type=Authenticator.Type.TOTP)
    return pyotp.TOTP(decrypt(authenticator.data["secret"])).now()
