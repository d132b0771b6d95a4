"""The ID token's rules: what makes Pro Santé Connect's answer believable, and what it proves.

Every check the OpenID Connect core specification asks of a client (§3.1.3.7), made here whatever the
transport: the signature against the provider's published keys (allauth skips it when the token came
over TLS from the token endpoint; we do not), the issuer, the audience and authorised party, the times,
the ``nonce`` of *this* login, and ``auth_time`` when a fresh authentication was asked for. No HTTP here:
the caller fetches the keys.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from allauth.socialaccount.providers.base import ProviderException

from rempart.psc.config import ACR_CLAIM, CLOCK_LEEWAY_SECONDS, ID_TOKEN_ALGORITHMS


class PscRefusal(ProviderException):
    """Pro Santé Connect's answer is refused; ``reason`` is a stable code (events, pages, tests)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Expectations:
    """What this login asked for, kept in allauth's single-use state between the redirect and the callback."""

    issuer: str
    client_id: str
    nonce: str
    started_at: float  # when Rempart sent the person to PSC
    max_age: int | None  # seconds; 0 for a step-up (prompt=login)


def decode(raw: str, jwks: dict[str, Any], *, issuer: str, client_id: str, now: float | None = None) -> dict:
    """The ID token's claims, once its signature, issuer, audience and times hold."""
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError as error:
        raise PscRefusal("token", "unreadable") from error
    alg = header.get("alg")
    if alg not in ID_TOKEN_ALGORITHMS:  # never "none", never a shared-secret MAC
        raise PscRefusal("token", f"algorithm {alg!r} not accepted")
    key = _signing_key(jwks, header.get("kid"), alg)
    try:
        claims = jwt.decode(
            raw,
            key=key,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise PscRefusal("token", "expired") from error
    except jwt.InvalidSignatureError as error:
        raise PscRefusal("token", "signature") from error
    except jwt.PyJWTError as error:
        raise PscRefusal("token", type(error).__name__) from error
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise PscRefusal("token", "azp")
    if "azp" in claims and claims["azp"] != client_id:
        raise PscRefusal("token", "azp")
    current = time.time() if now is None else now
    if claims["iat"] > current + CLOCK_LEEWAY_SECONDS:
        raise PscRefusal("token", "issued in the future")
    return claims


def decode_userinfo(raw: str, jwks: dict[str, Any], *, issuer: str, client_id: str) -> dict:
    """A signed userinfo response (``application/jwt``): the same keys; issuer and audience when present."""
    try:
        header = jwt.get_unverified_header(raw)
        alg = header.get("alg")
        if alg not in ID_TOKEN_ALGORITHMS:
            raise PscRefusal("userinfo", f"algorithm {alg!r} not accepted")
        claims = jwt.decode(
            raw,
            key=_signing_key(jwks, header.get("kid"), alg),
            algorithms=[alg],
            options={"verify_aud": False, "verify_iss": False},
        )
    except jwt.PyJWTError as error:
        raise PscRefusal("userinfo", type(error).__name__) from error
    if "iss" in claims and claims["iss"] != issuer:
        raise PscRefusal("userinfo", "issuer")
    audiences = claims.get("aud", client_id)
    if client_id not in (audiences if isinstance(audiences, list) else [audiences]):
        raise PscRefusal("userinfo", "audience")
    return claims


def _signing_key(jwks: dict[str, Any], kid: str | None, alg: str):
    """The one published key this token names (``kid``) that may sign with ``alg``."""
    published = jwks.get("keys") if isinstance(jwks, dict) else None
    matching = [
        data
        for data in (published if isinstance(published, list) else [])
        if isinstance(data, dict)
        and (kid is None or data.get("kid") == kid)
        and data.get("use", "sig") == "sig"
        and data.get("alg", alg) == alg
    ]
    if len(matching) != 1:
        raise PscRefusal("token", f"no single key for kid {kid!r}")
    try:
        return jwt.PyJWK(matching[0], algorithm=alg).key
    except jwt.PyJWTError as error:
        raise PscRefusal("token", "unusable key") from error


def check_login(claims: dict[str, Any], expected: Expectations, *, now: float | None = None) -> None:
    """This token answers this very login: its nonce, and a recent enough authentication."""
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not expected.nonce or nonce != expected.nonce:
        raise PscRefusal("nonce")
    if expected.max_age is None:
        return
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
        raise PscRefusal("auth_time", "missing")
    current = time.time() if now is None else now
    if auth_time > current + CLOCK_LEEWAY_SECONDS:
        raise PscRefusal("auth_time", "in the future")
    if expected.max_age == 0:
        # A step-up: the person authenticated again after Rempart sent them, not in an earlier session.
        if auth_time < expected.started_at - CLOCK_LEEWAY_SECONDS:
            raise PscRefusal("auth_time", "not re-authenticated")
    elif current - auth_time > expected.max_age + CLOCK_LEEWAY_SECONDS:
        raise PscRefusal("auth_time", "too old")


def authentication_level(claims: dict[str, Any]) -> str:
    value = claims.get(ACR_CLAIM)
    return value if isinstance(value, str) else ""


def counts_as_second_factor(claims: dict[str, Any], allowed_acr: tuple[str, ...]) -> bool:
    """The ID token says the CPS card or the e-CPS was used: one of the configured ``acr`` values."""
    level = authentication_level(claims)
    return bool(level) and level in allowed_acr
