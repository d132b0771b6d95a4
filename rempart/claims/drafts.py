"""An invoice form kept across a surveillance step-up, so that the card data typed are not typed twice.

When surveillance asks for the second factor again, the person leaves the form for the prompt and comes back
with a GET. What they posted is kept in their own session, encrypted with the registry's field cipher (the NIR
is in it), bound to the form's path, for a few minutes, and used once: the form comes back filled, and the card
fields it never writes into the page (NIR, birth date…) are taken from the draft when left empty.
"""

from __future__ import annotations

import base64
import json
import time

from django.http import HttpRequest

from rempart.lib.crypto import DecryptionError, field_cipher

SESSION_KEY = "claims.invoice_draft"
PURPOSE = "claims-invoice-draft"  # the cipher's associated data: a draft cannot be read as anything else
MAX_AGE_SECONDS = 15 * 60


def keep(request: HttpRequest, data: dict[str, str]) -> None:
    """Keep what was posted (one draft per session: the last one)."""
    fields = {k: v for k, v in data.items() if k != "csrfmiddlewaretoken"}
    plain = json.dumps({"path": request.path, "at": time.time(), "data": fields})
    request.session[SESSION_KEY] = base64.b64encode(field_cipher().encrypt(PURPOSE, plain)).decode()


def peek(request: HttpRequest) -> dict[str, str] | None:
    """The fresh draft of this form, or None (none, another form's, too old or unreadable: then dropped)."""
    blob = request.session.get(SESSION_KEY)
    if not blob:
        return None
    try:
        draft = json.loads(field_cipher().decrypt(PURPOSE, base64.b64decode(blob)))
    except (DecryptionError, ValueError):
        draft = None
    if draft is None or time.time() - draft.get("at", 0) > MAX_AGE_SECONDS:
        discard(request)
        return None
    return draft["data"] if draft.get("path") == request.path else None


def discard(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)


def fill_blanks(request: HttpRequest, posted, names: tuple[str, ...]):
    """The posted data, with the named fields the person left empty taken from this form's draft."""
    draft = peek(request)
    if not draft:
        return posted
    data = posted.copy()
    for name in names:
        if not (data.get(name) or "").strip() and draft.get(name):
            data[name] = draft[name]
    return data
