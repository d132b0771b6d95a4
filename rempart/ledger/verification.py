"""A verification run: every check, then one verdict that decides what the run may leave behind.

Rules (docs/incident-response.md, "Verifying the ledger"):

- a run with any problem saves nothing: no checkpoint moves, not even those of the chains that passed (a
  checkpoint says "every check of a run passed up to here"; half a run is no such statement), and the failure
  is recorded as a VerificationRun;
- after a failure the ledger counts as altered, for every later run and every incident freeze, until a
  *complete* run passes: every chain read from its first row and checked against the local anchors (and, if
  the failure came from anchors given from outside, against such anchors too). A run from checkpoints or from
  a date cannot clear it: it does not read the rows the failure may be about;
- every run, whatever its kind, checks the newest local anchor (a few indexed reads and the rows since).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone

from rempart.ledger import anchors, chain
from rempart.ledger.models import VerificationRun

Kind = VerificationRun.Kind


def current_failure() -> VerificationRun | None:
    """The failed run that still stands: no complete run has passed since (None: the ledger counts as intact)."""
    # Runs are recorded as they end: the highest id is the latest verdict.
    failure = VerificationRun.objects.filter(ok=False).order_by("-pk").first()
    if failure is None:
        return None
    clearing = VerificationRun.objects.filter(ok=True, complete=True, pk__gt=failure.pk)
    if failure.published:
        clearing = clearing.filter(published=True)
    return None if clearing.exists() else failure


def describe_failure(failure: VerificationRun) -> str:
    lines = [line for line in failure.problems.splitlines() if line.strip()]
    shown = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
    return (
        f"the verification of {timezone.localtime(failure.finished_at):%Y-%m-%d %H:%M} ({failure.kind}) failed "
        f"and no complete verification has passed since: {shown}"
    )


@dataclass
class Outcome:
    run: VerificationRun
    report: chain.VerifyReport
    problems: list[str] = field(default_factory=list)  # this run's own findings
    standing: str = ""  # a previous failure this run could not clear
    anchors_checked: int = 0
    newest_anchor: anchors.Anchor | None = None
    cleared: VerificationRun | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and not self.standing

    @property
    def all_problems(self) -> list[str]:
        return [*self.problems, *([self.standing] if self.standing else [])]


def run(
    kind: str,
    *,
    since=None,
    from_checkpoints: bool = False,
    published: list[Path] | None = None,
    extra_keys: list = (),
    heads: dict[int, tuple[int, bytes]] | None = None,
    extra: Callable[[], list[str]] | None = None,
) -> Outcome:
    """Verify the chains, the local anchors, optionally anchors given from outside (``published``: files or
    directories, an empty list meaning the anchor directory; ``heads``: an unsigned heads file, the older form)
    and any ``extra`` check; then record the verdict."""
    started = timezone.now()
    failure_before = current_failure()
    report = chain.verify(since, from_checkpoints=from_checkpoints)
    problems = list(report.broken)
    keys = anchors.trusted_keys(list(extra_keys))
    # A complete run reads every local anchor; the others (and freezes) the newest, whose cost does not grow.
    local, local_problems = anchors.local_anchors(
        keys, newest_only=not (since is None and not from_checkpoints)
    )
    problems += local_problems
    rows, found = anchors.check(local, every_anchor=False)
    problems += found
    checked = list(local)
    if published is not None:
        given, load_problems = anchors.load(published or [anchors.anchor_dir()], keys)
        problems += load_problems
        if since is not None:
            given = [a for a in given if a.anchored_at >= since]
        if not given and not load_problems:
            problems.append(
                "no anchor found in " + ", ".join(str(p) for p in published or [anchors.anchor_dir()])
            )
        read, found = anchors.check(given)
        rows += read
        problems += found
        checked += given
    if heads is not None:
        problems += chain.check_anchors(heads)
    if extra is not None:
        problems += extra()
    problems = list(dict.fromkeys(problems))
    complete = report.complete and since is None
    external = published is not None or heads is not None
    own_ok = not problems
    standing = ""
    cleared = None
    if failure_before is not None:
        if own_ok and complete and (external or not failure_before.published):
            cleared = failure_before
        else:
            standing = describe_failure(failure_before)
    save = own_ok and not standing and since is None and bool(report.ends)
    if save:
        chain.save_checkpoints(report.ends)
    record = VerificationRun.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        kind=kind,
        complete=complete,
        published=external,
        ok=own_ok,
        rows=report.rows + rows,
        problems="\n".join(problems),
        checkpoints_saved=save,
    )
    newest = max(checked, key=lambda a: a.number) if checked else None
    return Outcome(record, report, problems, standing, len({a.number for a in checked}), newest, cleared)
