"""Reminders before the deadlines that act by themselves: a set-based sweep over the sources the
apps declare.

Each app lists its deadlines on its AppConfig (`reminder_sources`: a sequence of
`ReminderSource`, or its dotted path), as it declares its beat schedules; the platform knows no
app. A source says which rows' deadline still applies (`rows`: the status filters, so a deadline
that no longer applies is never selected), which column holds it, who must act (`people`, for a
whole batch) and what to tell them. Adding one is a few declarative lines (see
`orders/reminders.py`).

Every minute (beat, `tradeassure.send_reminders`), for each source, one query per batch selects
the rows whose deadline falls within the largest lead (`TA_REMINDER_LEAD_DAYS`, default 3 and
1 days) and whose reminder for that deadline value and lead is not recorded yet, locking them
(`FOR NO KEY UPDATE SKIP LOCKED`: a row a person is changing right now is left for the next run).
The batch records its reminders with one `INSERT … ON CONFLICT DO NOTHING RETURNING` into
`ReminderSent`, whose unique key is (subject kind, subject id, deadline name, due_at, lead): only
the rows that insert tells get a notification, so two sweeps at once never send twice. The bell
notifications and the emails of the whole batch are two bulk inserts and one outbox kick.

Rules:
- Each lead is a band: the 3-day reminder goes while 1 to 3 days are left, the 1-day one in the
  last day. So a deadline set less than a day ahead gets only the 1-day reminder, and never the
  3-day one later; a sweep that was down for a while sends the reminder of the band the deadline
  is in now, not the ones it missed.
- The key holds the deadline's value: a moved deadline gets reminders for its new time (the
  reminders already sent for the old one do not count), and none for a time that passed.
- A deadline that stopped applying (status moved on, timer cleared, paused by a dispute) is not
  selected by its source's `rows`, so nothing is sent for it.
- Each recipient reads the exact time in their own time zone (`moment_token`, rendered per
  recipient by `notify_many`), in the bell and in the email.
"""

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import (
    Case,
    Exists,
    OuterRef,
    PositiveSmallIntegerField,
    QuerySet,
    Value,
    When,
)
from django.utils.module_loading import import_string

from tradeassure.core import clock
from tradeassure.core.bulk import bulk_insert_new
from tradeassure.core.moments import moment_token, relative_text
from tradeassure.core.sweeps import SWEEP_SOFT_TIME_LIMIT_S, BatchSweep, sweep_batches
from tradeassure.platform.events import NoticeSpec, notify_many
from tradeassure.platform.models import ReminderSent, SystemAlert

logger = logging.getLogger(__name__)

# Reminders already sent for deadlines this long past are deleted (no sweep selects them again).
KEEP_SENT_AFTER_DUE = timedelta(days=7)


@dataclass(frozen=True)
class ReminderSource:
    """One deadline that acts by itself, as its app declares it.

    `rows()`: the rows whose deadline applies (e.g. `Order.objects.filter(status=…)`), with
    whatever `people`, `reference` and `url` read (`select_related`, annotations); the kernel
    adds the window, the not-yet-sent check, the lock and the batch. `due_field` is the deadline
    column. `people(rows)`: who must act, for a batch, with a constant number of queries
    ({row pk: users}). `title` and `body` may use `{due}` (the deadline, in each recipient's
    zone) and `{left}` ("in 3 days"); the title is prefixed with `reference(row)` and
    "reminder"; `url(row)` is the page where they act."""

    kind: str  # the subject, e.g. "order" (with `deadline`, the key of what was sent)
    deadline: str  # the deadline's name, e.g. "initial_payment"
    due_field: str
    rows: Callable[[], QuerySet[Any]]
    people: Callable[[Sequence[Any]], Mapping[int, Sequence[Any]]]
    title: str
    body: str
    reference: Callable[[Any], str]
    url: Callable[[Any], str]

    @property
    def name(self) -> str:
        return f"{self.kind}.{self.deadline}"


def declared_reminder_sources() -> list[ReminderSource]:
    """Every installed app's `reminder_sources`, in INSTALLED_APPS order (names are unique)."""
    found: list[ReminderSource] = []
    for config in apps.get_app_configs():
        declared = getattr(config, "reminder_sources", None)
        if declared is None:
            continue
        if isinstance(declared, str):
            declared = import_string(declared)
        for source in declared:
            if not isinstance(source, ReminderSource):
                raise ImproperlyConfigured(f"{config.name}: reminder_sources holds {source!r}.")
            found.append(source)
    names = [source.name for source in found]
    if len(names) != len(set(names)):
        raise ImproperlyConfigured(f"Reminder sources declared twice: {sorted(names)}.")
    return found


