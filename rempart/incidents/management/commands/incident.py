"""`rempart incident`: the incident workflow from the command line (large scopes, scripts, the runbook)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rempart.incidents import workflow
from rempart.incidents.cli_criteria import add_criteria_arguments, criteria_from_options, moment
from rempart.incidents.models import Incident
from rempart.ledger.actor import Actor


class Command(BaseCommand):
    help = (
        "Incidents: `list`; `open --title T [--detected-at WHEN] [--description D] [--contact C]`; "
        "`attach N --label L <scope criteria as for rempart scope>` (verifies the ledger, freezes the scope); "
        "`notices N [--scope ID]` (generates every insurer's notices with a progress bar); `show N`."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("list", "open", "attach", "notices", "show"))
        parser.add_argument("incident", nargs="?", type=int, help="incident number (attach, notices, show)")
        parser.add_argument("--title")
        parser.add_argument("--detected-at", help="YYYY-MM-DDTHH:MM, local time (default: now)")
        parser.add_argument("--description", default="")
        parser.add_argument("--contact", default="")
        parser.add_argument("--label", default="")
        parser.add_argument("--scope", type=int, help="notices: the frozen scope (default: the latest)")
        add_criteria_arguments(parser)

    def _incident(self, number: int | None) -> Incident:
        if number is None:
            raise CommandError("give the incident number")
        incident = Incident.objects.filter(pk=number).first()
        if incident is None:
            raise CommandError(f"no incident {number}")
        return incident

    def handle(self, *args, action, incident, **options):
        if action == "list":
            for item in Incident.objects.order_by("-detected_at"):
                left = item.time_left()
                clock = (
                    f"{int(left.total_seconds() // 3600)} h left"
                    if left.total_seconds() > 0
                    else "72 h passed"
                )
                self.stdout.write(f"{item.number}  {item.get_status_display():10s} {clock:12s} {item.title}")
            return
        if action == "open":
            if not options["title"]:
                raise CommandError("--title is required")
            detected = (
                moment(options["detected_at"], "--detected-at") if options["detected_at"] else timezone.now()
            )
            try:
                opened = workflow.open_incident(
                    title=options["title"], detected_at=detected, description=options["description"],
                    contact=options["contact"],
                )  # fmt: skip
            except workflow.WorkflowError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                f"Opened {opened.number}; notify the CNIL by {timezone.localtime(opened.deadline):%d/%m/%Y %H:%M}"
            )
            return
        target = self._incident(incident)
        if action == "attach":
            criteria = criteria_from_options(options)
            scope = workflow.attach_scope(
                target, criteria, label=options["label"] or "command line", actor=Actor.command_line()
            )
            verdict = "ledger verified" if scope.ledger_ok else "LEDGER ALTERED: " + scope.ledger_report
            self.stdout.write(
                f"Scope {scope.pk} frozen into {target.number}: {scope.people:,} people, {scope.disclosures:,} "
                f"disclosures, {scope.misses:,} misses; {verdict}"
            )
            if not scope.ledger_ok:
                raise CommandError("the disclosure ledger failed verification: see the scope's report")
            return
        if action == "notices":
            scopes = target.scopes.order_by("-pk")
            scope = scopes.filter(pk=options["scope"]).first() if options["scope"] else scopes.first()
            if scope is None:
                raise CommandError("no such frozen scope in this incident")
            from rempart.incidents.notices import generate_notices

            documents = generate_notices(target, scope, actor=Actor.command_line(), show_progress=True)
            for document in documents:
                self.stdout.write(f"{document.sha256}  {document.size:>12,}  {document.filename}")
            return
        self.stdout.write(f"{target.number} {target.title} — {target.get_status_display()}")
        self.stdout.write(
            f"detected {timezone.localtime(target.detected_at):%d/%m/%Y %H:%M}, deadline {timezone.localtime(target.deadline):%d/%m/%Y %H:%M}"
        )
        for scope in target.scopes.all():
            self.stdout.write(
                f"  scope {scope.pk} «{scope.label}»: {scope.people:,} people, ledger {'OK' if scope.ledger_ok else 'ALTERED'}"
            )
        for entry in target.timeline.all():
            self.stdout.write(f"  {timezone.localtime(entry.at):%d/%m %H:%M} {entry.action} {entry.detail}")
