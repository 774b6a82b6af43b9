"""The bench's scale (full or smoke) and the environment every bench process shares.

One SECRET_KEY for the seeder and the servers (session hashes depend on it), the production
profile over plain HTTP on loopback, no throttling in the way of the load, a memory broker so no
worker is needed, and the in-memory email backend.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/tradeassure_bench"


@dataclass(frozen=True)
class Scale:
    name: str
    suppliers: int
    buyers: int
    products: int
    orders: int  # historical orders, all statuses
    templates: int  # of which built through the services, then copied
    sweep_rows: int  # due rows per order sweep
    dispute_sweep_rows: int
    sweep_templates: int  # orders (or disputes) built per sweep before copying
    sweep_cap_s: float  # wall-clock limit per sweep run (a Celery soft time limit)
    ledger_seconds: float
    ledger_escrows_per_thread: int
    outbox_messages: int
    disputes_filed: int
    http_seconds: int
    http_warmup_seconds: int
    rounds: int

    def as_dict(self) -> dict:
        return asdict(self)


FULL = Scale(
    name="full",
    suppliers=200,
    buyers=2_000,
    products=10_000,
    orders=50_000,
    templates=104,
    sweep_rows=100_000,
    dispute_sweep_rows=10_000,
    sweep_templates=8,
    sweep_cap_s=15.0,
    ledger_seconds=10.0,
    ledger_escrows_per_thread=150,
    outbox_messages=20_000,
    disputes_filed=200,
    http_seconds=6,
    http_warmup_seconds=1,
    rounds=3,
)
# The largest that fits a loaded 2-core machine in about 15 minutes (BENCH_SCALE=medium).
MEDIUM = Scale(
    name="medium",
    suppliers=200,
    buyers=2_000,
    products=10_000,
    orders=10_000,
    templates=52,
    sweep_rows=5_000,
    dispute_sweep_rows=1_000,
    sweep_templates=4,
    sweep_cap_s=10.0,
    ledger_seconds=5.0,
    ledger_escrows_per_thread=30,
    outbox_messages=2_000,
    disputes_filed=20,
    http_seconds=4,
    http_warmup_seconds=1,
    rounds=3,
)
SMOKE = Scale(
    name="smoke",
    suppliers=6,
    buyers=20,
    products=60,
    orders=400,
    templates=22,
    sweep_rows=200,
    dispute_sweep_rows=40,
    sweep_templates=4,
    sweep_cap_s=120.0,
    ledger_seconds=1.0,
    ledger_escrows_per_thread=8,
    outbox_messages=200,
    disputes_filed=5,
    http_seconds=1,
    http_warmup_seconds=0,
    rounds=1,
)

THREADS = 16
# The ledger scenario's 16 workers run as LEDGER_PROCESSES forked processes of
# THREADS // LEDGER_PROCESSES threads each: in one CPython process they would measure the GIL
# (one core of Python), not the database-side design.
LEDGER_PROCESSES = 4
CONNECTIONS = 16
WORKERS = 4
SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuv"


def database_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(f"make bench runs on PostgreSQL only; refusing {url.split(':')[0]}://")
    return url


def bench_env(var_dir: Path, *, settings: str = "tradeassure.settings.production") -> dict:
    """The environment of every bench process (servers, seeder, in-process scenarios)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=settings,
        DATABASE_URL=database_url(),
        SECRET_KEY=SECRET_KEY,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        # Plain HTTP on loopback: the production profile's redirect is switched off by its env.
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        CONN_MAX_AGE="60",
        # The bench moves pretend money through the sandbox provider; the production profile
        # refuses the sandbox unless told this stack moves no real money.
        PAYMENTS_ALLOW_SANDBOX="true",
        CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL", "memory://"),
        CELERY_TASK_ALWAYS_EAGER="false",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        API_THROTTLE_PER_KEY="100000000/min",
        API_THROTTLE_PER_USER="100000000/min",
        API_THROTTLE_ANONYMOUS="100000000/min",
        # Limits: min(CAP, FLOOR + volume factor x completed volume); high, so none fills up.
        TA_LIMIT_CAP_USD="1000000000",
        TA_LIMIT_FLOOR_USD="1000000000",
        # Sweeps cancel thousands of a supplier's orders: no automatic suspension mid-run.
        TA_SUSPENSION_MIN_ORDERS="1000000000",
        TRADEASSURE_VAR_DIR=str(var_dir),
        STATIC_ROOT=str(var_dir / "staticfiles"),
        LOG_LEVEL="ERROR",
        PYTHONPATH=str(ROOT),
    )
    return env
