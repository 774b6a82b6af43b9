"""Beat schedules come from the apps' code (AppConfig.periodic_tasks), never from clicks."""

import pytest
from django.apps import apps
from django_celery_beat.models import IntervalSchedule
from django_celery_beat.models import PeriodicTask as BeatTask

from tradeassure.celery import app as celery_app
from tradeassure.core.app_hooks import PeriodicTask
from tradeassure.platform.schedules import declared_periodic_tasks, sync_periodic_tasks

pytestmark = pytest.mark.django_db


def test_every_declared_schedule_is_in_beat_after_migrate():
    # given the test database, migrated (post_migrate synced the schedules)
    declared = declared_periodic_tasks()
    assert {"outbox: dispatch due messages", "health: worker heartbeat"} <= {
        spec.name for spec in declared
    }

    # then beat holds each one, enabled, with the declared task and timing
    for spec in declared:
        row = BeatTask.objects.get(name=spec.name)
        assert row.task == spec.task
        assert row.enabled
        if spec.every_seconds:
            assert (row.interval.every, row.interval.period) == (
                spec.every_seconds,
                IntervalSchedule.SECONDS,
            )
        else:
            crontab = row.crontab
            assert (
                f"{crontab.minute} {crontab.hour} {crontab.day_of_month} "
                f"{crontab.month_of_year} {crontab.day_of_week}"
            ) == spec.crontab


def test_every_declared_schedule_names_a_registered_task():
    celery_app.loader.import_default_modules()
    for spec in declared_periodic_tasks():
        assert spec.task in celery_app.tasks, spec
        assert ": " in spec.name, spec


def test_sync_updates_changed_schedules_and_removes_dropped_ones(monkeypatch):
    # given a schedule changed in code, one removed from code, and one staff made by hand
    config = apps.get_app_config("tradeassure")
    monkeypatch.setattr(
        config,
        "periodic_tasks",
        [
            PeriodicTask("outbox: dispatch due messages", "tradeassure.dispatch_outbox", 45),
            PeriodicTask(
                "health: nightly report", "tradeassure.record_heartbeat", None, "0 3 * * *"
            ),
        ],
    )
    staff_made = BeatTask.objects.create(
        name="One-off cleanup",
        task="tradeassure.record_heartbeat",
        interval=IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS),
    )

    # when the schedules are synced (as after every migrate), twice
    sync_periodic_tasks()
    sync_periodic_tasks()

    # then beat follows the code, once each, and keeps what staff made
    assert BeatTask.objects.get(name="outbox: dispatch due messages").interval.every == 45
    nightly = BeatTask.objects.get(name="health: nightly report")
    assert (nightly.crontab.minute, nightly.crontab.hour) == ("0", "3")
    assert nightly.interval is None
    assert not BeatTask.objects.filter(name="health: worker heartbeat").exists()
    assert BeatTask.objects.filter(pk=staff_made.pk).exists()
    assert BeatTask.objects.filter(name="health: nightly report").count() == 1


def test_celery_is_configured_for_safe_retries():
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    assert conf.beat_scheduler == "tradeassure.platform.beat:PatientDatabaseScheduler"


# Not in a test transaction: the stock scheduler closes any connection that is not in autocommit.
@pytest.mark.django_db(transaction=True)
def test_beat_scheduler_waits_for_the_database_at_start_up(monkeypatch):
    # given a schedule, and a database that refuses the first two attempts to read it
    from django.db import OperationalError
    from django_celery_beat.schedulers import DatabaseScheduler

    from tradeassure.platform import beat

    every_minute, _ = IntervalSchedule.objects.get_or_create(
        every=60, period=IntervalSchedule.SECONDS
    )
    BeatTask.objects.update_or_create(
        name="outbox: dispatch due messages",
        defaults={"task": "tradeassure.dispatch_outbox", "interval": every_minute},
    )

    attempts: list[int] = []
    real_setup = DatabaseScheduler.setup_schedule

    def flaky_setup(self):
        attempts.append(1)
        if len(attempts) <= 2:
            raise OperationalError("connection refused")
        real_setup(self)

    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        assert len(waits) < 5, "beat kept retrying"

    monkeypatch.setattr(DatabaseScheduler, "setup_schedule", flaky_setup)
    monkeypatch.setattr(beat.time, "sleep", wait)

    # when beat creates its scheduler
    scheduler = beat.PatientDatabaseScheduler(app=celery_app)

    # then it retried with growing waits instead of exiting, and read the whole schedule
    assert len(attempts) == 3
    assert waits == [1.0, 2.0]
    assert "outbox: dispatch due messages" in scheduler.schedule
