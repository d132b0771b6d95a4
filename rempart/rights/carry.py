"""Card data carried from one counter page to the next, server-side, so that nothing is typed twice.

Two uses: a form kept across a surveillance step-up (the person leaves for the second-factor prompt and comes
back with a GET), and the cards of a rights check answered *covered — prise en charge requise*, handed to the
PEC form. Never in a URL: what was posted is kept in the person's own session, encrypted with the registry's
field cipher (the NIR is in it), bound to the page it is for, for a few minutes, and used once. The fields a
page never writes back (the NIR) are taken from it when the person leaves them empty (as rempart.claims.drafts
does for the invoice form).
"""

from __future__ import annotations

import base64
import json
import time

from django.http import HttpRequest

from rempart.lib.crypto import DecryptionError, field_cipher

STEP_UP = "counter.step_up_draft"  # a form kept across the second-factor prompt
CARDS = "counter.cards"  # the cards of a rights check, for the PEC form
MAX_AGE_SECONDS = 15 * 60
_PURPOSE = (
    "counter-carry"  # the cipher's associated data (with the slot): a draft cannot be read as anything else
)


def keep(request: HttpRequest, slot: str, path: str, data: dict[str, str], **extra: str) -> None:
    """Keep ``data`` for the page at ``path`` (one per slot and session: the last one)."""
    fields = {k: v for k, v in data.items() if k != "csrfmiddlewaretoken"}
    plain = json.dumps({"path": path, "at": time.time(), "data": fields, "extra": extra})
    request.session[slot] = base64.b64encode(field_cipher().encrypt(f"{_PURPOSE}:{slot}", plain)).decode()


def peek(request: HttpRequest, slot: str) -> tuple[dict[str, str], dict[str, str]] | None:
    """(data, extra) kept for this page, or None (none, another page's, too old or unreadable: then dropped)."""
    blob = request.session.get(slot)
    if not blob:
        return None
    try:
        kept = json.loads(field_cipher().decrypt(f"{_PURPOSE}:{slot}", base64.b64decode(blob)))
    except (DecryptionError, ValueError):
        kept = None
    if kept is None or time.time() - kept.get("at", 0) > MAX_AGE_SECONDS:
        discard(request, slot)
        return None
    if kept.get("path") != request.path:
        return None
    return kept["data"], kept.get("extra") or {}


def discard(request: HttpRequest, *slots: str) -> None:
    for slot in slots or (STEP_UP, CARDS):
        request.session.pop(slot, None)


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().upper().replace(" ", "") == (b or "").strip().upper().replace(" ", "")


def fill_blanks(request: HttpRequest, posted, names: tuple[str, ...], *slots: str):
    """The posted data, with the named fields left empty taken from what this page kept (first slot first).

    Only for the same cards: when the AMC or adherent number posted differs from the kept one, the person moved
    on to another patient, and nothing kept is mixed into their request."""
    data = posted.copy()
    for slot in slots:
        kept = peek(request, slot)
        if not kept or not all(_same(data.get(k), kept[0].get(k)) for k in ("amc_number", "adherent_number")):
            continue
        for name in names:
            if not (data.get(name) or "").strip() and kept[0].get(name):
                data[name] = kept[0][name]
    return data
