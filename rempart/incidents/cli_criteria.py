"""Scope criteria from command-line options, shared by `rempart scope` and `rempart incident attach`."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import CommandError
from django.utils import timezone

from rempart.accounts.models import ApiToken, Organisation, User
from rempart.incidents.scope import ScopeCriteria, ScopeError


def add_criteria_arguments(parser) -> None:
    parser.add_argument("--account", action="append", default=[], help="account email (repeatable)")
    parser.add_argument("--token", action="append", default=[], help="API token prefix (repeatable)")
    parser.add_argument("--organisation", action="append", default=[], help="organisation id or exact name")
    parser.add_argument("--ip", action="append", default=[], help="address or CIDR network (repeatable)")
    parser.add_argument("--channel", action="append", default=[], choices=["portal", "api", "console", "cli"])
    parser.add_argument("--purpose", action="append", default=[], help="e.g. rights_check")
    parser.add_argument("--since", help="start (YYYY-MM-DD[THH:MM], local time)")
    parser.add_argument("--until", help="end, excluded")


def moment(text: str, option: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: YYYY-MM-DD or YYYY-MM-DDTHH:MM expected") from None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _ids(model, field: str, values: list[str], what: str) -> tuple[int, ...]:
    ids = []
    for value in values:
        lookup = {"pk": int(value)} if field == "name" and value.isdigit() else {field: value}
        if field == "prefix":
            lookup = {"prefix": value.removeprefix("rmp_").split("_")[0]}
        found = model.objects.filter(**lookup).values_list("pk", flat=True).first()
        if found is None:
            raise CommandError(f"unknown {what}: {value}")
        ids.append(found)
    return tuple(ids)


def criteria_from_options(options: dict) -> ScopeCriteria:
    try:
        return ScopeCriteria(
            user_ids=_ids(User, "email__iexact", options["account"], "account"),
            token_ids=_ids(ApiToken, "prefix", options["token"], "token"),
            organisation_ids=_ids(Organisation, "name", options["organisation"], "organisation"),
            networks=tuple(options["ip"]),
            channels=tuple(options["channel"]),
            purposes=tuple(options["purpose"]),
            since=moment(options["since"], "--since") if options["since"] else None,
            until=moment(options["until"], "--until") if options["until"] else None,
        )
    except ScopeError as exc:
        raise CommandError(str(exc)) from None
