"""Canary beneficiaries: synthetic people planted in each insurer's registry, belonging to no one.

A copy of the registry must not tell them apart (docs/surveillance.md, "Canary beneficiaries"):

- their families are drawn from the insurer's own people (rempart.surveillance.lookalike): numbering,
  family shapes, ages, products, dates, lunar births in its proportions, NIRs valid and consistent;
- they are loaded by the ordinary rights import, either riding in one of the insurer's own files (the
  run is that file's ordinary run, and their rows sit among its new contracts in its order), or in a
  delta of their own named like the insurer's latest files;
- only a keyed tag (HMAC of the beneficiary id under a key derived from the blind-index key) marks
  them; their card data is sealed (AES-GCM) for the security staff.

Anyone presenting a canary's identifiers got them from leaked registry data: the actor is suspended at
the first hit. If an insurer's own file later takes over a canary's adherent number, the row is that
insurer's real person: the canary is retired at its next presentation instead of flagging them.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rempart.lib.crypto import field_cipher
from rempart.lib.identifiers import LunarDate
from rempart.registry import rights_format as fmt
from rempart.registry.models import Beneficiary, Contract, ImportRun, Insurer
from rempart.registry.rights_import import FileRefused, ImportSummary, import_rights
from rempart.surveillance import lookalike
from rempart.surveillance.canary_carrier import Carrier, CarrierRefused, renumber_error_lines
from rempart.surveillance.lookalike import Family, Person
from rempart.surveillance.models import Canary

log = logging.getLogger("rempart.surveillance")

COLUMN = {name: index for index, name in enumerate(fmt.COLUMNS)}
REFRESH_SECONDS = 30.0
MAX_PER_PLANTING = 20
REFERENCE_CONTRACTS = 1000  # the insurer's most recent contracts: what its new contracts look like today
MIN_CARRIER_FAMILIES = 20  # a file with fewer new families borrows from the registry as well
PLACES_SAMPLE = 400  # NIRs decrypted to learn where the insurer's people are born (never kept)
QUALITY_WORDS = {code: word for word, code in fmt.QUALITIES.items()}
_cache: dict[str, object] = {"at": 0.0, "tags": {}}


class CanaryError(RuntimeError):
    """Canaries could not be planted, or fewer than asked; the message says why (never a card's data)."""


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
    """The live canary this beneficiary is, if any. One dictionary probe for everyone else."""
    tags = _tags()
    if not tags:
        return None
    pk = tags.get(tag_of(beneficiary_id))
    canary = Canary.objects.filter(pk=pk, retired_at__isnull=True).first() if pk else None
    if canary is None:
        return None
    if not _still_the_canary(canary, beneficiary_id):
        # The insurer's own file took the canary's adherent number and member: this is their real person.
        Canary.objects.filter(pk=canary.pk).update(retired_at=timezone.now())
        log.warning(
            "canary %s of insurer %s was overwritten by an import: retired", canary.pk, canary.insurer_id
        )
        forget()
        return None
    return canary


def any_live() -> bool:
    """Whether any canary is planted and live (cached, like the tags)."""
    return bool(_tags())


def canary_beneficiaries(beneficiary_ids) -> set[int]:
    """Which of these beneficiaries are live canaries: one keyed hash each, no query unless one is.

    Payment runs hold the invoices of these people: a canary is nobody, so an invoice for one is never paid
    (docs/payments.md, "Invoices for a canary")."""
    tags = _tags()
    if not tags:
        return set()
    return {person for person in set(beneficiary_ids) if tag_of(person) in tags and canary_for(person)}


def _still_the_canary(canary: Canary, beneficiary_id: int) -> bool:
    card = sealed_card(canary)
    row = (
        Beneficiary.objects.filter(pk=beneficiary_id)
        .values_list("birth_year", "birth_month", "birth_day", "birth_rank", "nir_index", "od_nir_index")
        .first()
    )
    if row is None:
        return False
    year, month, day, rank, nir_index, od_nir_index = row
    birth = LunarDate.parse(card["birth_date"])
    if (year, month, day) != (birth.year, birth.month, birth.day):
        return False
    presented = field_cipher().blind_index("nir", card["nir"])
    if nir_index is not None and bytes(nir_index) == presented:
        return True
    return (
        od_nir_index is not None and bytes(od_nir_index) == presented and str(rank) == str(card["birth_rank"])
    )


def record_hit(canary: Canary) -> None:
    Canary.objects.filter(pk=canary.pk).update(last_hit_at=timezone.now())


def sealed_card(canary: Canary) -> dict:
    """The canary's card data, for security staff only (the console shows it; investigators may need it)."""
    return json.loads(field_cipher().decrypt("canary", bytes(canary.sealed_card)))


# ---------------------------------------------------------------------------------------------- planting


@dataclass
class Planting:
    canaries: list[Canary]
    run: ImportRun
    summary: ImportSummary
    families: int = 0
    past_the_top: int = 0  # adherent numbers taken after the insurer's highest (its range had no room)
    warnings: list[str] = field(default_factory=list)


def plant(
    insurer: Insurer, count: int = 3, *, by=None, seed: int | None = None, today: dt.date | None = None
) -> list[Canary]:
    """Plant at least ``count`` canary beneficiaries (whole families) in a delta of their own."""
    return plant_in_import(insurer, count, by=by, seed=seed, today=today).canaries


def plant_in_import(
    insurer: Insurer,
    count: int = 3,
    *,
    by=None,
    seed: int | None = None,
    carrier: Path | None = None,
    mode: str = "delta",
    today: dt.date | None = None,
) -> Planting:
    """Plant at least ``count`` canary beneficiaries: whole families, every member a canary.

    ``carrier``: one of the insurer's own rights files, imported (in ``mode``) with the canaries among
    its rows; without it, a delta of their own. Raises CanaryError when fewer than ``count`` were planted.
    """
    if not 1 <= count <= MAX_PER_PLANTING:
        raise ValueError(f"between 1 and {MAX_PER_PLANTING} canaries at a time")
    if mode not in ("delta", "full") or (mode == "full" and carrier is None):
        raise ValueError("canaries go in a delta of their own, or in the insurer's own file (delta or full)")
    today = today or timezone.localdate()
    rng = random.Random(seed if seed is not None else random.SystemRandom().randrange(1 << 62))
    try:
        parsed = Carrier.read(carrier, insurer) if carrier is not None else None
    except CarrierRefused as exc:
        raise CanaryError(
            f"the file is refused as a whole ({exc}); nothing was imported: import it with import-rights"
        ) from None
    registry = _registry_families(insurer, REFERENCE_CONTRACTS)
    fresh = parsed.new_families if parsed else []
    reference = fresh if len(fresh) >= MIN_CARRIER_FAMILIES else fresh + registry
    if not reference:
        raise CanaryError(
            f"{insurer.name} (AMC {insurer.amc_number}) has no contracts yet: canaries are drawn from the "
            "insurer's own people; plant them after its first import"
        )
    families = lookalike.draw_families(reference, count, rng, today, lookalike.Donors(reference + registry))
    taken = set(parsed.numbers) if parsed else set()
    past_the_top = _number(families, reference, registry, insurer, taken, rng)
    rows_of = [lookalike.family_rows(f, insurer.amc_number) for f in families]
    _check_rows([r for rows in rows_of for r in rows], insurer)
    with tempfile.TemporaryDirectory(prefix="rempart-") as tmp:
        if parsed is not None:
            path = Path(tmp) / carrier.name
            kept = _live_canary_rows(insurer, set(parsed.numbers)) if mode == "full" else []
            inserted = parsed.write_with(path, families, rows_of, rng, kept)
        else:
            path = Path(tmp) / _delta_name(insurer, today)
            rows = [r for family_rows in rows_of for r in family_rows]
            lines = [fmt.magic_line(insurer.amc_number), fmt.header_line(), *(";".join(r) for r in rows)]
            path.write_text("\n".join([*lines, fmt.trailer_line(len(rows))]) + "\n", encoding="utf-8")
            inserted = []
        try:
            run, summary = import_rights(path, insurer, mode=mode, show_progress=False, today=today)
        except FileRefused as exc:
            raise CanaryError(f"the import refused the file: {exc}") from None
    if inserted:
        renumber_error_lines(Path(run.report_dir) / "errors.csv", inserted)
    planted = _tag(insurer, families, by)
    forget()
    wanted = sum(len(f.people) for f in families)  # at least count: whole families
    result = Planting(planted, run, summary, len(families), past_the_top)
    if past_the_top:
        result.warnings.append(
            f"{past_the_top} adherent number(s) taken after the insurer's highest: its range had no unused "
            "number inside; if the insurer later assigns them, those canaries retire by themselves"
        )
    if len(planted) < wanted:
        raise CanaryError(f"only {len(planted)} of {wanted} canaries were planted (import run {run.pk})")
    return result


def _delta_name(insurer: Insurer, today: dt.date) -> str:
    """A name like the insurer's latest rights files (deltas first), never one that says what it is."""
    runs = ImportRun.objects.filter(insurer=insurer, kind="rights", status=ImportRun.Status.SUCCEEDED)
    deltas = list(
        runs.filter(mode="delta").order_by("-started_at", "-pk").values_list("file_name", flat=True)[:10]
    )
    history = deltas or list(runs.order_by("-started_at", "-pk").values_list("file_name", flat=True)[:10])
    name = lookalike.lookalike_file_name(history, today, fallback=f"rights-{insurer.amc_number}.csv")
    return Path(name).name or f"rights-{insurer.amc_number}.csv"


def _number(
    families: list[Family],
    reference: list[Family],
    wider: list[Family],
    insurer: Insurer,
    taken: set[str],
    rng,
) -> int:
    """Give each family an unused adherent number in one of the insurer's shapes, in their proportions.

    In order of preference: a gap among the reference's numbers (the contracts the canaries sit next
    to), a gap anywhere in the insurer's recent numbers, and only when its range has no room at all
    the numbers after its highest. Returns how many went past the top.
    """
    shapes = lookalike.learn_numbering(f.adherent for f in reference)
    if not shapes:
        raise CanaryError("the insurer's adherent numbers follow no shape that can be continued")
    chosen = [rng.choices(shapes, weights=[s.weight for s in shapes])[0] for _ in families]
    wanted: dict[lookalike.NumberShape, int] = defaultdict(int)
    for shape in chosen:
        wanted[shape] += 1
    pools: dict[lookalike.NumberShape, list[str]] = {}
    beyond = 0
    for shape, need in wanted.items():
        pool: list[str] = []
        near = [s for s in (shape.serial(f.adherent) for f in reference) if s is not None]
        known = sorted({*near, *(s for s in (shape.serial(f.adherent) for f in wider) if s is not None)})
        for serials in (near, known):
            if len(pool) < need:
                free = [shape.make(s) for s in lookalike.free_serials(shape, serials, rng, need)]
                pool += _unused(insurer, taken | set(pool), free)[: need - len(pool)]
        if len(pool) < need:
            top = sorted(
                _unused(
                    insurer,
                    taken | set(pool),
                    [shape.make(s) for s in lookalike.serials_past_the_top(shape, known, need)],
                )
            )
            beyond += min(len(top), need - len(pool))
            pool += top[: need - len(pool)]
        if len(pool) < need:
            raise CanaryError("no unused adherent number left in the insurer's numbering")
        pools[shape] = pool[::-1]
    for family, shape in zip(families, chosen, strict=True):
        family.adherent = pools[shape].pop()
        taken.add(family.adherent)
    return beyond


def _unused(insurer: Insurer, taken: set[str], numbers: list[str]) -> list[str]:
    numbers = [n for n in numbers if n not in taken and fmt.row_key(["", n])[0] == n]
    used: set[str] = set()
    for start in range(0, len(numbers), 500):
        chunk = numbers[start : start + 500]
        used.update(
            Contract.objects.filter(insurer=insurer, adherent_number__in=chunk).values_list(
                "adherent_number", flat=True
            )
        )
    return [n for n in numbers if n not in used]


def _check_rows(rows: list[list[str]], insurer: Insurer) -> None:
    """Every canary row passes the import's own checks before anything is written."""
    products = set(insurer.products.values_list("code", flat=True))
    cipher = field_cipher()
    for row in rows:
        try:
            fmt.check_row(row, insurer.amc_number, cipher)
        except fmt.RowError as exc:
            raise CanaryError(f"a drawn canary row is not valid ({exc})") from None
        if row[COLUMN["product_code"]] not in products:
            raise CanaryError("a drawn canary has a product the insurer does not have")


def _tag(insurer: Insurer, families: list[Family], by) -> list[Canary]:
    """The planted people's tags and sealed cards, in family and member order."""
    ids: dict[tuple[str, int], int] = {}
    numbers = [f.adherent for f in families]
    for adherent, member, pk in Beneficiary.objects.filter(
        contract__insurer=insurer, contract__adherent_number__in=numbers
    ).values_list("contract__adherent_number", "member_number", "pk"):
        ids[(adherent, member)] = pk
    planted = []
    with transaction.atomic():
        for family in families:
            for person in family.people:
                pk = ids.get((family.adherent, person.member))
                if pk is None:
                    continue
                card = {
                    "amc_number": insurer.amc_number,
                    "adherent_number": family.adherent,
                    "nir": person.nir if person.own_nir else person.od_nir,
                    "birth_date": person.birth_text,
                    "birth_rank": str(person.rank),
                }
                sealed = field_cipher().encrypt("canary", json.dumps(card))
                planted.append(
                    Canary.objects.create(insurer=insurer, tag=tag_of(pk), created_by=by, sealed_card=sealed)
                )
    return planted


# ---------------------------------------------------------------------------------------------- reading people


def _registry_families(insurer: Insurer, limit: int) -> list[Family]:
    """The insurer's most recent contracts (highest ids) with their members; earlier canaries left out."""
    contracts = list(
        Contract.objects.filter(insurer=insurer)
        .order_by("-id")
        .values_list("id", "adherent_number", "product__code", "start_date", "end_date", "status")[:limit]
    )
    canary_tags = {bytes(t) for t in Canary.objects.filter(insurer=insurer).values_list("tag", flat=True)}
    rows_by_contract: dict[int, list[tuple]] = defaultdict(list)
    ids = [c[0] for c in contracts]
    for start in range(0, len(ids), 500):
        for row in (
            Beneficiary.objects.filter(contract_id__in=ids[start : start + 500])
            .order_by("contract_id", "member_number")
            .values_list(
                "id", "contract_id", "member_number", "quality", "last_name", "first_name", "sex", "birth_year",
                "birth_month", "birth_day", "birth_rank", "nir_cipher", "nir_index", "od_nir_index",
                "coverage_start", "coverage_end",
            )
        ):  # fmt: skip
            rows_by_contract[row[1]].append(row)
    cipher = field_cipher()
    places_left = PLACES_SAMPLE
    families = []
    for contract_id, adherent, product, start, end, status in reversed(contracts):
        rows = rows_by_contract.get(contract_id)
        if not rows or any(tag_of(r[0]) in canary_tags for r in rows):
            continue
        index_of = {bytes(r[12]): r[2] for r in rows if r[12] is not None}
        people = []
        for (_pk, _c, member, quality, last, first, sex, year, month, day, rank, nir_cipher, _nir_index,
             od_index, coverage_start, coverage_end) in rows:  # fmt: skip
            place = ""
            if nir_cipher is not None and month and places_left > 0:
                places_left -= 1
                place = cipher.decrypt("nir", bytes(nir_cipher))[5:10]
            od_of = None if od_index is None else index_of.get(bytes(od_index), 0)
            people.append(
                Person(member, QUALITY_WORDS[quality], last, first, sex, year, month, day, rank,
                       nir_cipher is not None, od_of, coverage_start, coverage_end, place)
            )  # fmt: skip
        families.append(Family(adherent, product, start, end, status, people))
    return families


def _live_canary_rows(insurer: Insurer, listed: set[str]) -> list[list[list[str]]]:
    """The rows of the insurer's live canary families that a full file does not list (it would end them)."""
    numbers = sorted(
        {
            sealed_card(c)["adherent_number"]
            for c in Canary.objects.filter(insurer=insurer, retired_at__isnull=True)
        }
        - listed
    )
    cipher = field_cipher()
    families: dict[str, list[list[str]]] = defaultdict(list)
    for row in (
        Beneficiary.objects.filter(contract__insurer=insurer, contract__adherent_number__in=numbers)
        .order_by("contract_id", "member_number")
        .values_list(
            "contract__adherent_number", "contract__product__code", "contract__start_date", "contract__end_date",
            "contract__status", "member_number", "quality", "last_name", "first_name", "sex", "birth_year",
            "birth_month", "birth_day", "birth_rank", "nir_cipher", "od_nir_cipher", "coverage_start",
            "coverage_end",
        )
    ):  # fmt: skip
        (adherent, product, start, end, status, member, quality, last, first, sex, year, month, day, rank,
         nir, od_nir, coverage_start, coverage_end) = row  # fmt: skip
        families[adherent].append([
            insurer.amc_number, adherent, product, start.isoformat(), end.isoformat() if end else "", status,
            str(member), QUALITY_WORDS[quality], last, first, sex, f"{year:04d}-{month or 0:02d}-{day or 0:02d}",
            str(rank), cipher.decrypt("nir", bytes(nir)) if nir else "",
            cipher.decrypt("nir", bytes(od_nir)) if od_nir else "", coverage_start.isoformat(),
            coverage_end.isoformat() if coverage_end else "",
        ])  # fmt: skip
    return list(families.values())
