"""Time for the product's rules: one `now()` and the working-day arithmetic of mediator SLAs.

TRADEASSURE_CLOCK_OFFSET_SECONDS moves this clock (and only this one) for a whole process: the
fault tests start a stack "a day later" with it to prove the timers catch up after downtime. It
is for test and staging stacks; leave it unset in production.
"""

import os
from datetime import datetime, timedelta

from django.utils import timezone

OFFSET = timedelta(seconds=float(os.environ.get("TRADEASSURE_CLOCK_OFFSET_SECONDS") or 0))


def now() -> datetime:
    return timezone.now() + OFFSET


def add_working_days(start: datetime, days: int) -> datetime:
    """The moment `days` working days (Monday to Friday) after `start`."""
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment
