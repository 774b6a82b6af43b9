"""Write the beat schedules that apps declare into django-celery-beat's tables."""

from typing import Any

from django.apps import apps

from tradeassure.core.app_hooks import is_last_migrated_app


def declared_periodic_tasks() -> list:
    return [
        task for config in apps.get_app_configs() for task in getattr(config, "periodic_tasks", [])
    ]


def sync_periodic_tasks(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    if not is_last_migrated_app(sender):
        return
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    declared = declared_periodic_tasks()
    for spec in declared:
        defaults: dict[str, Any] = {"task": spec.task, "enabled": True}
        if spec.every_seconds:
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=spec.every_seconds, period=IntervalSchedule.SECONDS
            )
            defaults.update(interval=interval, crontab=None)
        else:
            minute, hour, day_of_month, month_of_year, day_of_week = spec.crontab.split()
            crontab, _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=minute,
                hour=hour,
                day_of_month=day_of_month,
                month_of_year=month_of_year,
                day_of_week=day_of_week,
                timezone="UTC",
            )
            defaults.update(crontab=crontab, interval=None)
        PeriodicTask.objects.using(using).update_or_create(name=spec.name, defaults=defaults)
    # Schedules removed from code are removed from beat too (but never the ones staff made).
    PeriodicTask.objects.using(using).filter(name__contains=": ").exclude(
        name__in=[spec.name for spec in declared]
    ).delete()
