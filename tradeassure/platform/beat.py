"""The beat scheduler: django-celery-beat's DatabaseScheduler, patient with the database.

The stock scheduler reads its schedule from PostgreSQL at start-up and exits when it cannot, so
a beat started while the database was down never came back on its own; and its periodic full
re-read raises out of the beat loop if the database is down at that moment. This one waits at
start-up (retrying with backoff until the database answers) and keeps the last schedule it read
through an outage, so timers resume when the database is back. The sweeps catch up by
themselves: they act on everything already due, however late they run.
"""

import logging
import time

from django.db import DatabaseError, InterfaceError
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

MAX_STARTUP_DELAY_SECONDS = 30


class PatientDatabaseScheduler(DatabaseScheduler):
    def setup_schedule(self) -> None:
        delay = 1.0
        while True:
            try:
                # The stock scheduler closes broken connections itself (close_old_connections)
                # before each read; a refused connect leaves none open, so the next try connects.
                super().setup_schedule()
                return
            except (DatabaseError, InterfaceError) as error:
                # Read the whole schedule again on the next try, not a half-read one.
                self._initial_read = True
                self._schedule = None
                logger.warning(
                    "Beat cannot read its schedule (%s: %s); retrying in %.0f s.",
                    type(error).__name__,
                    error,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, MAX_STARTUP_DELAY_SECONDS)

    @property
    def schedule(self) -> dict:
        try:
            return super().schedule
        except (DatabaseError, InterfaceError) as error:
            if self._schedule is None:
                raise
            logger.warning(
                "Beat keeps its last schedule: the database is unavailable (%s: %s).",
                type(error).__name__,
                error,
            )
            return self._schedule
