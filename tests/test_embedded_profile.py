"""The embedded profile (SQLite, `make run`): web and worker write to one file at the same time.

Each process is a real interpreter on the newcomer's defaults (no DATABASE_URL), so the
settings under test are exactly the ones `make run` uses.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)

# A "worker" records heartbeats and reads-then-writes like the tasks do; a "web" process
# reads, then writes inside one transaction, like a service call behind a POST.
WRITER = """
import json, sys, time
import django
django.setup()
from django.db import transaction
from django.db.utils import OperationalError
from tradeassure.platform.models import Heartbeat, SystemAlert
from tradeassure.core import clock
from tradeassure.platform.tasks import record_heartbeat

role, ident, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
errors, slowest = [], 0.0
for i in range(rounds):
    started = time.monotonic()
    try:
        if role == "worker":
            record_heartbeat(name=f"worker-{ident}")
            with transaction.atomic():
                Heartbeat.objects.filter(name__startswith="worker").count()
                time.sleep(0.005)
                Heartbeat.objects.update_or_create(name="shared", defaults={"beat_at": clock.now()})
        else:
            with transaction.atomic():
                SystemAlert.objects.filter(source="web").count()
                time.sleep(0.005)
                SystemAlert.objects.create(source="web", message=f"{ident}-{i}", created_at=clock.now())
    except OperationalError as exc:
        errors.append(str(exc))
    slowest = max(slowest, time.monotonic() - started)
print(json.dumps({"errors": errors, "slowest": slowest}))
"""


def embedded_env(var_dir: Path) -> dict[str, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "CACHE_URL"}
    }
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings",
        "TRADEASSURE_VAR_DIR": str(var_dir),
    }


@pytest.fixture(scope="module")
def embedded_var(tmp_path_factory) -> Path:
    """A migrated SQLite database in a scratch var/ directory."""
    var_dir = tmp_path_factory.mktemp("var")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=embedded_env(var_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return var_dir


def test_embedded_sqlite_takes_the_write_lock_at_begin_in_wal_mode(embedded_var):
    script = (
        "from django.db import connection as c; c.ensure_connection(); "
        "cur = c.cursor(); cur.execute('PRAGMA journal_mode'); jm = cur.fetchone()[0]; "
        "cur.execute('PRAGMA busy_timeout'); bt = cur.fetchone()[0]; "
        "print(c.settings_dict['OPTIONS'].get('transaction_mode'), jm, bt)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--verbosity=0", "-c", script],
        cwd=BASE_DIR,
        env=embedded_env(embedded_var),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    mode, journal, busy_ms = result.stdout.split()
    assert (mode, journal) == ("IMMEDIATE", "wal")
    assert int(busy_ms) >= 10_000


def test_concurrent_web_and_worker_writes_never_see_database_is_locked(embedded_var):
    # given two worker-like and three web-like processes on the one SQLite file
    env = embedded_env(embedded_var)
    roles = [("worker", "1"), ("worker", "2"), ("web", "1"), ("web", "2"), ("web", "3")]
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, role, ident, "40"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role, ident in roles
    ]

    # when they all write at once
    outcomes = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        outcomes.append(json.loads(stdout.strip().splitlines()[-1]))
    elapsed = time.monotonic() - started

    # then every write went through: the lock is waited for, never refused
    errors = [error for outcome in outcomes for error in outcome["errors"]]
    assert errors == [], f"{len(errors)} of {40 * len(roles)} writes failed: {errors[:3]}"
    assert elapsed < 240


def test_make_dirs_honours_tradeassure_var_dir(tmp_path):
    # given an operator's own data folder
    var_dir = tmp_path / "elsewhere"

    # when make prepares the folders `make run` needs
    result = subprocess.run(
        ["make", "--no-print-directory", "dirs"],
        cwd=BASE_DIR,
        env={**os.environ, "TRADEASSURE_VAR_DIR": str(var_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    # then they are there, and the run target hands the same folder to its processes
    assert result.returncode == 0, result.stderr
    for folder in ("broker/out", "broker/processed", "broker/control", "media", "private"):
        assert (var_dir / folder).is_dir(), folder
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "-p", "run"],
        cwd=BASE_DIR,
        env={**os.environ, "TRADEASSURE_VAR_DIR": str(var_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"TRADEASSURE_VAR_DIR = {var_dir}" in dry_run.stdout or (
        f"TRADEASSURE_VAR_DIR := {var_dir}" in dry_run.stdout
    )
    assert "export TRADEASSURE_VAR_DIR" in (BASE_DIR / "Makefile").read_text()


def test_worker_keeps_its_control_folder_under_var_not_in_the_checkout(embedded_var, tmp_path):
    # given a worker started from another working directory (standing in for the checkout)
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    for folder in ("broker/out", "broker/processed", "broker/control"):
        (embedded_var / folder).mkdir(parents=True, exist_ok=True)
    env = {**embedded_env(embedded_var), "PYTHONPATH": str(BASE_DIR)}
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            *("-A", "tradeassure", "worker", "--pool=solo", "--loglevel=INFO"),
            *("--without-mingle", "--without-gossip"),
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # when it has bound its queues
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any((embedded_var / "broker/control").iterdir()):
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, 15)
        output, _ = worker.communicate(timeout=60)

    # then the exchange tables are under var/broker/control and nothing is in the working dir
    assert any((embedded_var / "broker/control").iterdir()), output
    assert list(workdir.iterdir()) == []
    assert "database is locked" not in output
