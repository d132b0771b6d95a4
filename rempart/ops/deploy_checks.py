"""Is this configuration fit for production? The checks behind ``rempart check-deploy`` (docs/deployment.md).

Django's own deployment checks (``check --deploy``) plus Rempart's: the settings a demo gets away with and a
national deployment must not (generated secrets, SQLite, console email, counters in one process's database…), and
the services production depends on answering now (PostgreSQL, Redis, at least one job worker). Each problem has a
stable id, a plain sentence and the fix; nothing printed contains a secret, a password or a database address.

The probes that reach another service (``redis_problem``, ``live_workers``, ``database_vendor``,
``database_state``) are module functions so that tests can replace them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.core import checks as django_checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

from rempart.lib.local_secrets import SECRET_NAMES

# Django deployment check ids accepted on purpose, and why. Anything else Django reports fails the check.
ACCEPTED_DJANGO_IDS = {
    # HSTS includeSubDomains / preload bind every subdomain of the operator's domain (and, for preload, browsers'
    # built-in lists for years): a decision for whoever owns the domain, not for the application.
    "security.W005": "HSTS includeSubDomains is the domain owner's decision, not the application's",
    "security.W021": "HSTS preload is the domain owner's decision, not the application's",
}
# Django's deployment warnings have no hint; these say what to change in Rempart's environment.
DJANGO_FIXES = {
    "security.W004": "REMPART_ENV=production sets a one-year HSTS.",
    "security.W008": "leave REMPART_SSL_REDIRECT unset with REMPART_ENV=production.",
    "security.W012": "leave REMPART_SECURE_COOKIES unset with REMPART_ENV=production.",
    "security.W016": "leave REMPART_SECURE_COOKIES unset with REMPART_ENV=production.",
    "security.W018": "remove REMPART_DEBUG.",
    "security.W009": "set REMPART_SECRET_KEY to 50+ random characters (python3 -c 'import secrets; "
    "print(secrets.token_urlsafe(50))').",
    "security.W020": "set REMPART_ALLOWED_HOSTS.",
}
# Demo values in settings.py that must not reach production.
DEMO_DEBTOR_IBAN = "FR7630006000011234567890189"
DEMO_CREDITOR_ID = "FR72ZZZ123456"
CONSOLE_LIKE_EMAIL = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
)
NOT_A_QUEUE = ("django_tasks.backends.immediate.ImmediateBackend", "django_tasks.backends.dummy.DummyBackend")
SECRET_SETTINGS = {
    "REMPART_SECRET_KEY": "SECRET_KEY",
    "REMPART_DATA_KEYS": "REMPART_DATA_KEYS",
    "REMPART_BLIND_INDEX_KEY": "REMPART_BLIND_INDEX_KEY",
    "REMPART_LEDGER_SIGNING_KEY": "REMPART_LEDGER_SIGNING_KEY",
}
WORKER_MAX_AGE_SECONDS = 60
REDIS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Problem:
    id: str  # rempart.Ennn (unsafe or broken) or rempart.Wnnn (should be fixed); Django's own ids as they are
    message: str
    fix: str

    @property
    def level(self) -> str:
        return "error" if ".E" in self.id else "warning"

    def line(self) -> str:
        return f"{self.id}: {self.message} Fix: {self.fix}"

    def as_dict(self) -> dict:
        return {**asdict(self), "level": self.level}


# --- probes (replaced in tests)


def redis_problem(url: str) -> str | None:
    """None when the Redis at ``url`` answers PING; otherwise the error's class name (never the URL)."""
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        client.ping()
        client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return type(exc).__name__
    return None


def live_workers() -> list[dict]:
    """Job workers seen lately (rempart.jobs.stats); raises ImportError/AttributeError without the jobs app."""
    from rempart.jobs import stats

    return stats.live_workers(max_age_seconds=WORKER_MAX_AGE_SECONDS)


def database_vendor() -> str:
    return connections[DEFAULT_DB_ALIAS].vendor


