"""The same cast for every test: two professional organisations, an insurer, the operator; helpers to log in."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyotp
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP

from rempart.accounts.models import Membership, Organisation, Role, User
from rempart.registry.models import Insurer, Professional

PASSWORD = "correct horse battery staple"


@dataclass
class Cast:
    optician: Organisation
    other_shop: Organisation
    insurer: Organisation
    operator: Organisation
    owner: User
    staff: User
    outsider: User  # owner of another professional organisation
    insurer_member: User
    analyst: User  # operator security analyst
    admin: User  # operator administrator
    secrets: dict[str, str]


def make_user(email: str, organisation: Organisation, role: str, *, totp_secret: str | None = None) -> User:
    user = User.objects.create_user(email, PASSWORD, full_name=email.split("@")[0].title())
    user.is_staff = organisation.kind == Organisation.Kind.OPERATOR
    user.is_superuser = role == Role.ADMIN
    user.save()
    Membership.objects.create(user=user, organisation=organisation, role=role)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    if totp_secret:
        TOTP.activate(user, totp_secret)
    return user


def build_cast() -> Cast:
    shop = Professional.objects.create(finess="750000010", name="Optique du Test", domains=["OPTI"])
    # A pharmacy with an optics corner: the other organisation can ask in the optician's domain too, so that
    # tests of isolation between organisations compare like with like.
    other = Professional.objects.create(
        finess="750000028", name="Pharmacie Voisine", domains=["PHAR", "OPTI"]
    )
    insurer = Insurer.objects.create(amc_number="123456789", name="Mutuelle Test", kind="mutuelle")
    orgs = {
        "optician": Organisation.objects.create(kind="professional", name=shop.name, professional=shop),
        "other_shop": Organisation.objects.create(kind="professional", name=other.name, professional=other),
        "insurer": Organisation.objects.create(kind="insurer", name=insurer.name, insurer=insurer),
        "operator": Organisation.objects.create(kind="operator", name="Opérateur"),
    }
    people = {
        "owner": ("owner@shop.test", "optician", Role.OWNER),
        "staff": ("staff@shop.test", "optician", Role.STAFF),
        "outsider": ("owner@other.test", "other_shop", Role.OWNER),
        "insurer_member": ("data@insurer.test", "insurer", Role.INSURER_MEMBER),
        "analyst": ("soc@operator.test", "operator", Role.SECURITY),
        "admin": ("admin@operator.test", "operator", Role.ADMIN),
    }
    secrets = {}
    users = {}
    for name, (email, org, role) in people.items():
        secrets[email] = pyotp.random_base32()
        users[name] = make_user(email, orgs[org], role, totp_secret=secrets[email])
    return Cast(**orgs, **users, secrets=secrets)


def totp_code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def login(client, user: User, secret: str, *, step: int = 0):
    """Password then TOTP through the real allauth flow; return the last response."""
    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302 and response.url.startswith("/accounts/2fa/authenticate"), response
    return client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, step)})


def has_authenticator(user: User) -> bool:
    return Authenticator.objects.filter(user=user).exists()


def child_database_url() -> str:
    """The test database (not the development one) as a DATABASE_URL for a child process the test starts."""
    from urllib.parse import quote

    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{quote(db['NAME'])}"
