"""Settings from the environment, with safe demo defaults (SQLite, generated local secrets)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from rempart.lib.local_secrets import load_secrets

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


REMPART_ENV = os.environ.get("REMPART_ENV", "demo")  # "demo" or "production"
PRODUCTION = REMPART_ENV == "production"
VAR_DIR = Path(os.environ.get("REMPART_VAR_DIR", BASE_DIR / "var"))

_secrets = load_secrets(VAR_DIR, production=PRODUCTION)
SECRET_KEY = _secrets["REMPART_SECRET_KEY"]
REMPART_DATA_KEYS = _secrets["REMPART_DATA_KEYS"]
REMPART_BLIND_INDEX_KEY = _secrets["REMPART_BLIND_INDEX_KEY"]
# Ed25519 private key (base64 of 32 bytes) that signs the ledger's published anchors (rempart.ledger.anchors).
REMPART_LEDGER_SIGNING_KEY = _secrets["REMPART_LEDGER_SIGNING_KEY"]
REMPART_DATA_KEY_ID = os.environ.get("REMPART_DATA_KEY_ID")

DEBUG = env_bool("REMPART_DEBUG", False)
ALLOWED_HOSTS = [
    h for h in os.environ.get("REMPART_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h
]

INSTALLED_APPS = [
    "rempart.accounts.admin_config.RempartAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",  # Pro Santé Connect only (rempart/psc)
    "allauth.usersessions",
    "ninja",
    "rempart.registry",
    "rempart.accounts",
    "rempart.psc",
    "rempart.ledger",
    "rempart.rights",
    "rempart.incidents",
    "rempart.surveillance",
    "rempart.authorizations",
    "rempart.accounting",
    "rempart.claims",
    "rempart.payments",
    "rempart.billing",
    "rempart.jobs",
    "rempart.ops",
    "rempart.fhir",  # FHIR R4 next to the JSON API (docs/fhir.md)
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # first: every response gets its X-Request-ID and is timed; the probes and /metrics are answered here
    "rempart.ops.middleware.RequestObservationMiddleware",
    "rempart.api_middleware.ApiJsonErrorsMiddleware",  # first: every API error is JSON, whoever made it
    "django.middleware.security.SecurityMiddleware",
    "rempart.accounts.middleware.SecurityHeadersMiddleware",
    "rempart.psc.middleware.PscFormActionMiddleware",  # after it: PSC's origin in form-action on its pages
    "rempart.accounts.middleware.ApiBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "rempart.accounts.middleware.SessionLifetimeMiddleware",
    "rempart.accounts.middleware.SessionBindingMiddleware",
    "rempart.accounts.middleware.RequireSecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rempart.urls"
WSGI_APPLICATION = "rempart.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "rempart" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]


def database_from_env() -> dict:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'rempart.sqlite3'}"
    # Persistent connections on PostgreSQL, each checked before a request reuses it: after a server restart a
    # stale connection is replaced instead of failing the first request that meets it (bench/soak.py).
    persistent = url.startswith("postgres")
    config = dj_database_url.parse(url, conn_max_age=60 if persistent else 0, conn_health_checks=persistent)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        }
        # One file per test run, so concurrent runs (developers, CI, helpers) never share a test database.
        config["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
    elif persistent and os.environ.get("REMPART_DB_PREPARED_STATEMENTS", "1") != "0":
        # Django turns psycopg's prepared statements off (for transaction-mode poolers). The hot paths
        # (rempart.lib.hot_sql) ask for them by name: parsed and planned once per connection instead of at every
        # call (0.2 to 0.7 ms of PostgreSQL's CPU per statement on the 2-CPU VM). The threshold is out of reach,
        # so nothing else is prepared behind the ORM's back. REMPART_DB_PREPARED_STATEMENTS=0 behind a pooler in
        # transaction mode that does not track prepared statements (docs/deployment.md).
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "prepare_threshold": 2**31 - 1}
    return config


DATABASES = {"default": database_from_env()}

# A PostgreSQL streaming replica for reads that may lag (docs/replica.md); without it, one database as before.
REMPART_REPLICA_CHECK_SECONDS = float(os.environ.get("REMPART_REPLICA_CHECK_SECONDS", "5"))
REMPART_REPLICA_MAX_LAG_SECONDS = float(os.environ.get("REMPART_REPLICA_MAX_LAG_SECONDS", "30"))
if os.environ.get("REMPART_REPLICA_URL"):
    _replica = dj_database_url.parse(
        os.environ["REMPART_REPLICA_URL"],
        conn_max_age=DATABASES["default"]["CONN_MAX_AGE"],
        conn_health_checks=DATABASES["default"]["CONN_HEALTH_CHECKS"],
    )
    if _replica["ENGINE"] != DATABASES["default"]["ENGINE"]:
        raise ImproperlyConfigured("REMPART_REPLICA_URL must use the same database engine as DATABASE_URL")
    _replica["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **_replica.get("OPTIONS", {})}
    if _replica["ENGINE"] == "django.db.backends.postgresql":
        _replica["OPTIONS"].setdefault("connect_timeout", 3)  # a replica that went away must not hang a page
    # Tests read the primary's test database through the replica (physical replication brings it there).
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["rempart.lib.db_routing.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every server process (allauth rate limits); login throttles and TOTP replay marks live in the database.
REDIS_URL = os.environ.get("REMPART_REDIS_URL")
# REMPART_REDIS_CLUSTER=1: REMPART_REDIS_URL and REMPART_SURVEILLANCE_REDIS_URL name a node of a Redis Cluster
# (docs/redis.md). RQ cannot use a cluster: its queue then needs a plain Redis of its own (REMPART_RQ_URL).
REMPART_REDIS_CLUSTER = env_bool("REMPART_REDIS_CLUSTER", False)
if (
    REMPART_REDIS_CLUSTER
    and os.environ.get("REMPART_TASKS_BACKEND") == "rq"
    and not os.environ.get("REMPART_RQ_URL")
):
    raise ImproperlyConfigured(
        "REMPART_REDIS_CLUSTER=1 with RQ needs REMPART_RQ_URL: a plain Redis, not the cluster"
    )
_REDIS_CACHE = (
    "rempart.lib.redis_cache.RedisClusterCache"
    if REMPART_REDIS_CLUSTER
    else "django.core.cache.backends.redis.RedisCache"
)
CACHES = {
    "default": (
        {"BACKEND": _REDIS_CACHE, "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "rempart_cache"}
    )
}

# --- Accounts: people log in with email + password, then a second factor they cannot skip.
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["rempart.accounts.backends.AuthenticationBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
# rempart.accounts' adapter, with the second-factor stage that knows what a Pro Santé Connect login proved
ACCOUNT_ADAPTER = "rempart.psc.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"  # the invitation link proved the address
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Rempart] "  # not the request's host (rempart.accounts.adapters.rempart_site)
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_RATE_LIMITS = {"login_failed": "30/m/ip,10/5m/key", "reset_password": "5/m/ip,3/h/key"}
MFA_ADAPTER = "rempart.accounts.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["webauthn", "totp", "recovery_codes"]
MFA_WEBAUTHN_USER_VERIFICATION = "required"
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not PRODUCTION  # http://localhost in the demo and tests
MFA_PASSKEY_LOGIN_ENABLED = False  # password first, then the passkey as second factor
MFA_RECOVERY_CODES_SHOW_ONCE = True
MFA_REAUTHENTICATION_REQUIRED = (
    False  # replaced by our stricter step-up (a fresh second factor, not a password)
)
MFA_TOTP_TOLERANCE = 1
MFA_TOTP_ISSUER = "Rempart"
MFA_FORMS = {
    "authenticate": "rempart.accounts.mfa_forms.AuthenticateForm",
    "reauthenticate": "rempart.accounts.mfa_forms.ReauthenticateForm",
}
USERSESSIONS_TRACK_ACTIVITY = True

# --- Pro Santé Connect (rempart/psc, docs/security.md §2.4): professionals log in with their CPS card or e-CPS
# through the ANS's OpenID Connect provider. Off (no button, its addresses answer 404) unless the issuer, the
# client id and the secret are all set.
REMPART_PSC = {
    "issuer": os.environ.get("REMPART_PSC_ISSUER", ""),
    # PSC publishes its metadata at …/.well-known/wallet-openid-configuration; default: the issuer's standard one.
    "discovery_url": os.environ.get("REMPART_PSC_DISCOVERY_URL", ""),
    "client_id": os.environ.get("REMPART_PSC_CLIENT_ID", ""),
    "client_secret": os.environ.get("REMPART_PSC_CLIENT_SECRET", ""),
    # The ID token's acr values that stand for the second factor (CPS card or e-CPS); PSC's is eidas1.
    "allowed_acr": [
        a.strip() for a in os.environ.get("REMPART_PSC_ALLOWED_ACR", "eidas1").split(",") if a.strip()
    ],
    "scope": os.environ.get("REMPART_PSC_SCOPE", "openid scope_all").split(),
    # A PSC authentication older than this (single sign-on from another service) is asked again.
    "login_max_age": int(os.environ.get("REMPART_PSC_LOGIN_MAX_AGE_SECONDS", "600")),
    # The origin of PSC's authorization page when it is not the issuer's (PSC: https://wallet.esw.esante.gouv.fr).
    "authorization_origin": os.environ.get("REMPART_PSC_AUTHORIZATION_ORIGIN", ""),
}
if PRODUCTION and REMPART_PSC["issuer"].startswith("http://"):
    raise ImproperlyConfigured("REMPART_PSC_ISSUER must be an https:// address in production")
SOCIALACCOUNT_ADAPTER = "rempart.psc.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = False  # a PSC identity logs in to an existing member, never creates one
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never linked by an email address
SOCIALACCOUNT_STORE_TOKENS = False

REMPART_BASE_URL = os.environ.get("REMPART_BASE_URL", "http://127.0.0.1:8000")
REMPART_TRUSTED_PROXY_COUNT = int(os.environ.get("REMPART_TRUSTED_PROXY_COUNT", "0"))
ALLAUTH_TRUSTED_PROXY_COUNT = (
    REMPART_TRUSTED_PROXY_COUNT  # allauth's rate limits and session list see the same address
)
if REMPART_TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
REMPART_INVITATION_HOURS = int(os.environ.get("REMPART_INVITATION_HOURS", "72"))
REMPART_ENROLMENT_WINDOW_SECONDS = int(os.environ.get("REMPART_ENROLMENT_WINDOW_SECONDS", "1800"))
REMPART_STEP_UP_SECONDS = int(os.environ.get("REMPART_STEP_UP_SECONDS", "300"))
REMPART_SESSION_MAX_SECONDS = int(os.environ.get("REMPART_SESSION_MAX_HOURS", "10")) * 3600
REMPART_IDLE_TIMEOUT_MINUTES = {
    "professional": int(os.environ.get("REMPART_IDLE_MINUTES_PROFESSIONAL", "15")),
    "insurer": int(os.environ.get("REMPART_IDLE_MINUTES_INSURER", "30")),
    "operator": int(os.environ.get("REMPART_IDLE_MINUTES_OPERATOR", "15")),
}
REMPART_TOKEN_DEFAULT_DAYS = 365
REMPART_TOKEN_MAX_DAYS = 730
REMPART_LOGIN_THROTTLE = {
    # free failures, then delays doubling from base to max; locked for lock_seconds after lock_after failures
    "account": {"free_failures": 3, "base_delay_seconds": 2, "max_delay_seconds": 300, "lock_after": 10,
                "lock_seconds": 3600, "forget_after_seconds": 86400},
    "mfa": {"free_failures": 3, "base_delay_seconds": 5, "max_delay_seconds": 900, "lock_after": 10,
            "lock_seconds": 3600, "forget_after_seconds": 86400},
    "address": {"free_failures": 10, "base_delay_seconds": 1, "max_delay_seconds": 600, "lock_after": 100,
                "lock_seconds": 3600, "forget_after_seconds": 3600},
}  # fmt: skip
# "Someone knows your password" (rempart/accounts/password_notice.py): once per device (or address) per period,
# and at most max_per_day emails per person.
REMPART_PASSWORD_NOTICE = {"per_device_seconds": 3600, "max_per_day": 5}
REMPART_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
SESSION_COOKIE_AGE = REMPART_SESSION_MAX_SECONDS

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "rempart" / "locale"]
FORMAT_MODULE_PATH = ["rempart.formats"]  # unambiguous dates in both languages: "1 déc. 2026", "1 Dec 2026"
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "rempart" / "static"]
STATIC_ROOT = VAR_DIR / "static"

# Cookies and transport: secure by default; the demo on http://localhost relaxes only the Secure flag.
SESSION_COOKIE_SECURE = env_bool("REMPART_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "rempart.error_pages.csrf_failure"  # the site's 403 page, not Django's English one
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("REMPART_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = 31536000 if PRODUCTION else 0

EMAIL_BACKEND = os.environ.get("REMPART_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("REMPART_FROM_EMAIL", "Rempart <no-reply@rempart.invalid>")
EMAIL_HOST = os.environ.get("REMPART_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("REMPART_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("REMPART_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("REMPART_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("REMPART_EMAIL_TLS", False)
# Surveillance (docs/surveillance.md): counters in the database by default, in Redis when asked.
REMPART_SURVEILLANCE_STORE = os.environ.get("REMPART_SURVEILLANCE_STORE", "database")  # database | redis
REMPART_SURVEILLANCE_REDIS_URL = os.environ.get("REMPART_SURVEILLANCE_REDIS_URL") or REDIS_URL
REMPART_SURVEILLANCE_ENABLED = env_bool("REMPART_SURVEILLANCE_ENABLED", True)
REMPART_SURVEILLANCE = {}  # overrides of rempart.surveillance.policy.DEFAULTS, e.g. {"portal_checks_per_minute": 8}

# Incident documents (notices, lists of affected people): a private directory, served only through views.
REMPART_INCIDENT_DIR = os.environ.get("REMPART_INCIDENT_DIR", str(VAR_DIR / "incidents"))
# Signed anchors of the ledger's chains: one JSON file each, never overwritten. Put it outside the database's
# reach (another mount, write-once storage): it is what proves that no ledger row was cut off.
REMPART_LEDGER_ANCHOR_DIR = os.environ.get("REMPART_LEDGER_ANCHOR_DIR", str(VAR_DIR / "ledger-anchors"))
# Closed months of the ledger, moved out of the database as Parquet files with a signed manifest
# (docs/ledger-archive.md); and how long after a month ends it may be archived (late rows, clock skew).
REMPART_LEDGER_ARCHIVE_DIR = os.environ.get("REMPART_LEDGER_ARCHIVE_DIR", str(VAR_DIR / "ledger-archive"))
REMPART_LEDGER_ARCHIVE_GRACE_DAYS = int(os.environ.get("REMPART_LEDGER_ARCHIVE_GRACE_DAYS", "7"))
EMAIL_FILE_PATH = os.environ.get("REMPART_EMAIL_DIR", str(VAR_DIR / "mail"))

# Registry import rules.
REMPART_FULL_IMPORT_MAX_END_SHARE = float(os.environ.get("REMPART_FULL_IMPORT_MAX_END_SHARE", "0.10"))
REMPART_RIGHTS_MAX_PAST_DAYS = int(os.environ.get("REMPART_RIGHTS_MAX_PAST_DAYS", "30"))
# A running import's heartbeat (PostgreSQL), and how old the last one may be before a run of another host
# is shown as interrupted (rempart/registry/import_runs.py).
REMPART_IMPORT_HEARTBEAT_SECONDS = int(os.environ.get("REMPART_IMPORT_HEARTBEAT_SECONDS", "30"))
REMPART_IMPORT_STALE_SECONDS = int(os.environ.get("REMPART_IMPORT_STALE_SECONDS", "600"))
REMPART_API_MAX_BODY_BYTES = int(os.environ.get("REMPART_API_MAX_BODY_BYTES", "16384"))

# Payments (docs/payments.md). The debtor is the operator's own account, from which transfers leave; the
# demo's is a synthetic French IBAN. A new professional IBAN is not paid before its hold ends.
REMPART_PAYMENTS_DEBTOR = {
    "name": os.environ.get("REMPART_PAYMENTS_DEBTOR_NAME", "Rempart Tiers Payant"),
    "iban": os.environ.get("REMPART_PAYMENTS_DEBTOR_IBAN", "FR7630006000011234567890189"),
    "bic": os.environ.get("REMPART_PAYMENTS_DEBTOR_BIC", "AGRIFRPPXXX"),
}
REMPART_IBAN_HOLD_DAYS = int(os.environ.get("REMPART_IBAN_HOLD_DAYS", "5"))
# Insurer billing (docs/billing.md): the operator's SEPA creditor identifier for direct debits (pain.008), where
# detail files are kept, and the amount above which a receipt entered by hand needs a second person.
REMPART_BILLING_CREDITOR_ID = os.environ.get("REMPART_BILLING_CREDITOR_ID", "FR72ZZZ123456")
REMPART_BILLING_DIR = os.environ.get("REMPART_BILLING_DIR", str(VAR_DIR / "billing"))
# PostgreSQL work_mem for the billing batch transactions (statements, detail files): a month's joins and sorts
# in memory instead of spilled to disk. Set for those transactions only (SET LOCAL), never for the web's.
REMPART_BILLING_WORK_MEM = os.environ.get("REMPART_BILLING_WORK_MEM", "256MB")
REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS = int(
    os.environ.get("REMPART_BILLING_MANUAL_RECEIPT_FOUR_EYES_CENTS", "1000000")
)
# Largest bank return file (pain.002, camt.054) imported, console or command (rempart/payments/bank_xml.py).
REMPART_BANK_FILE_MAX_BYTES = int(os.environ.get("REMPART_BANK_FILE_MAX_BYTES", str(50 * 1024 * 1024)))
# Who at the operator is emailed at once when an IBAN change is asked for or cancelled (comma-separated);
# empty: the operator's security, admin and treasury staff (rempart/registry/bank_hold.py).
REMPART_OPERATOR_ALERT_EMAIL = [
    a.strip() for a in os.environ.get("REMPART_OPERATOR_ALERT_EMAIL", "").split(",") if a.strip()
]
# Alerts sent on (rempart/surveillance/forwarding.py, docs/configuration.md): an email to the security team
# (comma-separated; empty: none) from a gravity up, and a JSON event (docs/formats/alert-event-v1.md) to a
# SIEM by a signed HTTPS webhook and/or an RFC 5424 syslog line (udp://host:514 or tcp://host:6514).
REMPART_SECURITY_ALERT_EMAIL = [
    a.strip() for a in os.environ.get("REMPART_SECURITY_ALERT_EMAIL", "").split(",") if a.strip()
]
REMPART_ALERT_EMAIL_MIN_SEVERITY = os.environ.get("REMPART_ALERT_EMAIL_MIN_SEVERITY", "warning")
REMPART_ALERT_WEBHOOK_URL = os.environ.get("REMPART_ALERT_WEBHOOK_URL", "")
REMPART_ALERT_WEBHOOK_SECRET = os.environ.get("REMPART_ALERT_WEBHOOK_SECRET", "")
REMPART_ALERT_WEBHOOK_TIMEOUT = float(os.environ.get("REMPART_ALERT_WEBHOOK_TIMEOUT", "5"))
REMPART_ALERT_WEBHOOK_ATTEMPTS = int(os.environ.get("REMPART_ALERT_WEBHOOK_ATTEMPTS", "3"))  # at most 5
REMPART_ALERT_WEBHOOK_BACKOFF = float(
    os.environ.get("REMPART_ALERT_WEBHOOK_BACKOFF", "2")
)  # × attempt, seconds
REMPART_ALERT_SYSLOG = os.environ.get("REMPART_ALERT_SYSLOG", "")
REMPART_ALERT_FORWARD_MIN_SEVERITY = os.environ.get("REMPART_ALERT_FORWARD_MIN_SEVERITY", "info")
REMPART_API_MAX_CLAIM_BYTES = int(os.environ.get("REMPART_API_MAX_CLAIM_BYTES", "65536"))  # one invoice
REMPART_API_MAX_LOT_BYTES = int(os.environ.get("REMPART_API_MAX_LOT_BYTES", str(200 * 1024 * 1024)))  # a lot
REMPART_CLAIMS_LOT_MAX_INVOICES = int(os.environ.get("REMPART_CLAIMS_LOT_MAX_INVOICES", "100000"))
# Larger lots are adjudicated by a worker; the API answers 202 with a status URL (docs/claims.md).
REMPART_CLAIMS_INLINE_LOT_MAX = int(os.environ.get("REMPART_CLAIMS_INLINE_LOT_MAX", "500"))
REMPART_MAX_UPLOAD_MB = int(
    os.environ.get("REMPART_MAX_UPLOAD_MB", "200")
)  # bigger files: rempart import-rights

# --- Background jobs (rempart/jobs, docs/jobs.md): the database queue by default (``rempart worker`` runs it,
# on SQLite and PostgreSQL); in production RQ on a plain Redis (REMPART_TASKS_BACKEND=rq, REMPART_RQ_URL).
REMPART_TASKS_BACKEND = os.environ.get("REMPART_TASKS_BACKEND", "database")  # database | rq | immediate
REMPART_RQ_URL = os.environ.get("REMPART_RQ_URL") or REDIS_URL
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "rq": "django_tasks_rq.RQBackend",
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",  # tests and one-off scripts only
}
if REMPART_TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured("REMPART_TASKS_BACKEND must be database, rq or immediate")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[REMPART_TASKS_BACKEND], "QUEUES": ["default"]}}
if REMPART_TASKS_BACKEND == "rq":
    if not REMPART_RQ_URL:
        raise ImproperlyConfigured("REMPART_TASKS_BACKEND=rq needs REMPART_RQ_URL (or REMPART_REDIS_URL)")
    INSTALLED_APPS.append("django_rq")
    RQ_QUEUES = {"default": {"URL": REMPART_RQ_URL, "DEFAULT_TIMEOUT": 6 * 3600}}
# Jobs run in the process that enqueued them, right after its commit (the browser tests; never production).
REMPART_JOBS_EAGER = env_bool("REMPART_JOBS_EAGER", False)
REMPART_JOBS_DIR = os.environ.get("REMPART_JOBS_DIR", str(VAR_DIR / "jobs"))
REMPART_JOB_HEARTBEAT_SECONDS = float(os.environ.get("REMPART_JOB_HEARTBEAT_SECONDS", "5"))
REMPART_JOB_STALE_SECONDS = int(os.environ.get("REMPART_JOB_STALE_SECONDS", "120"))
REMPART_JOB_REQUEUE_SECONDS = int(os.environ.get("REMPART_JOB_REQUEUE_SECONDS", "600"))
REMPART_JOB_RETRY_SECONDS = int(os.environ.get("REMPART_JOB_RETRY_SECONDS", "10"))
REMPART_JOBS_EXTRA_MODULES = [
    m.strip() for m in os.environ.get("REMPART_JOBS_EXTRA_MODULES", "").split(",") if m.strip()
]
REMPART_SCHEDULE_DISABLED = [
    n.strip() for n in os.environ.get("REMPART_SCHEDULE_DISABLED", "").split(",") if n.strip()
]

# Observability (docs/observability.md): /metrics for a bearer token or from these networks (comma-separated
# CIDRs), else a 404; logs as JSON lines (production) or text (demo, tests), each with its request id.
REMPART_METRICS_TOKEN = os.environ.get("REMPART_METRICS_TOKEN", "")
REMPART_METRICS_ALLOW_NETS = [
    n.strip() for n in os.environ.get("REMPART_METRICS_ALLOW_NETS", "").split(",") if n.strip()
]
# host:port where `rempart worker` serves its own /metrics (same token and networks); empty: not served.
REMPART_WORKER_METRICS_BIND = os.environ.get("REMPART_WORKER_METRICS_BIND", "").strip()
# A lagging or unreachable read replica makes /readyz fail (default: it is shown, skipped, and not a failure).
REMPART_READYZ_REQUIRE_REPLICA = env_bool("REMPART_READYZ_REQUIRE_REPLICA", False)
REMPART_LOG_FORMAT = os.environ.get("REMPART_LOG_FORMAT", "json" if PRODUCTION else "text")
if REMPART_LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("REMPART_LOG_FORMAT must be json or text")

# Every log record is redacted when it is created (rempart.lib.redact.install, at start-up), whatever
# logger or handler it goes through; Django's own loggers are routed to the same filtered console.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "rempart.lib.redact.RedactingFilter"},
        "request_id": {"()": "rempart.ops.request_log.RequestIdFilter"},
    },
    "formatters": {
        "json": {"()": "rempart.ops.request_log.JsonFormatter"},
        "text": {"()": "rempart.ops.request_log.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact", "request_id"],
            "formatter": REMPART_LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("REMPART_LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
