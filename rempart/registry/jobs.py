"""Portal uploads run as jobs: the request saves the file and answers at once, a worker imports it.

The import keeps its own run record, transaction and heartbeat (rempart.registry.rights_import), so the
job is ``atomic=False``: an attempt hit by a transient error leaves its run marked failed (never
"running"), the import's transaction has rolled back, and the retry imports the saved file afresh —
nothing is doubled. The saved file is removed once the job has a final outcome.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from rempart.jobs.kinds import JobFailure, get_kind, job_kind
from rempart.lib.redact import redact

UPLOAD_PREFIXES = ("rights-", "products-")


def uploads_dir() -> Path:
    path = Path(settings.REMPART_JOBS_DIR) / "uploads"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def listed_name(uploaded) -> str:
    """The uploaded file's name as a job may carry it: redacted (a name may hold a NIR), short."""
    return redact(str(uploaded.name))[:150]


def save_upload(uploaded, prefix: str) -> str:
    """Write the uploaded file under a random name (0600); return that name (a job parameter)."""
    if prefix not in UPLOAD_PREFIXES:
        raise ValueError("unknown upload prefix")
    name = f"{prefix}{secrets.token_hex(16)}.csv"
    path = uploads_dir() / name
    with open(path, "xb", opener=lambda p, flags: os.open(p, flags, 0o600)) as handle:
        for chunk in uploaded.chunks():
            handle.write(chunk)
    return name


def _upload_path(name: str) -> Path:
    """The saved file; a name that is not one of ours (a path, a dot-dot) is refused."""
    if "/" in name or "\\" in name or not name.startswith(UPLOAD_PREFIXES):
        raise JobFailure("bad_upload", _("Le fichier chargé est introuvable ; chargez-le de nouveau."))
    return uploads_dir() / name


def remove_upload(name: str) -> None:
    try:
        _upload_path(name).unlink(missing_ok=True)
    except JobFailure:
        pass


class _Throttled:
    """ctx.progress at most every 0.2 s (it is cheap, but the reader calls back per chunk)."""

    def __init__(self, ctx, note: str) -> None:
        self.ctx, self.note, self.last = ctx, note, 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last >= 0.2 or (total is not None and done >= total):
            self.last = now
            self.ctx.progress(done, total, self.note)


def _final_attempt(ctx, kind_name: str, error: BaseException) -> bool:
    """Whether the jobs app will not retry after this error (then the saved file can go)."""
    from rempart.jobs.models import Job

    kind = get_kind(kind_name)
    job = Job.objects.filter(pk=ctx.job_id).values("max_attempts").first()
    if kind is None or job is None or not isinstance(error, kind.retry_on):
        return True
    return ctx.attempt >= job["max_attempts"]


def _run_result(run, extra: dict | None = None) -> dict:
    counts = {k: v for k, v in (run.counts or {}).items() if isinstance(v, int | float | bool)}
    return {
        "url": reverse("registry:import_detail", kwargs={"pk": run.pk}),
        "run": run.pk,
        "status": run.status,
        **counts,
        **(extra or {}),
    }


@job_kind(
    "registry.import_rights", label=_("Chargement d'un fichier de droits"), max_attempts=3, atomic=False
)
def import_rights_upload(
    ctx,
    upload: str,
    insurer_id: int,
    mode: str,
    dry_run: bool = False,
    force: bool = False,
    user_id: int | None = None,
    file_name: str = "",
) -> dict:
    from rempart.accounts.events import record_event
    from rempart.accounts.models import User
    from rempart.registry.models import ImportRun, Insurer
    from rempart.registry.rights_import import FileRefused, import_rights

    path = _upload_path(upload)
    insurer = Insurer.objects.get(pk=insurer_id)
    file_name = file_name or upload
    try:
        run, _summary = import_rights(
            path,
            insurer,
            mode=mode,
            dry_run=dry_run,
            force=force,
            show_progress=False,
            file_name=file_name,
            on_progress=_Throttled(ctx, "octets"),
        )
    except FileRefused as exc:
        remove_upload(upload)
        if exc.run is not None:
            # The refusal is recorded on its run (its page says why); the job links to it.
            return _run_result(exc.run, {"refused": True})
        raise JobFailure(exc.code, exc.describe()) from exc
    except BaseException as error:
        if _final_attempt(ctx, "registry.import_rights", error):
            remove_upload(upload)
        raise
    remove_upload(upload)
    if force and run.status == ImportRun.Status.SUCCEEDED:
        user = User.objects.filter(pk=user_id).first() if user_id else None
        record_event(
            "registry.import_forced", user=user, run=run.pk, ended=run.counts.get("contracts_ended", 0)
        )
    return _run_result(run)


@job_kind(
    "registry.import_products", label=_("Chargement d'un fichier de produits"), max_attempts=3, atomic=False
)
def import_products_upload(
    ctx, upload: str, insurer_id: int, dry_run: bool = False, file_name: str = ""
) -> dict:
    from rempart.registry import portal
    from rempart.registry.models import Insurer
    from rempart.registry.rights_import import FileRefused

    path = _upload_path(upload)
    insurer = Insurer.objects.get(pk=insurer_id)
    ctx.progress(0, None, "lignes")
    try:
        run = portal.import_products_file(path, insurer, file_name=file_name or upload, dry_run=dry_run)
    except FileRefused as exc:
        remove_upload(upload)
        if exc.run is not None:
            return _run_result(exc.run, {"refused": True})
        raise JobFailure(exc.code, exc.describe()) from exc
    except BaseException as error:
        if _final_attempt(ctx, "registry.import_products", error):
            remove_upload(upload)
        raise
    remove_upload(upload)
    ctx.progress(1, 1, "lignes")
    return _run_result(run)


def pending_uploads(insurer) -> list:
    """This insurer's uploads still waiting or running (the imports page links to their job pages)."""
    from rempart.jobs.models import Job

    return list(
        Job.objects.filter(
            kind__in=("registry.import_rights", "registry.import_products"),
            status__in=(*Job.WAITING, Job.Status.RUNNING),
            params__insurer_id=insurer.pk,
        ).order_by("-created_at")[:20]
    )
