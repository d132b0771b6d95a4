"""Failed-login throttling per account and per source address: growing delays, then a lock.

The answer is the same whether the email exists or not; only a real account's owner is told
(by email) that their account was locked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import math

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from rempart.accounts.models import LoginThrottle


def email_key(email: str) -> str:
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def address_key(ip: str | None) -> str | None:
    if not ip:
        return None
    address = ipaddress.ip_address(ip)
    if address.version == 6:  # one person usually holds a whole /64
        return "ip:" + str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return f"ip:{address}"


def _policy(kind: str) -> dict:
    return settings.REMPART_LOGIN_THROTTLE[kind]


def delay_after(failures: int, kind: str) -> dt.timedelta:
    """No delay for the first few failures, then doubling delays up to a ceiling."""
    policy = _policy(kind)
    extra = failures - policy["free_failures"]
    if extra < 0:
        return dt.timedelta(0)
    seconds = min(policy["base_delay_seconds"] * 2**extra, policy["max_delay_seconds"])
    return dt.timedelta(seconds=seconds)


def seconds_to_wait(keys: list[str | None], now: dt.datetime | None = None) -> int:
    """How long any of these keys is still blocked (0: go ahead)."""
    now = now or timezone.now()
    wanted = [k for k in keys if k]
    blocked = LoginThrottle.objects.filter(key__in=wanted, blocked_until__gt=now).values_list(
        "blocked_until", flat=True
    )
    return max((math.ceil((until - now).total_seconds()) for until in blocked), default=0)


def record_failure(
    key: str | None, kind: str, now: dt.datetime | None = None
) -> tuple[LoginThrottle | None, bool]:
    """Count one failure; return the row and whether this failure just locked the key."""
    if not key:
        return None, False
    now = now or timezone.now()
    policy = _policy(kind)
    with transaction.atomic():
        row, _ = LoginThrottle.objects.select_for_update().get_or_create(key=key)
        if row.last_failure_at and now - row.last_failure_at > dt.timedelta(
            seconds=policy["forget_after_seconds"]
        ):
            row.failures, row.lock_notified = 0, False
        row.failures += 1
        row.last_failure_at = now
        just_locked = False
        if row.failures >= policy["lock_after"]:
            row.blocked_until = now + dt.timedelta(seconds=policy["lock_seconds"])
            just_locked = not row.lock_notified
            row.lock_notified = True
        else:
            delay = delay_after(row.failures, kind)
            row.blocked_until = now + delay if delay else None
        row.save()
    return row, just_locked


def clear(key: str | None) -> None:
    if key:
        LoginThrottle.objects.filter(key=key).delete()
