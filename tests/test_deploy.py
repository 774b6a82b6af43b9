"""The production profile: `check --deploy` is clean, secrets are required, settings come from env."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(settings.BASE_DIR)
# A real payment provider: the production profile refuses the sandbox (payments/checks.py).
STRIPE_ENV = {
    "PAYMENT_PROVIDER": "stripe",
    "PAYOUT_PROVIDER": "manual",
    "STRIPE_SECRET_KEY": "sk_live_deploytest",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_deploytest",
    "STRIPE_WEBHOOK_SECRET": "whsec_deploytest",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh interpreter with exactly the given environment overrides."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "STRIPE_API_BASE", *STRIPE_ENV}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_under_the_production_profile():
    # given production settings with a real secret, the host names and a real provider
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        SECRET_KEY=get_random_secret_key(),
        ALLOWED_HOSTS="trade.example.com",
        **STRIPE_ENV,
    )

    # then Django's deployment checklist finds no issue at all
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        ALLOWED_HOSTS="trade.example.com",
    )

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_settings_follow_the_environment():
    # given the variables an operator sets
    script = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], "
        "s.CELERY_BROKER_URL, s.ALLOWED_HOSTS, s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
        "s.MEDIA_ROOT, s.PRIVATE_MEDIA_ROOT, s.UPLOAD_MAX_BYTES, s.EMAIL_BACKEND)"
    )

    result = manage(
        "shell",
        "--verbosity=0",
        "-c",
        script,
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        SECRET_KEY=get_random_secret_key(),
        ALLOWED_HOSTS="a.example.com,b.example.com",
        DATABASE_URL="postgres://u:p@db.internal:5432/tradeassure",
        CELERY_BROKER_URL="redis://cache.internal:6379/0",
        MEDIA_ROOT="/srv/media",
        PRIVATE_MEDIA_ROOT="/srv/private",
        UPLOAD_MAX_BYTES="1234",
    )

    # then the settings are exactly those, with the HTTPS-only hardening on
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "django.db.backends.postgresql",
        "tradeassure",
        "redis://cache.internal:6379/0",
        "['a.example.com',",
        "'b.example.com']",
        "True",
        "True",
        "/srv/media",
        "/srv/private",
        "1234",
        "django.core.mail.backends.smtp.EmailBackend",
    ]


def test_newcomer_defaults_need_no_server(tmp_path):
    # given no configuration at all (only a scratch var/ directory)
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "DEBUG"}
    }
    script = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, "
        "s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'])"
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity=0", "-c", script],
        cwd=BASE_DIR,
        env={**clean, "TRADEASSURE_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then it is SQLite and the filesystem broker under var/
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "django.db.backends.sqlite3",
        "filesystem://",
        str(tmp_path / "broker" / "out"),
    ]


def production_settings(*names: str, **env: str) -> dict:
    """The named production settings, as JSON, read in a fresh interpreter under `env`."""
    script = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}))"
    )
    result = manage(
        "shell",
        "--verbosity=0",
        "-c",
        script,
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        ALLOWED_HOSTS="trade.example.com",
        **{"SECRET_KEY": get_random_secret_key(), **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_trusts_x_forwarded_proto_only_when_told_a_proxy_overwrites_it(rf, settings):
    # given the production defaults (gunicorn may be reachable directly)
    default = production_settings("SECURE_PROXY_SSL_HEADER")["SECURE_PROXY_SSL_HEADER"]
    behind_proxy = production_settings("SECURE_PROXY_SSL_HEADER", TRUST_X_FORWARDED_PROTO="true")[
        "SECURE_PROXY_SSL_HEADER"
    ]

    # then the header is not trusted unless the operator says a proxy sets it
    assert default is None
    assert behind_proxy == ["HTTP_X_FORWARDED_PROTO", "https"]

    # and a client claiming HTTPS over plain HTTP is not believed under the default
    settings.SECURE_PROXY_SSL_HEADER = default
    assert rf.get("/", HTTP_X_FORWARDED_PROTO="https").is_secure() is False
    settings.SECURE_PROXY_SSL_HEADER = tuple(behind_proxy)
    assert rf.get("/", HTTP_X_FORWARDED_PROTO="https").is_secure() is True


def test_hsts_defaults_ramp_up_and_preload_is_opt_in():
    values = production_settings(
        "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "SECURE_HSTS_INCLUDE_SUBDOMAINS"
    )
    assert 0 < values["SECURE_HSTS_SECONDS"] <= 86_400
    assert values["SECURE_HSTS_PRELOAD"] is False

    ramped = production_settings(
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_PRELOAD",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_PRELOAD="true",
    )
    assert ramped == {"SECURE_HSTS_SECONDS": 31_536_000, "SECURE_HSTS_PRELOAD": True}


def test_cookies_follow_the_environment_for_a_plain_http_stack():
    values = production_settings(
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_SSL_REDIRECT="false",
    )
    assert values == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
    }


def _secret() -> str:
    """A random secret key (django-environ reads a value starting with "$" as a reference)."""
    return secrets.token_urlsafe(50)


def test_production_refuses_to_start_with_the_sandbox_provider():
    # given production settings that leave the payment provider at its default, the sandbox
    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        SECRET_KEY=_secret(),
        ALLOWED_HOSTS="trade.example.com",
    )

    # then the system check fails, naming the setting
    assert result.returncode != 0
    assert "tradeassure.E102" in result.stderr and "PAYMENT_PROVIDER" in result.stderr


def test_production_refuses_default_secrets_and_incomplete_stripe_settings():
    # given the dev default SECRET_KEY, the sandbox's public webhook secret, and Stripe without
    # its webhook secret but pointed at a test server
    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        SECRET_KEY="dev-only-insecure-key-change-me-in-production-0123456789abcdefghijklmnop",
        SANDBOX_WEBHOOK_SECRET="sandbox-webhook-secret-dev-only-0123456789",
        ALLOWED_HOSTS="trade.example.com",
        **{**STRIPE_ENV, "STRIPE_WEBHOOK_SECRET": "", "STRIPE_API_BASE": "http://127.0.0.1:1"},
    )

    # then each is reported and the check fails
    assert result.returncode != 0
    for expected in (
        "SECRET_KEY is a default value",
        "SANDBOX_WEBHOOK_SECRET is a default value",
        "STRIPE_WEBHOOK_SECRET is not set",
        "STRIPE_API_BASE points",
    ):
        assert expected in result.stderr


def test_the_wsgi_application_refuses_to_start_on_the_sandbox():
    # given gunicorn loading the WSGI application under the production profile (no checks run)
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PAYMENT_PROVIDER", "PAYOUT_PROVIDER", "PAYMENTS_ALLOW_SANDBOX"}
    }
    env = {
        **clean,
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings.production",
        "SECRET_KEY": _secret(),
        "ALLOWED_HOSTS": "trade.example.com",
    }
    refused = subprocess.run(
        [sys.executable, "-c", "import tradeassure.wsgi"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    started = subprocess.run(
        [sys.executable, "-c", "import tradeassure.wsgi"],
        cwd=BASE_DIR,
        env={**env, **STRIPE_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then it refuses to start with the sandbox, and starts with Stripe configured
    assert refused.returncode != 0 and "Refusing to start" in refused.stderr
    assert started.returncode == 0, started.stderr


def test_secrets_are_read_verbatim_even_when_they_start_with_a_dollar():
    # given secrets that django-environ would read as references to other variables
    values = {
        "SECRET_KEY": "$" + get_random_secret_key(),
        "SANDBOX_WEBHOOK_SECRET": "$SECRET_KEY-not-a-reference",
        "STRIPE_WEBHOOK_SECRET": "$whsec_dollar",
        "STRIPE_SECRET_KEY": "$sk_dollar",
        "EMAIL_HOST_PASSWORD": "$HOME",
    }

    # when the production profile reads them
    read = production_settings(*values, **values)

    # then each setting is exactly the value given, "$" and all
    assert read == values


def test_check_deploy_passes_with_a_secret_key_starting_with_a_dollar():
    # given a random secret that happens to start with "$" (get_random_secret_key can make one)
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
        SECRET_KEY="$" + get_random_secret_key(),
        ALLOWED_HOSTS="trade.example.com",
        **STRIPE_ENV,
    )

    # then the key is used as given and the deployment checklist is clean
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_with_inconsistent_currency_tables():
    # given an otherwise valid production configuration whose release fee rate is over 100 %
    env = {
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings.production",
        "SECRET_KEY": _secret(),
        "ALLOWED_HOSTS": "trade.example.com",
        "TA_FEE_RATE": "1.5",
        **STRIPE_ENV,
    }
    checked = manage("check", **env)
    served = subprocess.run(
        [sys.executable, "-c", "import tradeassure.wsgi"],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then both the system check and the WSGI application refuse, naming the table
    assert checked.returncode != 0
    assert "tradeassure.E106" in checked.stderr and "FEE_RATE" in checked.stderr
    assert served.returncode != 0 and "Refusing to start" in served.stderr
    assert "FEE_RATE" in served.stderr
