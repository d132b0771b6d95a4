"""The anchors as insurers receive them: one list, shared by the insurer portal and the API."""

from __future__ import annotations

import json

from rempart.ledger import anchors
from rempart.ledger.models import LedgerAnchor


def anchor_list(after: int = 0, limit: int | None = None) -> dict:
    """The signed anchors numbered after ``after``, oldest first, with the key that checks them."""
    query = LedgerAnchor.objects.filter(number__gt=after).order_by("number")
    stored = list(query[: limit + 1] if limit else query)
    more = bool(limit) and len(stored) > limit
    stored = stored[:limit] if limit else stored
    return {
        "format": anchors.FORMAT,
        "key_id": anchors.key_id(anchors.public_key()),
        "public_key": anchors.public_key_pem(),
        "anchors": [json.loads(anchor.document) for anchor in stored],
        "next_after": stored[-1].number if more else None,
    }


def summary(anchor: LedgerAnchor) -> dict:
    """What the portal shows of one anchor: the rows it covers, and whether the operator accepted a break."""
    document = json.loads(anchor.document)
    return {
        "anchor": anchor,
        "rows": sum(head["seq"] for head in document["chains"]),
        "chains": len(document["chains"]),
        "accepted_break": document.get("accepted_break", ""),
    }
