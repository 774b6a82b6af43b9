"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every service command must name an executable the project installs and modules that import;
every variable the app services set must be one the settings read.
"""

import importlib
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
VENV_BIN = Path(sys.executable).parent
APP_SERVICES = ["migrate", "web", "worker", "beat"]
# Read by Django/Celery themselves rather than by our settings module.
READ_ELSEWHERE = {"DJANGO_SETTINGS_MODULE"}


def settings_env_vars() -> set[str]:
    """Every environment variable name tradeassure/settings reads."""
    names: set[str] = set()
    for path in (BASE_DIR / "tradeassure" / "settings").glob("*.py"):
        source = path.read_text()
        names |= set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
        names |= set(re.findall(r"""Env\(\)\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
        names |= set(
            re.findall(r"""os\.environ(?:\.get|\.setdefault)?\(\s*["']([A-Z_]+)""", source)
        )
        # secrets, read verbatim (no "$" interpolation) by the settings' own `secret()`
        names |= set(re.findall(r"""\bsecret\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_settings_read_the_documented_core_variables():
    assert {
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "SECRET_KEY",
        "DEBUG",
        "ALLOWED_HOSTS",
        "MEDIA_ROOT",
        "PRIVATE_MEDIA_ROOT",
        "EMAIL_HOST",
    } <= settings_env_vars()


def test_compose_has_the_production_services_with_health_checks(compose):
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker", "beat"}
    for name in ("postgres", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert set(compose["volumes"]) >= {"postgres", "redis", "media"}
    # the app waits for healthy services and a finished migration
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_long_running_services_come_back_by_themselves(compose):
    # A process that exits (a beat that lost its database, a crashed worker) is restarted, and
    # beat uses the scheduler that waits for the database instead of exiting.
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker", "beat", "proxy"):
        assert services[name]["restart"] == "unless-stopped", name
    assert (
        "--scheduler=tradeassure.platform.beat:PatientDatabaseScheduler"
        in (services["beat"]["command"])
    )


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_environment_is_read_by_the_settings(compose, service):
    environment = compose["services"][service]["environment"]
    unknown = set(environment) - settings_env_vars() - READ_ELSEWHERE
    assert not unknown, f"{service} sets variables no setting reads: {sorted(unknown)}"
    assert environment["DJANGO_SETTINGS_MODULE"] == "tradeassure.settings.production"
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["CELERY_BROKER_URL"].startswith("redis://")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_command_exists_and_its_modules_import(compose, service):
    command = compose["services"][service]["command"]
    executable, *args = command
    assert executable in {"python", "gunicorn", "celery"}
    assert executable == "python" or (VENV_BIN / executable).exists(), executable

    if executable == "gunicorn":
        module, _, attribute = args[0].partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    elif executable == "celery":
        app_module = args[args.index("-A") + 1]
        celery_app = importlib.import_module(f"{app_module}.celery").app
        subcommand = args[args.index("-A") + 2]
        assert subcommand in {"worker", "beat"}
        for arg in args:
            if arg.startswith("--scheduler="):
                module, _, attribute = arg.split("=", 1)[1].partition(":")
                assert getattr(importlib.import_module(module), attribute)
        assert celery_app.main == "tradeassure"
    else:
        assert args[0] == "manage.py"
        from django.core.management import get_commands

        assert args[1] in get_commands()


def test_dockerfile_installs_pinned_dependencies_and_runs_gunicorn():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert "-c constraints.txt" in dockerfile
    assert "collectstatic" in dockerfile
    assert '"gunicorn", "tradeassure.wsgi:application"' in dockerfile
    assert (BASE_DIR / "constraints.txt").exists()
    assert "tradeassure.settings.production" in dockerfile


def test_readme_documents_every_variable_the_settings_read():
    readme = (BASE_DIR / "README.md").read_text()
    missing = sorted(name for name in settings_env_vars() if f"`{name}`" not in readme)
    assert not missing, f"README configuration table lacks: {missing}"


# --- The proxy in front, cookies and healthchecks (as the stack is documented) ------------------


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${VAR:-default}` / `${VAR:?message}` with the given (default: empty) env."""
    env = env or {}

    def one(match: re.Match) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":-":
            return rest
        raise KeyError(name)

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", one, str(value))


def test_only_the_proxy_is_published_and_it_forwards_to_web(compose):
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    assert "8000" in [str(port) for port in services["web"]["expose"]]

    # the proxy's config is a real file in the repository, mounted where Caddy reads it
    mounts = [volume.split(":") for volume in services["proxy"]["volumes"]]
    config = next(host for host, target, *_ in mounts if target == "/etc/caddy/Caddyfile")
    directives = [
        line.strip()
        for line in (BASE_DIR / config).read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "reverse_proxy web:8000" in directives
    # Caddy drops client X-Forwarded-* unless told to trust them: it must not be told to
    assert not [line for line in directives if "trusted_proxies" in line]
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert "caddy" in compose["volumes"]


def test_x_forwarded_proto_is_trusted_only_by_the_unpublished_web(compose):
    services = compose["services"]
    trusting = {
        name
        for name in APP_SERVICES
        if services[name]["environment"].get("TRUST_X_FORWARDED_PROTO") == "true"
    }
    assert trusting == {"web"}
    assert not services["web"].get("ports")


def test_plain_http_defaults_keep_cookies_usable_and_https_turns_them_secure(compose):
    environment = compose["services"]["web"]["environment"]
    names = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT")

    # the documented `docker compose up` (plain HTTP on localhost)
    assert {name: interpolate(environment[name]) for name in names} == dict.fromkeys(names, "false")
    # and the documented real-domain run (HTTPS=true)
    assert {name: interpolate(environment[name], {"HTTPS": "true"}) for name in names} == (
        dict.fromkeys(names, "true")
    )
    assert int(interpolate(environment["SECURE_HSTS_SECONDS"])) <= 86_400


@pytest.mark.django_db(transaction=True)
def test_web_healthcheck_passes_with_the_real_domain_in_allowed_hosts(
    compose, live_server, settings, monkeypatch
):
    # given the app answering only to its real domain, with HTTPS redirects on, and no broker
    settings.ALLOWED_HOSTS = ["trade.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz(/live|/ready)?$"]
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    command = compose["services"]["web"]["healthcheck"]["test"]
    assert command[0] == "CMD"
    executable, script, url = command[1:]
    assert url == "http://127.0.0.1:8000/healthz/live"
    env = {**os.environ, "ALLOWED_HOSTS": "trade.example.com,www.trade.example.com"}

    # when the container's healthcheck runs (against the live server instead of :8000)
    probe = subprocess.run(
        [sys.executable, script, url.replace("http://127.0.0.1:8000", live_server.url)],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    # then it passes, where a probe without the Host header is refused
    assert executable == "python"
    assert probe.returncode == 0, probe.stderr
    bare = urllib.request.Request(f"{live_server.url}/healthz/live")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bare, timeout=10)
    assert refused.value.code == 400


@pytest.mark.django_db(transaction=True)
def test_web_healthcheck_fails_when_the_app_does_not_answer_200(compose, live_server, settings):
    settings.ALLOWED_HOSTS = ["other.example.com"]
    _, script, url = compose["services"]["web"]["healthcheck"]["test"][1:]
    probe = subprocess.run(
        [sys.executable, script, url.replace("http://127.0.0.1:8000", live_server.url)],
        cwd=BASE_DIR,
        env={**os.environ, "ALLOWED_HOSTS": "trade.example.com"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert probe.returncode == 1
    assert "400" in probe.stderr
