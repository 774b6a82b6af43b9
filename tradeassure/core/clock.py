"""Time for the product's rules: one `now()` and the working-day arithmetic of mediator SLAs."""

from datetime import datetime, timedelta

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def add_working_days(start: datetime, days: int) -> datetime:
    """The moment `days` working days (Monday to Friday) after `start`."""
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment
