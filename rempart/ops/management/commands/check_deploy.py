"""``rempart check-deploy``: may this configuration serve production? Exit 0 only when nothing is wrong."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from rempart.ops import deploy_checks


class Command(BaseCommand):
    help = (
        "Django's `check --deploy` plus Rempart's production checks (secrets, debug, HTTPS, PostgreSQL and its "
        "roles, Redis, job workers, email, metrics). One line per problem with its id and the fix; exit status 1 "
        "when there is any. `--json` for machines."
    )
    requires_system_checks = []  # the checks are what this command reports, not a reason not to run

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON document on standard output")

    def handle(self, *args, json: bool = False, **options):  # noqa: A002 - the option's name
        outcome = deploy_checks.run()
        problems = outcome["problems"]
        if json:
            self.stdout.write(_dumps(outcome))
        else:
            for problem in problems:
                self.stdout.write(problem.line())
            for item in outcome["accepted"]:
                self.stdout.write(f"accepted {item['id']}: {item['reason']}")
            if not problems:
                self.stdout.write("OK: ready for production.")
        if problems:
            errors = sum(problem.level == "error" for problem in problems)
            raise CommandError(
                f"{len(problems)} problem(s) ({errors} error(s), {len(problems) - errors} warning(s))",
                returncode=1,
            )


def _dumps(outcome: dict) -> str:
    return json.dumps(
        {
            "ok": outcome["ok"],
            "problems": [problem.as_dict() for problem in outcome["problems"]],
            "accepted": outcome["accepted"],
        },
        indent=2,
    )
