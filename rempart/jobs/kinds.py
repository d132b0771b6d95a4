"""The kinds of job Rempart runs, each registered by the app that owns the work (``<app>/jobs.py``).

A kind names a plain function ``fn(ctx, **params)``; the jobs app never imports the business apps, the
business apps register with it (autodiscovered at start-up, like Django's admin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import InterfaceError, OperationalError
from django.utils.functional import Promise

# Worth another attempt: the database or the network was away for a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


class JobFailure(Exception):
    """A job that cannot succeed, said plainly: not retried, shown to the person with its code.

    ``message`` is for people (translated lazily, no personal data); ``code`` is stable for machines.
    """

    def __init__(self, code: str, message: str | Promise) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class JobKind:
    name: str
    func: Callable[..., Any]
    label: str | Promise
    max_attempts: int = 3
    # Run the whole job in one transaction: a worker killed mid-job then leaves nothing half-done (the
    # database rolls the transaction back) and the retry starts from a clean state. Jobs that commit in
    # steps (each step idempotent) say atomic=False.
    atomic: bool = True
    queue: str = "default"
    # Exceptions worth another attempt (a database restart, a lost connection); anything else fails at once.
    retry_on: tuple[type[BaseException], ...] = field(default_factory=tuple)


_KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    label: str | Promise,
    max_attempts: int = 3,
    atomic: bool = True,
    queue: str = "default",
    retry_on: tuple[type[BaseException], ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func(ctx, **params)`` as the job kind ``name`` (``"<app>.<what>"``)."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        existing = _KINDS.get(name)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise RuntimeError(f"job kind {name!r} registered twice")
        _KINDS[name] = JobKind(
            name=name,
            func=func,
            label=label,
            max_attempts=max(1, max_attempts),
            atomic=atomic,
            queue=queue,
            retry_on=TRANSIENT_ERRORS + tuple(retry_on),
        )
        return func

    return register


def get_kind(name: str) -> JobKind | None:
    return _KINDS.get(name)


def all_kinds() -> dict[str, JobKind]:
    return dict(_KINDS)
