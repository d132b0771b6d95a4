"""Two places where Rempart is stricter than django-allauth's mfa app (see docs/decisions.md).

- TOTP: a code is accepted once only. allauth remembers used codes in the cache for one period,
  so a code could be replayed within the drift window; here each authenticator keeps the last
  accepted time step (in the database, so it holds across server processes) and refuses any
  step not newer than it — including the step of the code typed to confirm enrolment.
  Codes are computed with pyotp.
- Recovery codes: allauth derives them from a stored (encrypted) seed, so whoever holds the
  database and the data key can compute them at any time. Here only keyed hashes are stored;
  the codes themselves exist (encrypted) only until they are shown, once.

Both are installed by patching the methods of allauth's classes at start-up, because allauth
instantiates these classes directly; tests in rempart/accounts/tests/test_login.py and
test_admin_and_factors.py pin the behaviour so an allauth upgrade that changes it fails loudly.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time

import pyotp
from allauth.mfa import app_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal import auth as totp_auth
from allauth.mfa.utils import decrypt, encrypt
from django.db import transaction

from rempart.lib.crypto import field_cipher

RECOVERY_CODE_DIGITS = 10


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum())


# ---------------------------------------------------------------------------------------------- TOTP


def matching_time_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code this is, within the allowed clock drift, or None."""
    code = normalise_code(code)
    totp = pyotp.TOTP(secret, digits=app_settings.TOTP_DIGITS, interval=app_settings.TOTP_PERIOD)
    current = int((now if now is not None else time.time()) // app_settings.TOTP_PERIOD)
    for step in range(current - app_settings.TOTP_TOLERANCE, current + app_settings.TOTP_TOLERANCE + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _totp_validate_code(self, code: str) -> bool:
    secret = decrypt(self.instance.data["secret"])
    step = matching_time_step(secret, code)
    if step is None:
        return False
    with transaction.atomic():
        instance = Authenticator.objects.select_for_update().get(pk=self.instance.pk)
        if step <= instance.data.get("last_step", -1):
            return False  # replayed code
        instance.data["last_step"] = step
        instance.save(update_fields=["data"])
    self.instance = instance
    return True


_activation = threading.local()


def _validate_totp_code(secret: str, code: str) -> bool:
    """Used by allauth only to confirm enrolment: remember the step, so activation consumes it."""
    step = matching_time_step(secret, code)
    _activation.step = step
    return step is not None


_allauth_totp_activate = totp_auth.TOTP.activate.__func__


def _totp_activate(cls, user, secret: str):
    wrapper = _allauth_totp_activate(cls, user, secret)
    step = getattr(_activation, "step", None)
    if step is not None:
        wrapper.instance.data["last_step"] = step
        wrapper.instance.save(update_fields=["data"])
        _activation.step = None
    return wrapper


# ---------------------------------------------------------------------------------------------- recovery codes


def _code_hash(salt: str, code: str) -> str:
    return field_cipher().blind_index("recovery-code", f"{salt}:{normalise_code(code)}").hex()


def _rc_activate(cls, user) -> RecoveryCodes:
    instance = Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.RECOVERY_CODES).first()
    if instance:
        return cls(instance)
    codes = [f"{secrets.randbelow(10**RECOVERY_CODE_DIGITS):0{RECOVERY_CODE_DIGITS}d}" for _ in range(10)]
    salt = secrets.token_hex(16)
    instance = Authenticator.objects.create(
        user=user,
        type=Authenticator.Type.RECOVERY_CODES,
        data={
            "salt": salt,
            "hashes": [_code_hash(salt, code) for code in codes],
            "used_mask": 0,
            "pending": encrypt(json.dumps(codes)),  # until shown once, then only the hashes remain
        },
    )
    return cls(instance)


def _rc_shown_codes(self) -> list[str] | None:
    shown = getattr(self, "_shown_codes", None)
    if shown is not None:
        return shown
    pending = self.instance.data.get("pending")
    return json.loads(decrypt(pending)) if pending else None


def _rc_generate_codes(self) -> list[str]:
    codes = _rc_shown_codes(self)
    return codes if codes is not None else ["*" * RECOVERY_CODE_DIGITS] * len(self.instance.data["hashes"])


def _rc_get_unused_codes(self) -> list[str]:
    return [code for i, code in enumerate(_rc_generate_codes(self)) if not self._is_code_used(i)]


def _rc_validate_code(self, code: str) -> bool:
    with transaction.atomic():
        instance = Authenticator.objects.select_for_update().get(pk=self.instance.pk)
        self.instance = instance
        digest = _code_hash(instance.data["salt"], code)
        for i, stored in enumerate(instance.data["hashes"]):
            if not self._is_code_used(i) and hmac.compare_digest(stored, digest):
                self._mark_code_used(i)
                _record_recovery_code_use(instance, remaining=len(self.get_unused_codes()))
                return True
    return False


def _record_recovery_code_use(instance: Authenticator, remaining: int) -> None:
    from allauth.core import context

    from rempart.accounts.events import record_event

    record_event("mfa.recovery_code_used", request=context.request, user=instance.user, remaining=remaining)


def _rc_mark_as_viewed(self) -> None:
    if self.did_view:
        return
    self._shown_codes = _rc_shown_codes(self)
    self.instance.data["viewed_at"] = time.time()
    self.instance.data.pop("pending", None)
    self.instance.save(update_fields=["data"])


def install() -> None:
    totp_auth.TOTP.validate_code = _totp_validate_code
    totp_auth.validate_totp_code = _validate_totp_code
    totp_auth.TOTP.activate = classmethod(_totp_activate)
    RecoveryCodes.activate = classmethod(_rc_activate)
    RecoveryCodes.generate_codes = _rc_generate_codes
    RecoveryCodes.get_unused_codes = _rc_get_unused_codes
    RecoveryCodes.validate_code = _rc_validate_code
    RecoveryCodes.mark_as_viewed = _rc_mark_as_viewed
