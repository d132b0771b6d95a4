"""Who asks, through which channel, from where: the part of every ledger row that names the reader.

Lives in the ledger (not in the gate) because every layer that records or counts a read needs it:
the gate, surveillance, incidents and the command line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from rempart.ledger.models import Disclosure


@dataclass(frozen=True)
class Actor:
    """Who asks, through which channel, from where: known to the gate for every read."""

    channel: str
    organisation_id: int | None
    user_id: int | None = None
    token_id: int | None = None
    ip: str | None = None
    session_ref: str = ""
    second_factor_at: float | None = None  # portal: when this session last proved a second factor

    @classmethod
    def portal(cls, request) -> Actor:
        from rempart.accounts.stepup import last_second_factor_at
        from rempart.lib.http import client_ip

        session_key = request.session.session_key or ""
        return cls(
            channel=Disclosure.Channel.PORTAL,
            organisation_id=request.user.membership.organisation_id,
            user_id=request.user.pk,
            ip=client_ip(request),
            session_ref=hashlib.sha256(session_key.encode()).hexdigest()[:32] if session_key else "",
            second_factor_at=last_second_factor_at(request),
        )

    @classmethod
    def console(cls, request) -> Actor:
        """Operator staff in the security console (their reads of exposure lists are recorded too)."""
        return replace(cls.portal(request), channel=Disclosure.Channel.CONSOLE)

    @classmethod
    def command_line(cls) -> Actor:
        import getpass
        import socket

        return cls(
            channel=Disclosure.Channel.CLI,
            organisation_id=None,
            session_ref=f"cli:{getpass.getuser()}@{socket.gethostname()}"[:64],
        )

    @classmethod
    def api(cls, request) -> Actor:
        from rempart.lib.http import client_ip

        token = request.api_token
        return cls(
            channel=Disclosure.Channel.API,
            organisation_id=token.organisation_id,
            token_id=token.pk,
            ip=client_ip(request),
            session_ref=f"token:{token.prefix}",
        )
