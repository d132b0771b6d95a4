"""Re-encrypt stored NIR, IBAN and second-factor secrets under the active data key.

Restartable and safe to interrupt: rows are rewritten in small batches, each in its own
transaction, and a row already under the active key is skipped. Once it reports nothing left,
the old key can be removed from REMPART_DATA_KEYS.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from rempart.lib.crypto import field_cipher
from rempart.lib.progress import progress_bar
from rempart.registry.models import BankDetailsChange, Beneficiary, Professional

BATCH = 2000


@dataclass
class RotationReport:
    beneficiaries: int = 0
    professionals: int = 0
    authenticators: int = 0
    bank_changes: int = 0  # IBANs on hold and the previous IBANs kept with them


def _stale(blob) -> bool:
    return blob is not None and field_cipher().key_id_of(blob) != field_cipher().keyring.active_id


def _reseal(field: str, blob):
    cipher = field_cipher()
    return cipher.encrypt(field, cipher.decrypt(field, blob)) if _stale(blob) else blob


def _rotate_model(
    model, fields: tuple[str, ...], field_name: str, show_progress, on_row: Callable | None = None
) -> int:
    changed = 0
    last_pk = 0
    total = model.objects.count()
    with progress_bar(total, f"rotate {model._meta.model_name}", unit="rows", enabled=show_progress) as bar:
        while True:
            rows = list(model.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", *fields)[:BATCH])
            if not rows:
                return changed
            last_pk = rows[-1].pk
            stale = [row for row in rows if any(_stale(getattr(row, f)) for f in fields)]
            with transaction.atomic():
                for row in stale:
                    for f in fields:
                        setattr(row, f, _reseal(field_name, getattr(row, f)))
                model.objects.bulk_update(stale, fields)
            changed += len(stale)
            bar.update(len(rows))


def _rotate_authenticators() -> int:
    from allauth.mfa.models import Authenticator

    cipher = field_cipher()
    changed = 0
    for authenticator in Authenticator.objects.filter(type__in=["totp", "recovery_codes"]):
        data = authenticator.data
        dirty = False
        for key in ("secret", "pending"):
            if key in data:
                blob = base64.b64decode(data[key])
                if _stale(blob):
                    data[key] = base64.b64encode(cipher.encrypt("mfa", cipher.decrypt("mfa", blob))).decode()
                    dirty = True
        if dirty:
            authenticator.save(update_fields=["data"])
            changed += 1
    return changed


def rotate_data_keys(show_progress=None) -> RotationReport:
    return RotationReport(
        beneficiaries=_rotate_model(Beneficiary, ("nir_cipher", "od_nir_cipher"), "nir", show_progress),
        professionals=_rotate_model(Professional, ("iban_cipher",), "iban", show_progress),
        authenticators=_rotate_authenticators(),
        bank_changes=_rotate_model(
            BankDetailsChange, ("iban_cipher", "previous_iban_cipher"), "iban", show_progress
        ),
    )