def database_state() -> dict:
    """Migrations left to apply, and what the application's role may do to the disclosure ledger
    (deploy/postgres/roles.sql). PostgreSQL only; raises DatabaseError when the database does not answer."""
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolsuper, pg_has_role(current_user, c.relowner, 'USAGE'), "
            "has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE') "
            "OR has_table_privilege(c.oid, 'TRUNCATE') "
            "FROM pg_roles r, pg_class c WHERE r.rolname = current_user AND c.oid = 'ledger_disclosure'::regclass"
        )
        superuser, owner, can_change = cursor.fetchone()
    return {"pending": pending, "superuser": superuser, "owner": owner, "can_change_ledger": can_change}


# --- Rempart's checks


def _environment() -> list[Problem]:
    problems = []
    if settings.REMPART_ENV != "production":
        problems.append(
            Problem(
                "rempart.E001",
                f"REMPART_ENV is {settings.REMPART_ENV!r}: the demo rules apply (secrets may come from var/, "
                "WebAuthn accepts insecure origins, demo commands run).",
                "set REMPART_ENV=production.",
            )
        )
    if settings.DEBUG:
        problems.append(
            Problem(
                "rempart.E002",
                "DEBUG is on: error pages show settings, SQL and local variables, personal data included.",
                "remove REMPART_DEBUG (or set it to 0).",
            )
        )
    return problems


def _demo_secret_values() -> set[str]:
    path = Path(settings.VAR_DIR) / "secrets.env"
    try:
        text = path.read_text()
    except OSError:
        return set()
    return {
        line.partition("=")[2].strip()
        for line in text.splitlines()
        if "=" in line and not line.startswith("#") and line.partition("=")[2].strip()
    }


def _secrets() -> list[Problem]:
    problems = []
    demo_values = _demo_secret_values()
    for env_name in SECRET_NAMES:
        value = getattr(settings, SECRET_SETTINGS.get(env_name, env_name), None)
        from_env = os.environ.get(env_name)
        if not from_env or from_env != value:
            problems.append(
                Problem(
                    "rempart.E003",
                    f"{env_name} does not come from the environment (it was read from var/secrets.env, the "
                    "demo's generated secrets).",
                    f"set {env_name} in /etc/rempart/rempart.env, from your secret store.",
                )
            )
        elif value in demo_values:
            problems.append(
                Problem(
                    "rempart.E004",
                    f"{env_name} is the same value as the demo's generated var/secrets.env.",
                    f"generate a new {env_name} (docs/deployment.md, key management) and remove var/secrets.env.",
                )
            )
    return problems


def _hosts_and_https() -> list[Problem]:
    problems = []
    if not settings.ALLOWED_HOSTS or "*" in settings.ALLOWED_HOSTS:
        problems.append(
            Problem(
                "rempart.E005",
                "ALLOWED_HOSTS is empty or '*': any Host header is accepted (poisoned links in emails).",
                "set REMPART_ALLOWED_HOSTS to the site's names, comma-separated.",
            )
        )
    elif set(settings.ALLOWED_HOSTS) <= {"localhost", "127.0.0.1", "[::1]"}:
        problems.append(
            Problem(
                "rempart.W006",
                "ALLOWED_HOSTS names only this machine: requests through the load balancer get 400.",
                "set REMPART_ALLOWED_HOSTS to the site's public name(s).",
            )
        )
    insecure = [
        name
        for name, value in (
            ("SESSION_COOKIE_SECURE", settings.SESSION_COOKIE_SECURE),
            ("CSRF_COOKIE_SECURE", settings.CSRF_COOKIE_SECURE),
            ("SECURE_SSL_REDIRECT", settings.SECURE_SSL_REDIRECT),
        )
        if not value
    ]
    if settings.SECURE_HSTS_SECONDS < 31536000:
        insecure.append("SECURE_HSTS_SECONDS (under one year)")
    if insecure:
        problems.append(
            Problem(
                "rempart.E007",
                f"HTTPS is not enforced: {', '.join(insecure)} off.",
                "leave REMPART_SECURE_COOKIES and REMPART_SSL_REDIRECT unset with REMPART_ENV=production.",
            )
        )
    if not settings.REMPART_BASE_URL.startswith("https://"):
        problems.append(
            Problem(
                "rempart.E008",
                "REMPART_BASE_URL is not an https:// address: invitation and notice links would be sent in clear.",
                "set REMPART_BASE_URL=https://<the site's name>.",
            )
        )
    if not settings.REMPART_TRUSTED_PROXY_COUNT:
        problems.append(
            Problem(
                "rempart.W009",
                "REMPART_TRUSTED_PROXY_COUNT is 0: behind a load balancer every request seems to come from it "
                "(throttles, surveillance by address and the ledger's addresses would all see one address), and "
                "the X-Forwarded-Proto header is not trusted.",
                "set REMPART_TRUSTED_PROXY_COUNT to the number of proxies in front of gunicorn (usually 1).",
            )
        )
    return problems


