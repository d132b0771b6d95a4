"""The API's page envelope for lists of the caller's own things (payments, statements): one shape everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode


def page_of(path: str, query: dict, *, page: int, page_size: int, count: int, results: Sequence) -> dict:
    """``{"count", "page", "page_size", "next", "previous", "results"}``; links keep the query's filters."""
    start = (page - 1) * page_size

    def link(number: int) -> str:
        params = {k: str(v) for k, v in query.items() if v} | {"page": number}
        return f"{path}?{urlencode(params)}"

    return {
        "count": count,
        "page": page,
        "page_size": page_size,
        "next": link(page + 1) if start + page_size < count else None,
        "previous": link(page - 1) if page > 1 and count else None,
        "results": list(results),
    }


def window(page: int, page_size: int) -> slice:
    """The slice of an ordered queryset that the page shows."""
    start = (page - 1) * page_size
    return slice(start, start + page_size)
