"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

Every service command must name an executable the project installs and modules that import;
every variable the app services set must be one the settings read.
"""

import importlib
import re
import sys
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