def _database() -> list[Problem]:
    vendor = database_vendor()
    if vendor != "postgresql":
        return [
            Problem(
                "rempart.E010",
                f"the database is {vendor}, not PostgreSQL: one machine, no partitioned ledger, no replica, "
                "no role separation.",
                "set DATABASE_URL=postgres://rempart_app:…@primary/rempart (deploy/postgres/roles.sql).",
            )
        ]
    try:
        state = database_state()
    except DatabaseError as exc:
        return [
            Problem(
                "rempart.E011",
                f"the database does not answer ({type(exc).__name__}).",
                "check DATABASE_URL and that PostgreSQL accepts this host.",
            )
        ]
    problems = []
    if state["pending"]:
        problems.append(
            Problem(
                "rempart.E012",
                f"{state['pending']} migration(s) not applied.",
                "run the release step: systemctl start rempart-migrate (rempart migrate as the owner role).",
            )
        )
    if state["superuser"] or state["owner"] or state["can_change_ledger"]:
        who = "a superuser" if state["superuser"] else "the ledger's owner" if state["owner"] else "a role"
        problems.append(
            Problem(
                "rempart.E013",
                f"the application connects as {who} that may UPDATE, DELETE or TRUNCATE the disclosure ledger "
                "(or switch its triggers off).",
                "connect as the app role of deploy/postgres/roles.sql; keep the owner for rempart-migrate.",
            )
        )
    return problems


def _redis() -> list[Problem]:
    problems = []
    if settings.REMPART_SURVEILLANCE_STORE != "redis":
        problems.append(
            Problem(
                "rempart.E014",
                "surveillance counters are kept in the database (REMPART_SURVEILLANCE_STORE="
                f"{settings.REMPART_SURVEILLANCE_STORE}): a write on every check, on the primary.",
                "set REMPART_SURVEILLANCE_STORE=redis and REMPART_REDIS_URL (docs/redis.md).",
            )
        )
    if not settings.REDIS_URL:
        problems.append(
            Problem(
                "rempart.W015",
                "no REMPART_REDIS_URL: the cache (login rate limits) lives in a database table.",
                "set REMPART_REDIS_URL=redis://…/0 (docs/redis.md).",
            )
        )
    from rempart.ops.health import redis_urls

    for name, url in redis_urls().items():
        error = redis_problem(url)
        if error:
            problems.append(
                Problem(
                    "rempart.E016",
                    f"Redis for {name.removeprefix('redis_')} does not answer ({error}).",
                    "start Redis or correct its URL; check the firewall and the password.",
                )
            )
    return problems


def _jobs() -> list[Problem]:
    backend = settings.TASKS.get("default", {}).get("BACKEND", "") if hasattr(settings, "TASKS") else ""
    if not backend or backend in NOT_A_QUEUE:
        return [
            Problem(
                "rempart.E017",
                "background jobs are not queued (the immediate or dummy task backend): long work would run inside "
                "requests, or not at all.",
                "set REMPART_TASKS_BACKEND=rq and REMPART_RQ_URL (or database), and run rempart-worker.",
            )
        ]
    problems = []
    if getattr(settings, "REMPART_JOBS_EAGER", False):
        problems.append(
            Problem(
                "rempart.E027",
                "REMPART_JOBS_EAGER is on: every job runs inside the web process that queued it (browser tests only).",
                "remove REMPART_JOBS_EAGER.",
            )
        )
    if "rq" not in backend.lower():
        problems.append(
            Problem(
                "rempart.W018",
                "jobs are queued in the database: fine for one small site, but every worker polls the primary.",
                "set REMPART_TASKS_BACKEND=rq with a Redis for the queue (REMPART_RQ_URL).",
            )
        )
    try:
        workers = live_workers()
    except (ImportError, AttributeError):
        return [
            *problems,
            Problem(
                "rempart.E019",
                "jobs app unavailable: cannot tell whether any worker runs (rempart.jobs.stats.live_workers).",
                "install a release with the jobs app (rempart.jobs).",
            ),
        ]
    except DatabaseError as exc:
        return [
            *problems,
            Problem(
                "rempart.E019", f"worker heartbeats unreadable ({type(exc).__name__}).", "check the database."
            ),
        ]
    if not workers:
        problems.append(
            Problem(
                "rempart.E020",
                f"no job worker seen in the last {WORKER_MAX_AGE_SECONDS} s: imports, notices and payment runs "
                "would wait forever.",
                "systemctl enable --now rempart-worker (and rempart-scheduler).",
            )
        )
    return problems


