"""`rempart scope`: who was exposed, by which actors, when — as CSV files per insurer and a summary."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rempart.incidents import exposure
from rempart.incidents.cli_criteria import add_criteria_arguments, criteria_from_options
from rempart.incidents.export import describe, write_per_insurer, write_summary
from rempart.incidents.scope import ScopeError, summarise
from rempart.ledger.actor import Actor
from rempart.lib.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Scope of exposure from the disclosure ledger. Actors (--account, --token, --organisation) are alternatives; "
        "--ip, --channel, --purpose, --since and --until narrow them. Prints the totals; with --out DIR writes one "
        "CSV per insurer (adherent number and rank of each person) and summary.txt/summary.json. Every run is "
        "recorded in the ledger."
    )

    def add_arguments(self, parser):
        add_criteria_arguments(parser)
        parser.add_argument("--out", type=Path, help="directory for the CSV files and the summary")

    def handle(self, *args, **options):
        criteria = criteria_from_options(options)
        description = describe(criteria.to_json())
        actor = Actor.command_line()
        try:
            summary = summarise(criteria)
        except ScopeError as exc:  # an archived month fails its check (docs/ledger-archive.md)
            raise CommandError(str(exc)) from None
        self.stdout.write("Criteria: " + " · ".join(description))
        self.stdout.write(
            f"{summary.people:,} people exposed, {summary.disclosures:,} disclosures, "
            f"{summary.misses:,} attempts without a match"
        )
        out = options["out"]
        if out is None:
            exposure.record_scope_run(actor, label="cli", people=summary.people, listed=False)
            return
        out.mkdir(parents=True, exist_ok=True)
        with progress_bar(total=summary.people, desc="people", unit="people") as bar:
            files = write_per_insurer(
                exposure.live_exposure_keys(actor, criteria, label="cli"), out, progress=bar
            )
        path = write_summary(out, criteria, summary, files, description)
        self.stdout.write(f"Wrote {len(files)} CSV file(s) and {path} in {out}")
