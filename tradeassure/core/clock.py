"""Time for the product's rules: one `now()` and the working-day arithmetic of mediator SLAs.

Every deadline, sweep and timer reads `now()`. Tests and demos may move it forward for every
process at once (web, Celery worker, beat) with `TA_CLOCK_OFFSET_FILE`: a file holding the
seconds to add, re-read when it changes. Production refuses the setting.

TRADEASSURE_CLOCK_OFFSET_SECONDS moves this clock (and only this one) for a whole process: the
fault tests start a stack "a day later" with it to prove the timers catch up after downtime. It
is for test and staging stacks; leave it unset in production.
"""

import os
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

_ZERO = timedelta(0)
_cache: dict[str, tuple[int, timedelta]] = {}


def _offset() -> timedelta:
    path = getattr(settings, "TA_CLOCK_OFFSET_FILE", "")
    if not path:
        return _ZERO
    try:
        status = os.stat(path)
        stamp = hash((status.st_mtime_ns, status.st_ino, status.st_size))
    except OSError:
        return _ZERO
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with open(path, encoding="ascii") as handle:
            offset = timedelta(seconds=float(handle.read().strip() or 0))
    except (OSError, ValueError):
        offset = _ZERO
    _cache[path] = (stamp, offset)
    return offset


# A fixed offset for a whole process, from its environment (the fault tests' stacks).
OFFSET = timedelta(seconds=float(os.environ.get("TRADEASSURE_CLOCK_OFFSET_SECONDS") or 0))


def now() -> datetime:
    return timezone.now() + OFFSET + _offset()


def travel(path: str, by: timedelta) -> timedelta:
    """Move the clock of every process reading `path` forward by `by`; returns the new offset."""
    current = _ZERO
    try:
        with open(path, encoding="ascii") as handle:
            current = timedelta(seconds=float(handle.read().strip() or 0))
    except (OSError, ValueError):
        pass
    new = current + by
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(str(new.total_seconds()))
    os.replace(temporary, path)
    return new


def add_working_days(start: datetime, days: int) -> datetime:
    """The moment `days` working days (Monday to Friday) after `start`."""
    moment = start
    remaining = days
    while remaining > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment
