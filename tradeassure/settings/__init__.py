"""Settings, read from the environment (see the README's configuration table).

The defaults are the newcomer's embedded profile: SQLite and a filesystem broker under var/, so
`make run` needs no server. Production sets DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and
DEBUG=false, and uses `tradeassure.settings.production` for the hardened extras.
"""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("TRADEASSURE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

_REQUIRED = object()


def secret(name: str, default: str | object = _REQUIRED) -> str:
    """A secret, exactly as the environment holds it.

    django-environ reads a value starting with "$" as a reference to another variable, so a
    random key such as "$x9…" would come back as some other (or no) value. Secrets are read
    from os.environ directly, without that interpolation.
    """
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is _REQUIRED:
        raise ImproperlyConfigured(f"Set the {name} environment variable")
    return str(default)


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = secret(
    "SECRET_KEY",
    default="dev-only-insecure-key-change-me-in-production-0123456789abcdefghijklmnop",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Tests and demos only: a file holding seconds added to the product's clock (clock.now), so the
# browser stories move every process's time (web, worker, beat) without editing rows. Refused by
# the production profile.
TA_CLOCK_OFFSET_FILE = env.str("TA_CLOCK_OFFSET_FILE", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "tradeassure.platform",  # app label "tradeassure"
    "accounts",
    "payments",
    "suppliers",
    "orders",
    "disputes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Under /api/ every error is problem+json (Django's 404, CSRF 403, 413, 414 included).
    "tradeassure.platform.api.middleware.ApiProblemMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads request.POST: file names keep their folder part for the upload check.
    "tradeassure.platform.multipart.FolderKeepingMultipartMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Pages (and forms' datetimes) in the logged-in user's own time zone.
    "accounts.middleware.UserTimeZoneMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tradeassure.urls"
# Under /api/ a CSRF failure is a problem+json 403; elsewhere Django's page.
CSRF_FAILURE_VIEW = "tradeassure.platform.api.errors.csrf_failure"
# Longer query strings get 414 from Django (problem+json under /api/); gunicorn runs with
# --limit-request-line=0 so its own HTML 414 never answers first.
MAX_QUERY_STRING_LENGTH = env.int("MAX_QUERY_STRING_LENGTH", default=8192)
WSGI_APPLICATION = "tradeassure.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tradeassure.platform.context_processors.navigation",
            ],
            # `{% deadline %}` and `{% moment %}` in every template: times in the viewer's zone.
            "builtins": ["tradeassure.platform.templatetags.moments"],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tradeassure.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file. A DEFERRED transaction that reads and then writes
    # cannot wait for the lock (SQLite refuses the upgrade at once with "database is locked"),
    # so every transaction takes the write lock at BEGIN and waits up to `timeout` seconds for
    # it; WAL lets readers go on while one writer holds it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out username before any password is checked.
AUTHENTICATION_BACKENDS = [
    "tradeassure.platform.security.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Public uploads (product images) live under MEDIA_ROOT. Private uploads (verification
# documents, dispute evidence, shipping documents) live under PRIVATE_MEDIA_ROOT, which has no
# URL: they are only ever served by views that check who is asking.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = secret("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="TradeAssure <no-reply@tradeassure.local>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # The throttles read the cache on every API request and let it through when the cache is
    # down (tradeassure.platform.api.throttling): fail within a second, not a TCP timeout.
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {"socket_connect_timeout": 1, "socket_timeout": 1}
    )

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu's default is "control" relative to the working directory: the checkout.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Tasks are thin and idempotent, so a task lost with a crashed worker is redelivered, not dropped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULER = "tradeassure.platform.beat:PatientDatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- REST API (owner: API helper) ----------------------------------------------------------
# The partner API at /api/v1/: API keys (Authorization: Bearer ta_…) or the browser session,
# cursor pagination, per-key and per-user throttling, problem+json errors (README "Partner API").
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so an anonymous request gets 401 with WWW-Authenticate rather than 403.
        "tradeassure.platform.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "tradeassure.platform.api.pagination.CursorPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tradeassure.platform.api.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [
        "tradeassure.platform.api.throttling.ApiKeyRateThrottle",
        "tradeassure.platform.api.throttling.UserRateThrottle",
        "tradeassure.platform.api.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env.str("API_THROTTLE_PER_KEY", default="600/min"),
        "user": env.str("API_THROTTLE_PER_USER", default="1200/min"),
        "anon": env.str("API_THROTTLE_ANONYMOUS", default="120/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "tradeassure.platform.api.schema.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "tradeassure.platform.api.errors.problem_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TradeAssure API",
    "DESCRIPTION": (
        "Protected orders held in escrow until the contract is met. Authenticate with "
        "`Authorization: Bearer <API key>` (create keys on the Developers page). Every POST needs "
        "an `Idempotency-Key` header. Errors are RFC 9457 `application/problem+json` with a "
        "stable `code`. Lists are cursor-paginated: follow `next`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a `status`; give each choice set a stable, readable schema name.
    "ENUM_NAME_OVERRIDES": {
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "WebhookDeliveryStatusEnum": "tradeassure.platform.models.WebhookDelivery.Status",
        "OrderStatusEnum": "orders.models.OrderStatus",
        "PartyEnum": "orders.models.Party",
        "PaymentMethodEnum": "payments.models.Payment.Method",
        "DisputeStatusEnum": "disputes.models.DisputeStatus",
        "DisputeTypeEnum": "disputes.models.DisputeType",
        "DisputePartyEnum": "disputes.models.DisputeParty",
        "RemedyEnum": "disputes.models.Remedy",
        "RequestableRemedyEnum": "disputes.api.serializers.REQUESTABLE_REMEDY_CHOICES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tradeassure.platform.api.schema.optional_multi_media_bodies",
    ],
}
# Partner webhooks: deliveries are fanned out from every domain event through the outbox.
OUTBOX_HANDLERS = {
    "webhook": "tradeassure.platform.webhooks.webhook_fan_out",
    # Sandbox provider events the broker could not take (payments/providers/sandbox.py).
    "sandbox_event": "payments.providers.sandbox.deliver_from_outbox",
}
OUTBOX_EVENT_CHANNELS = ["webhook"]
# How long a dispatcher's claim on a batch lasts before another may take the rows over (a crashed
# worker's rows wait this long); a batch running past half of it renews it.
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=300)
# The embedded profile lets webhooks reach localhost and plain http; production refuses both.
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=DEBUG)
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
# Partner webhook requests a delivery worker makes at once (threads; HTTP only, no database).
WEBHOOK_DELIVERY_CONCURRENCY = env.int("WEBHOOK_DELIVERY_CONCURRENCY", 8)
IDEMPOTENCY_KEY_TTL = timedelta(hours=env.int("IDEMPOTENCY_KEY_TTL_HOURS", 24))

# --- The product's rules: every timing and limit in one place, each overridable -------------
SUPPORTED_CURRENCIES = ["USD", "EUR", "GBP", "CNY", "HKD", "JPY", "AUD", "CAD", "SGD"]

TRADE_ASSURANCE = {
    # DESIGN.md §3 default timings.
    "SUPPLIER_CONFIRMATION_WINDOW": timedelta(days=env.int("TA_SUPPLIER_CONFIRMATION_DAYS", 30)),
    "INITIAL_PAYMENT_WINDOW": timedelta(days=env.int("TA_INITIAL_PAYMENT_DAYS", 60)),
    # The balance is due this long after the supplier requests it; the shipment deadline waits.
    "BALANCE_PAYMENT_WINDOW": timedelta(days=env.int("TA_BALANCE_PAYMENT_DAYS", 14)),
    "MAX_SHIPMENT_DEADLINE_AHEAD": timedelta(days=env.int("TA_MAX_SHIPMENT_DAYS_AHEAD", 180)),
    "RECEIPT_CONFIRMATION_WINDOW": timedelta(days=env.int("TA_RECEIPT_WINDOW_DAYS", 30)),
    "RECEIPT_EXTENSION": timedelta(days=env.int("TA_RECEIPT_EXTENSION_DAYS", 15)),
    "POST_DELIVERY_CLAIM_WINDOW": timedelta(days=env.int("TA_POST_DELIVERY_DAYS", 30)),
    "DISPUTE_SUPPLIER_RESPONSE": timedelta(days=env.int("TA_DISPUTE_RESPONSE_DAYS", 3)),
    "DISPUTE_BUYER_MAY_ESCALATE_AFTER": timedelta(days=env.int("TA_BUYER_ESCALATE_DAYS", 3)),
    "DISPUTE_AUTO_ESCALATION": timedelta(days=env.int("TA_AUTO_ESCALATION_DAYS", 7)),
    "MEDIATOR_PICKUP_WORKING_DAYS": env.int("TA_MEDIATOR_PICKUP_WORKING_DAYS", 2),
    # DESIGN.md §4 fees: the supplier pays a percentage plus a flat amount per released transaction.
    "FEE_RATE": Decimal(env.str("TA_FEE_RATE", "0.03")),
    "FEE_FLAT": {
        "USD": Decimal("1.00"),
        "EUR": Decimal("1.00"),
        "GBP": Decimal("1.00"),
        "CNY": Decimal("7.00"),
        "HKD": Decimal("8.00"),
        "JPY": Decimal("150"),
        "AUD": Decimal("1.50"),
        "CAD": Decimal("1.40"),
        "SGD": Decimal("1.35"),
    },
    # DESIGN.md §6 eligibility.
    "ELIGIBLE_COUNTRIES": env.list("TA_ELIGIBLE_COUNTRIES", default=["CN", "MY"]),
    # How many rows a deadline sweep handles per batch.
    "SWEEP_BATCH_SIZE": env.int("TA_SWEEP_BATCH_SIZE", 200),
    # How many due rows a set-based sweep claims and moves in one transaction (the post-delivery
    # sweep's releases too: they are posted for the whole batch at once).
    "SWEEP_SET_BATCH_SIZE": env.int("TA_SWEEP_SET_BATCH_SIZE", 1000),
    # Days before a deadline that acts by itself when the party who must act is reminded, once
    # each (tradeassure.platform.reminders): "3,1" is three days and one day before.
    "REMINDER_LEAD_DAYS": env.list("TA_REMINDER_LEAD_DAYS", cast=int, default=[3, 1]),
}

# --- Suppliers ----------------------------------------------------------------------------
# Trade Assurance limits, metrics and automatic suspension (README "Suppliers and Trade Assurance").
SUPPLIERS = {
    # Rolling window for the public metrics and the suspension checks.
    "METRICS_WINDOW_DAYS": env.int("TA_METRICS_WINDOW_DAYS", 180),
    # limit = min(CAP, FLOOR + FACTOR x completed protected volume, lifetime), in USD.
    "LIMIT_FLOOR_USD": Decimal(env.str("TA_LIMIT_FLOOR_USD", "10000")),
    "LIMIT_VOLUME_FACTOR": Decimal(env.str("TA_LIMIT_VOLUME_FACTOR", "0.5")),
    "LIMIT_CAP_USD": Decimal(env.str("TA_LIMIT_CAP_USD", "500000")),
    # Reference rates for limits and exposure only (USD per one unit); money never moves at these.
    "USD_REFERENCE_RATES": {
        "USD": Decimal("1"),
        "EUR": Decimal("1.08"),
        "GBP": Decimal("1.27"),
        "CNY": Decimal("0.138"),
        "HKD": Decimal("0.128"),
        "JPY": Decimal("0.0067"),
        "AUD": Decimal("0.65"),
        "CAD": Decimal("0.73"),
        "SGD": Decimal("0.74"),
    },
    # Automatic suspension: only once the supplier has this many orders in the window ...
    "SUSPENSION_MIN_ORDERS": env.int("TA_SUSPENSION_MIN_ORDERS", 5),
    # ... and then when any of these is crossed.
    "SUSPENSION_MIN_COMPLETION_RATE": Decimal(env.str("TA_SUSPENSION_MIN_COMPLETION", "0.80")),
    "SUSPENSION_MIN_ON_TIME_RATE": Decimal(env.str("TA_SUSPENSION_MIN_ON_TIME", "0.80")),
    "SUSPENSION_MAX_DISPUTE_RATE": Decimal(env.str("TA_SUSPENSION_MAX_DISPUTE_RATE", "0.20")),
    "SUSPENSION_MAX_DISPUTES_LOST": env.int("TA_SUSPENSION_MAX_DISPUTES_LOST", 3),
    "SUSPENSION_MIN_AVERAGE_RATING": Decimal(env.str("TA_SUSPENSION_MIN_RATING", "3.0")),
    "SUSPENSION_MIN_RATINGS": env.int("TA_SUSPENSION_MIN_RATINGS", 5),
    # After staff reinstate a supplier, automatic suspension pauses this long.
    "REINSTATEMENT_GRACE_DAYS": env.int("TA_REINSTATEMENT_GRACE_DAYS", 30),
}

# --- Payments -----------------------------------------------------------------------------
# The ledger and the payment provider (README "Money"). Fees live in TRADE_ASSURANCE above.
PAYMENT_PROVIDER = env.str("PAYMENT_PROVIDER", default="sandbox")
# Extra provider adapters by name (dotted path to a class implementing
# payments.providers.base.PaymentProvider); "sandbox" is built in.
PAYMENT_PROVIDER_ADAPTERS: dict[str, str] = {}
# The sandbox signs its webhooks with this (HMAC-SHA256); set your own outside a laptop.
SANDBOX_WEBHOOK_SECRET = secret(
    "SANDBOX_WEBHOOK_SECRET", default="sandbox-webhook-secret-dev-only-0123456789"
)
# Stripe (PAYMENT_PROVIDER=stripe; README "Stripe"). The publishable key and Stripe.js are
# loaded on the payment page only when Stripe is the provider. STRIPE_API_BASE points the SDK at
# another server (tests: a localstripe on a loopback port); empty means Stripe's own.
STRIPE_SECRET_KEY = secret("STRIPE_SECRET_KEY", default="")
STRIPE_PUBLISHABLE_KEY = secret("STRIPE_PUBLISHABLE_KEY", default="")
STRIPE_WEBHOOK_SECRET = secret("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="")
# The SDK retries network errors, 409 and 5xx this many times, with exponential backoff.
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=3)
# Who pays suppliers: "sandbox" (demo), or "manual" (staff transfer and record the reference).
PAYOUT_PROVIDER = env.str(
    "PAYOUT_PROVIDER", default="sandbox" if PAYMENT_PROVIDER == "sandbox" else "manual"
)
# Webhooks signed longer ago than this are refused (replay protection).
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", 300)
# Called as hook(payment=payment) in the capture's transaction (orders adds its hook here).
PAYMENT_CAPTURED_HOOKS: list[str] = []

# --- Orders -------------------------------------------------------------------------------
# A captured payment moves its order on (initial → in production, balance → ready to ship);
# money an order can no longer take is refunded by the hook (README "Orders").
PAYMENT_CAPTURED_HOOKS = [*PAYMENT_CAPTURED_HOOKS, "orders.services.order_payment_captured"]
# Called as hook(party=...) → Q on orders: more reasons an order "needs you" (disputes adds one).
ORDER_NEEDS_ACTION_HOOKS: list[str] = []

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Log-in protection, second factor, content security policy ---------------------------
# Brute force (django-axes): 5 wrong passwords for one account, or from one address, lock it
# for 15 minutes, on the site's login and the admin's alike; the email is compared
# case-insensitively, as users log in with it. A right password resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "tradeassure.platform.security.axes_username"
AXES_CLIENT_IP_CALLABLE = "tradeassure.platform.security.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Staff (everyone the admin lets in: mediators move money there) verify a TOTP device
# (django-otp) to use the admin. Enrol: `manage.py totp_device EMAIL` prints the otpauth:// URI.
OTP_TOTP_ISSUER = "TradeAssure"
# Site-wide CSP (django-csp): our own origin only, no inline script or style anywhere. A view
# that needs more adds it with `csp.decorators.csp_update`, which merges into this.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Security settings that are safe everywhere; production.py turns on the HTTPS-only ones.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Disputes -----------------------------------------------------------------------------
# Dispute timings live in TRADE_ASSURANCE above (DISPUTE_*, MEDIATOR_PICKUP_WORKING_DAYS).
# The buyer's inspection fee is captured into the order's escrow by this hook (README "Disputes").
PAYMENT_CAPTURED_HOOKS = [
    *PAYMENT_CAPTURED_HOOKS,
    "disputes.services.dispute_inspection_fee_captured",
]
# An open dispute waiting for one side (its proposal to answer) shows in that side's "Needs you".
ORDER_NEEDS_ACTION_HOOKS = [
    *ORDER_NEEDS_ACTION_HOOKS,
    "disputes.selectors.orders_waiting_in_dispute",
]
DISPUTES = {
    # The inspection fee the mediator's form suggests, per currency (the mediator may change it).
    "INSPECTION_FEE": {
        "USD": Decimal("300.00"),
        "EUR": Decimal("280.00"),
        "GBP": Decimal("240.00"),
        "CNY": Decimal("2100.00"),
        "HKD": Decimal("2350.00"),
        "JPY": Decimal("45000"),
        "AUD": Decimal("460.00"),
        "CAD": Decimal("410.00"),
        "SGD": Decimal("400.00"),
    },
    # The buyer pays the inspection fee within this; otherwise the mediator decides without it.
    "INSPECTION_FEE_PAYMENT_WINDOW": timedelta(days=env.int("TA_INSPECTION_FEE_DAYS", 3)),
    "MAX_FILES_PER_UPLOAD": env.int("TA_DISPUTE_MAX_FILES", 10),
}

# --- Pre-shipment inspection -------------------------------------------------------------
# The buyer's own inspection of the goods before shipment (README "Pre-shipment inspection").
PRESHIPMENT_INSPECTION = {
    # Booked at least this many working days (Monday to Friday) before the shipment deadline.
    "WORKING_DAYS": env.int("TA_PRESHIPMENT_INSPECTION_WORKING_DAYS", 7),
    # The fee per currency: the same table as the dispute inspections'.
    "FEE": DISPUTES["INSPECTION_FEE"],
    # The buyer pays the fee within this (TA_INSPECTION_FEE_DAYS, as in disputes), or the
    # booking lapses.
    "FEE_PAYMENT_WINDOW": DISPUTES["INSPECTION_FEE_PAYMENT_WINDOW"],
    "MAX_FILES": env.int("TA_DISPUTE_MAX_FILES", 10),
    "MAX_PROPOSED_DATES": 5,
}
# The buyer's pre-shipment inspection fee is captured into the order's escrow by this hook.
PAYMENT_CAPTURED_HOOKS = [
    *PAYMENT_CAPTURED_HOOKS,
    "orders.inspection.services.preshipment_inspection_fee_captured",
]

# --- Order conversation -------------------------------------------------------------------
# The thread between buyer and supplier on every order (README "Order conversation").
ORDER_CONVERSATION = {
    "MAX_CHARACTERS": 10_000,
    # Messages one user may post per minute across all orders (counted in the database).
    "RATE_PER_MINUTE": env.int("TA_MESSAGES_PER_MINUTE", 10),
    "MAX_FILES_PER_MESSAGE": env.int("TA_MESSAGE_MAX_FILES", 5),
}

# --- Teams --------------------------------------------------------------------------------
# Members of an organisation and their roles (README "Teams").
TEAMS = {
    # An invitation link works this many days, once.
    "INVITATION_VALID_FOR": timedelta(days=env.int("TA_INVITATION_DAYS", 7)),
    # Invitations one organisation may send per day (counted in the database).
    "INVITATIONS_PER_DAY": env.int("TA_INVITATIONS_PER_DAY", 20),
}
