"""`make bench` cannot rot: its smoke mode runs every scenario end to end (never judged on speed).

It runs the harness as the developer would (its own database, gunicorn for the product and the
floor, load from another process), then checks that each scenario produced numbers with no
errors. No performance number is asserted: machine speed never decides this test.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.postgres

HTTP_SCENARIOS = {
    "create protected order (API)",
    "order list (API)",
    "order list (HTML)",
    "order page (HTML)",
    "order page (API)",
}


def _bench_database_url() -> str:
    """A database of the bench's own on the tests' server (the harness drops and creates it)."""
    url = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(url._replace(path=f"{url.path.lstrip('/') or 'tradeassure'}_bench_smoke"))


def test_bench_smoke_runs_every_scenario(tmp_path):
    if connection.vendor != "postgresql":
        pytest.fail("the postgres marker should have skipped this")
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": _bench_database_url(),
        "BENCH_RESULTS_DIR": str(tmp_path / "results"),
        "BENCH_VAR_DIR": str(tmp_path / "var"),
        "BENCH_PORT": os.environ.get("BENCH_PORT", "18790"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    summary = json.loads((tmp_path / "results" / "latest-smoke.json").read_text())
    rows = {row["name"]: row for row in summary["results"]}
    for name in HTTP_SCENARIOS:
        for side in ("product", "floor"):
            assert rows[name][side]["requests"] > 0, (name, side)
            assert rows[name][side]["errors"] == 0, (name, side)
        assert rows[name]["ratio"] is not None
    sweeps = [row for row in summary["results"] if row["kind"] == "sweep"]
    assert len(sweeps) >= 6
    for row in sweeps:
        assert row["due_rows"] > 0 and row["done"] > 0, row["name"]
    for name in ("ledger, distinct suppliers", "ledger, one hot supplier", "pgbench -N"):
        assert rows[name]["per_s"] > 0, name
    assert rows["outbox dispatch"]["sent"] == rows["outbox dispatch"]["messages"] > 0
    assert rows["dispute filing"]["filed"] > 0
    assert all(row.get("errors", 0) == 0 for row in summary["results"])
    assert summary["targets"], "each target is evaluated (met or missed), never asserted"
