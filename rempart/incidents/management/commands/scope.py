"""`rempart scope`: who was exposed, by which actors, when — as CSV files per insurer and a summary."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rempart.accounts.models import ApiToken, Organisation, User
from rempart.incidents.export import describe, write_per_insurer, write_summary
from rempart.incidents.scope import ScopeCriteria, ScopeError, summarise
from rempart.ledger import gate
from rempart.lib.progress import progress_bar


def _moment(text: str, option: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{option}: YYYY-MM-DD or YYYY-MM-DDTHH:MM expected") from None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


class Command(BaseCommand):
    help = (
        "Scope of exposure from the disclosure ledger. Actors (--account, --token, --organisation) are alternatives; "
        "--ip, --channel, --purpose, --since and --until narrow them. Prints the totals; with --out DIR writes one "
        "CSV per insurer (adherent number and rank of each person) and summary.txt/summary.json. Every run is "
        "recorded in the ledger."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", action="append", default=[], help="account email (repeatable)")
        parser.add_argument("--token", action="append", default=[], help="API token prefix (repeatable)")
        parser.add_argument(
            "--organisation", action="append", default=[], help="organisation id or exact name"
        )
        parser.add_argument("--ip", action="append", default=[], help="address or CIDR network (repeatable)")
        parser.add_argument(
            "--channel", action="append", default=[], choices=["portal", "api", "console", "cli"]
        )
        parser.add_argument("--purpose", action="append", default=[], help="e.g. rights_check")
        parser.add_argument("--since", help="start (YYYY-MM-DD[THH:MM], local time)")
        parser.add_argument("--until", help="end, excluded")
        parser.add_argument("--out", type=Path, help="directory for the CSV files and the summary")

    def _ids(self, model, field: str, values: list[str], what: str) -> tuple[int, ...]:
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

    def handle(self, *args, **options):
        try:
            criteria = ScopeCriteria(
                user_ids=self._ids(User, "email__iexact", options["account"], "account"),
                token_ids=self._ids(ApiToken, "prefix", options["token"], "token"),
                organisation_ids=self._ids(Organisation, "name", options["organisation"], "organisation"),
                networks=tuple(options["ip"]),
                channels=tuple(options["channel"]),
                purposes=tuple(options["purpose"]),
                since=_moment(options["since"], "--since") if options["since"] else None,
                until=_moment(options["until"], "--until") if options["until"] else None,
            )
        except ScopeError as exc:
            raise CommandError(str(exc)) from None
        description = describe(criteria.to_json())
        actor = gate.Actor.command_line()
        summary = summarise(criteria)
        self.stdout.write("Criteria: " + " · ".join(description))
        self.stdout.write(
            f"{summary.people:,} people exposed, {summary.disclosures:,} disclosures, "
            f"{summary.misses:,} attempts without a match"
        )
        out = options["out"]
        if out is None:
            gate.record_scope_run(actor, label="cli", people=summary.people, listed=False)
            return
        out.mkdir(parents=True, exist_ok=True)
        with progress_bar(total=summary.people, desc="people", unit="people") as bar:
            files = write_per_insurer(
                gate.live_exposure_keys(actor, criteria, label="cli"), out, progress=bar
            )
        path = write_summary(out, criteria, summary, files, description)
        self.stdout.write(f"Wrote {len(files)} CSV file(s) and {path} in {out}")
