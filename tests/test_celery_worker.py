"""A real Celery worker process executes a task sent through Redis (not eager mode)."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tradeassure.celery import app as celery_app
from tradeassure.platform.models import Heartbeat
from tradeassure.platform.tasks import record_heartbeat

WAIT_SECONDS = 90


def database_url_for_this_test_run() -> str:
    """The pytest test database as a DATABASE_URL the worker process can read."""
    db = connection.settings_dict
    credentials = db["USER"] or ""
    if db["PASSWORD"]:
        credentials += f":{db['PASSWORD']}"
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(redis_url, tmp_path):
    """Start `celery -A tradeassure worker` on a queue of its own; stop it after the test."""
    queue = f"test-worker-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings",
        "DATABASE_URL": database_url_for_this_test_run(),
        "CELERY_BROKER_URL": redis_url,
        "TRADEASSURE_VAR_DIR": str(tmp_path),
    }
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tradeassure",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
                "-Q",
                queue,
                "-n",
                f"{queue}@%h",
            ],
            cwd=Path(settings.BASE_DIR),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield queue, process, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_task_sent_through_redis_is_executed_by_a_worker_process(worker, redis_url):
    # given a worker process listening on its own Redis queue, and no heartbeat row yet
    queue, process, log_path = worker
    name = f"probe-{uuid.uuid4().hex[:8]}"
    assert not Heartbeat.objects.filter(name=name).exists()

    # when the heartbeat task is sent through Redis (eager mode off: a real message)
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write(redis_url) as conn:
        record_heartbeat.apply_async(args=[name], queue=queue, connection=conn)

    # then the worker runs it and the row appears in the test database
    deadline = time.monotonic() + WAIT_SECONDS
    while not Heartbeat.objects.filter(name=name).exists():
        assert process.poll() is None, f"worker exited:\n{log_path.read_text()}"
        assert time.monotonic() < deadline, f"task not executed:\n{log_path.read_text()}"
        time.sleep(0.25)

    # and the message was acknowledged after it ran (acks_late): nothing is left on the queue
    time.sleep(0.5)
    with celery_app.connection_for_write(redis_url) as conn:
        assert conn.default_channel.client.llen(queue) == 0
    assert "Task tradeassure.record_heartbeat[" in log_path.read_text()
