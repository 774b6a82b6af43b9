"""`make run PORT=…` serves on that port, so the links in emails must point there too."""

import os
import subprocess
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def _dry_run(*args: str, **extra_env: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"} | extra_env
    result = subprocess.run(
        ["make", "-n", "run", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_make_run_points_site_url_at_the_served_port():
    # given `make run` on another port
    # when make prepares the recipe
    out = _dry_run("PORT=8123")
    # then web, worker and beat all get SITE_URL on that port
    assert 'export SITE_URL="http://127.0.0.1:8123"' in out
    assert out.index("export SITE_URL") < out.index("runserver")


def test_make_run_keeps_an_explicit_site_url():
    out = _dry_run("PORT=8123", SITE_URL="https://trade.example.com")
    assert 'export SITE_URL="https://trade.example.com"' in out
