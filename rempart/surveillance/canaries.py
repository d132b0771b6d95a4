"""Canary beneficiaries: synthetic people planted in each insurer's registry, belonging to no one.

They are loaded through the ordinary rights import, so their rows look like any other. Only a keyed
tag (HMAC of the beneficiary id under a key derived from the blind-index key) marks them, so a copy of
the database does not tell them apart. Their card data is sealed (AES-GCM) for the security staff.
Anyone presenting a canary's identifiers got them from leaked registry data: the actor is suspended
at the first hit.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import tempfile
import time
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone

from rempart.lib.crypto import field_cipher
from rempart.registry import rights_format as fmt
from rempart.registry import synthetic
from rempart.registry.models import Beneficiary, Contract, Insurer
from rempart.registry.rights_import import import_rights
from rempart.surveillance.models import Canary

COLUMN = {name: index for index, name in enumerate(fmt.COLUMNS)}
REFRESH_SECONDS = 30.0
_cache: dict[str, object] = {"at": 0.0, "tags": {}}


@cache
def _key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"rempart-canary-tag").derive(
        base64.b64decode(settings.REMPART_BLIND_INDEX_KEY)
    )


def tag_of(beneficiary_id: int) -> bytes:
    return hmac.new(_key(), str(beneficiary_id).encode(), hashlib.sha256).digest()


def _tags() -> dict[bytes, int]:
    if time.monotonic() - _cache["at"] > REFRESH_SECONDS:
        _cache["tags"] = {
            bytes(t): pk for pk, t in Canary.objects.filter(retired_at__isnull=True).values_list("pk", "tag")
        }
        _cache["at"] = time.monotonic()
    return _cache["tags"]


def forget() -> None:
    _cache["at"] = 0.0


def canary_for(beneficiary_id: int) -> Canary | None:
    tags = _tags()
    if not tags:
        return None
    pk = tags.get(tag_of(beneficiary_id))
    return Canary.objects.filter(pk=pk).first() if pk else None


def record_hit(canary: Canary) -> None:
    Canary.objects.filter(pk=canary.pk).update(last_hit_at=timezone.now())


def sealed_card(canary: Canary) -> dict:
    """The canary's card data, for security staff only (the console shows it; investigators may need it)."""
    return json.loads(field_cipher().decrypt("canary", bytes(canary.sealed_card)))


def plant(insurer: Insurer, count: int = 3, *, by=None, seed: int | None = None) -> list[Canary]:
    """Plant ``count`` canaries for an insurer through the rights import (delta), on unused adherent numbers."""
    if not 1 <= count <= 20:
        raise ValueError("between 1 and 20 canaries at a time")
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
    today = timezone.localdate()
    spec = synthetic.InsurerSpec(0, insurer.amc_number, insurer.name, insurer.kind, "", 400)
    taken = set(Contract.objects.filter(insurer=insurer).values_list("adherent_number", flat=True))
    rows = []
    for row in synthetic.beneficiary_rows(spec, seed, today):
        adherent = row[COLUMN["adherent_number"]]
        if (
            adherent in taken or row[COLUMN["quality"]] != "ASSURE" or not row[COLUMN["nir"]]
            or row[COLUMN["contract_status"]] != "active" or row[COLUMN["birth_date"]] > today.isoformat()
        ):  # fmt: skip
            continue
        row = list(row)
        row[COLUMN["member_number"]] = "1"
        rows.append(row)
        taken.add(adherent)
        if len(rows) == count:
            break
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"maintenance-{dt.date.today():%Y%m%d}.csv"
        lines = [
            fmt.magic_line(insurer.amc_number),
            fmt.header_line(),
            *(";".join(r) for r in rows),
            fmt.trailer_line(len(rows)),
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        _run, summary = import_rights(path, insurer, report_dir=Path(tmp) / "report", show_progress=False)
    if summary.rejected:
        raise RuntimeError("the canaries' rows were refused by the import")
    planted = []
    for row in rows:
        beneficiary_id = (
            Beneficiary.objects.filter(
                contract__insurer=insurer, contract__adherent_number=row[COLUMN["adherent_number"]]
            )
            .values_list("pk", flat=True)
            .get()
        )
        card = {
            "amc_number": insurer.amc_number,
            "adherent_number": row[COLUMN["adherent_number"]],
            "nir": row[COLUMN["nir"]],
            "birth_date": row[COLUMN["birth_date"]],
            "birth_rank": row[COLUMN["birth_rank"]],
        }
        planted.append(
            Canary.objects.create(
                insurer=insurer,
                tag=tag_of(beneficiary_id),
                created_by=by,
                sealed_card=field_cipher().encrypt("canary", json.dumps(card)),
            )  # fmt: skip
        )
    forget()
    return planted
