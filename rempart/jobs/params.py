"""What a job may carry in its parameters: ids, dates, numbers, flags, short codes — never personal data.

Job parameters end up in the task backend (a database row, a Redis hash), in logs and on the operator's
jobs page. A NIR, an IBAN or a person's name there would be a leak that no access control covers, so
parameters are checked when the job is enqueued, not trusted.
"""

from __future__ import annotations

import re
from typing import Any

from rempart.lib.redact import redact

_MAX_STRING = 200
_MAX_ITEMS = 50
_SAFE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class UnsafeParams(ValueError):
    pass


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return ``params`` if it is small, JSON-shaped and free of anything the redactor would hide."""
    if not isinstance(params, dict):
        raise UnsafeParams("job parameters must be a mapping")
    for key, value in params.items():
        if not isinstance(key, str) or not _SAFE_KEY.match(key):
            raise UnsafeParams(f"job parameter name not allowed: {key!r}")
        _check_value(key, value, depth=0)
    return params


def _check_value(key: str, value: Any, depth: int) -> None:
    if value is None or isinstance(value, bool | int | float):
        return
    if isinstance(value, str):
        if len(value) > _MAX_STRING:
            raise UnsafeParams(f"job parameter {key!r} is too long")
        if redact(value) != value:
            raise UnsafeParams(f"job parameter {key!r} looks like personal data")
        return
    if isinstance(value, list | tuple) and depth == 0:
        if len(value) > _MAX_ITEMS:
            raise UnsafeParams(f"job parameter {key!r} has too many items")
        for item in value:
            _check_value(key, item, depth + 1)
        return
    raise UnsafeParams(f"job parameter {key!r} has a type jobs do not carry")