def reminder_leads() -> list[int]:
    """The lead days (`TA_REMINDER_LEAD_DAYS`), smallest first, each once (none: no reminders)."""
    leads = sorted({int(days) for days in settings.TRADE_ASSURANCE["REMINDER_LEAD_DAYS"]})
    if any(days <= 0 for days in leads):
        raise ImproperlyConfigured("TA_REMINDER_LEAD_DAYS must be whole days above 0.")
    return leads


def _claim(
    source: ReminderSource, leads: Sequence[int], now: datetime, after: int, limit: int
) -> list[Any]:
    """Lock up to `limit` rows past `after` whose deadline is within the largest lead and whose
    reminder for its band (the smallest lead it is within) and its value is not recorded."""
    field = source.due_field
    band = Case(
        *(
            When(**{f"{field}__lte": now + timedelta(days=days)}, then=Value(days))
            for days in leads
        ),
        output_field=PositiveSmallIntegerField(),
    )
    sent = ReminderSent.objects.filter(
        subject_kind=source.kind,
        deadline=source.deadline,
        subject_id=OuterRef("pk"),
        due_at=OuterRef(field),
        lead_days=OuterRef("reminder_lead"),
    )
    window = {f"{field}__gt": now, f"{field}__lte": now + timedelta(days=leads[-1])}
    return list(
        source.rows()
        .filter(pk__gt=after, **window)
        .annotate(reminder_lead=band)
        .filter(~Exists(sent))
        .order_by("pk")
        .select_for_update(of=("self",), no_key=True, skip_locked=True)[:limit]
    )


def _apply(source: ReminderSource, rows: Sequence[Any], now: datetime) -> int:
    """Record the batch's reminders; notify for the rows whose record this insert made."""
    inserted = set(
        bulk_insert_new(
            ReminderSent,
            ["subject_kind", "subject_id", "deadline", "due_at", "lead_days", "sent_at"],
            [
                (
                    source.kind,
                    row.pk,
                    source.deadline,
                    getattr(row, source.due_field),
                    row.reminder_lead,
                    now,
                )
                for row in rows
            ],
            unique_on=["subject_kind", "subject_id", "deadline", "due_at", "lead_days"],
            returning="subject_id",
        )
    )
    sent = [row for row in rows if row.pk in inserted]
    if not sent:
        return 0
    people = source.people(sent)
    notices = []
    for row in sent:
        due = getattr(row, source.due_field)
        words = {"due": moment_token(due), "left": time_left(due, now)}
        notices.append(
            NoticeSpec(
                users=tuple(people.get(row.pk, ())),
                title=f"{source.reference(row)}: reminder — {source.title.format(**words)}",
                body=source.body.format(**words),
                url=source.url(row),
            )
        )
    notify_many(notices)
    return len(sent)


def time_left(due: datetime, now: datetime) -> str:
    """'in 3 days' when the deadline is within an hour of whole days away (as a reminder sent on
    time reads), else as precise as `relative_text` ('in 20 hours', 'in 1 day 12 h')."""
    left = due - now
    days = round(left / timedelta(days=1))
    if days >= 1 and abs(left - timedelta(days=days)) <= timedelta(hours=1):
        return f"in {days} day{'s' if days != 1 else ''}"
    return relative_text(due, now)


def _pk(row: Any) -> int:
    return int(row.pk)


def reminders_purge_sent(*, now: datetime) -> int:
    """Delete the records of reminders whose deadline passed long ago (never selected again)."""
    deleted, _ = ReminderSent.objects.filter(due_at__lt=now - KEEP_SENT_AFTER_DUE).delete()
    return deleted


def reminders_send_due(*, sources: Sequence[ReminderSource] | None = None) -> int:
    """Beat: send every reminder that is due, source by source, batch by batch; return how many
    deadlines were reminded. A source whose batch fails is reported (SystemAlert) and the others
    go on; past most of the task's soft time limit the sources left wait for the next run."""
    leads = reminder_leads()
    if not leads:
        return 0
    size = settings.TRADE_ASSURANCE["SWEEP_SET_BATCH_SIZE"]
    started = time.monotonic()
    reminders_purge_sent(now=clock.now())
    total = 0
    for source in declared_reminder_sources() if sources is None else sources:
        try:
            total += sweep_batches(
                BatchSweep(
                    name=f"reminders.{source.name}",
                    claim=functools.partial(_claim, source, leads),
                    apply=functools.partial(_apply, source),
                    key=_pk,
                ),
                batch_size=size,
            )
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:
            logger.exception("reminders.%s failed", source.name)
            SystemAlert.objects.create(
                source=f"reminders.{source.name}"[:60],
                message=repr(error)[:2000],
                created_at=clock.now(),
            )
        if time.monotonic() - started >= SWEEP_SOFT_TIME_LIMIT_S * 0.9:
            logger.info("reminders: time is up after %s; the next run goes on", source.name)
            break
    return total