def _email_and_money() -> list[Problem]:
    problems = []
    if settings.EMAIL_BACKEND in CONSOLE_LIKE_EMAIL:
        problems.append(
            Problem(
                "rempart.E021",
                "emails (invitation links, new-device and IBAN-change notices) are written to the console or "
                "files, not sent.",
                "set REMPART_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and REMPART_EMAIL_HOST.",
            )
        )
    if "rempart.invalid" in settings.DEFAULT_FROM_EMAIL:
        problems.append(
            Problem(
                "rempart.W022",
                "emails are sent from the placeholder address no-reply@rempart.invalid.",
                "set REMPART_FROM_EMAIL to an address of your domain.",
            )
        )
    if settings.REMPART_PAYMENTS_DEBTOR["iban"].replace(" ", "") == DEMO_DEBTOR_IBAN:
        problems.append(
            Problem(
                "rempart.E023",
                "payment runs debit the demo's synthetic IBAN.",
                "set REMPART_PAYMENTS_DEBTOR_NAME, REMPART_PAYMENTS_DEBTOR_IBAN and REMPART_PAYMENTS_DEBTOR_BIC.",
            )
        )
    if settings.REMPART_BILLING_CREDITOR_ID == DEMO_CREDITOR_ID:
        problems.append(
            Problem(
                "rempart.E024",
                "insurer direct debits carry the demo's SEPA creditor identifier.",
                "set REMPART_BILLING_CREDITOR_ID to the operator's own.",
            )
        )
    return problems


def _metrics() -> list[Problem]:
    token = getattr(settings, "REMPART_METRICS_TOKEN", "")
    nets = getattr(settings, "REMPART_METRICS_ALLOW_NETS", [])
    problems = []
    if not token and not nets:
        problems.append(
            Problem(
                "rempart.W025",
                "/metrics answers nobody: no REMPART_METRICS_TOKEN and no REMPART_METRICS_ALLOW_NETS.",
                "set REMPART_METRICS_TOKEN (32+ random characters) or the scrapers' networks.",
            )
        )
    try:
        from rempart.ops.metrics import settings_problems
    except ImportError:
        return problems
    problems += [
        Problem("rempart.E026", f"metrics settings: {text}.", "correct it in /etc/rempart/rempart.env.")
        for text in settings_problems()
    ]
    return problems


REMPART_CHECKS = (
    _environment,
    _secrets,
    _hosts_and_https,
    _database,
    _redis,
    _jobs,
    _email_and_money,
    _metrics,
)


# --- Django's


def django_problems() -> tuple[list[Problem], list[dict]]:
    """Django's ``check --deploy`` at warning level and above, minus the accepted ids (returned apart)."""
    problems, accepted = [], []
    for message in django_checks.run_checks(include_deployment_checks=True):
        if message.level < django_checks.WARNING or message.is_silenced():
            continue
        if message.id in ACCEPTED_DJANGO_IDS:
            accepted.append({"id": message.id, "reason": ACCEPTED_DJANGO_IDS[message.id]})
            continue
        text = str(message.msg).strip().replace("\n", " ")
        hint = message.hint or DJANGO_FIXES.get(message.id) or "see Django's deployment checklist."
        hint = str(hint).strip().replace("\n", " ")
        problems.append(Problem(message.id or "django", text, hint))
    return problems, accepted


def run() -> dict:
    """Every check; ``ok`` only when there is no problem at all."""
    problems, accepted = django_problems()
    for check in REMPART_CHECKS:
        problems += check()
    return {"ok": not problems, "problems": problems, "accepted": accepted}
