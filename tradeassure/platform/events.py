"""Publishing domain events and notifying people, inside the caller's transaction."""

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from tradeassure.core import clock
from tradeassure.core.bulk import NewId, bulk_insert, insert_linked
from tradeassure.core.moments import render_moments
from tradeassure.platform.catalogue import is_event_topic
from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage

OUTBOX_GIVE_UP_AFTER = timedelta(days=3)

# The outbox rows queued inside `outbox_batch()`, written by one INSERT when it ends.
_batch: ContextVar[list[OutboxMessage] | None] = ContextVar("outbox_batch", default=None)


@contextmanager
def outbox_batch() -> Iterator[None]:
    """Write every outbox row queued inside with one INSERT (and one dispatcher kick) at the end.

    For services that publish an event and notify people in one transaction: each would
    otherwise cost an INSERT of its own. Nested batches join the outermost one; if the block
    raises, nothing queued in it is written (the transaction rolls back anyway). Rows are held
    in memory until the end, so wrap only code that does not catch a rolled-back savepoint's
    error and go on: a message queued inside that savepoint would still be written.
    """
    if _batch.get() is not None:
        yield
        return
    token = _batch.set([])
    try:
        yield
        pending = _batch.get() or []
    finally:
        _batch.reset(token)
    if pending:
        OutboxMessage.objects.bulk_create(pending)
        _kick_once()


def event_publish(
    *,
    topic: str,
    subject_type: str,
    subject_id: int,
    audience: Iterable[int],
    payload: dict[str, Any] | None = None,
) -> DomainEvent:
    """Record a domain event for the events feed and webhooks (called inside a service's atomic).

    `topic` must be in the catalogue (each app's `topics.py`): a topic no partner can look up
    or subscribe to is a programming error, so it fails here rather than being sent.
    """
    if not is_event_topic(topic):
        raise ValueError(
            f"Unknown event topic {topic!r}: add it to the publishing app's topics enum "
            "(its AppConfig's `event_topics`)."
        )
    audience_ids = sorted({org_id for org_id in audience if org_id})
    if connection.vendor == "postgresql":
        return _event_insert_one(
            topic=topic,
            subject_type=subject_type,
            subject_id=subject_id,
            payload=payload or {},
            audience_ids=audience_ids,
        )
    event = DomainEvent(
        topic=topic,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload or {},
        occurred_at=clock.now(),
    )
    # Elsewhere (SQLite): the event and its audience through the kernel's linked insert.
    through = DomainEvent.audience.through
    insert_linked(
        [
            event,
            *(
                through(domainevent_id=NewId(event), organisation_id=org_id)  # type: ignore[misc]
                for org_id in audience_ids
            ),
        ]
    )
    for channel in getattr(settings, "OUTBOX_EVENT_CHANNELS", []):
        outbox_enqueue(channel=channel, payload={"event_id": event.pk})
    return event


def _event_insert_one(
    *, topic: str, subject_type: str, subject_id: int, payload: dict[str, Any], audience_ids
) -> DomainEvent:
    """`event_publish` on PostgreSQL: the event, its audience and its outbox rows (one per
    OUTBOX_EVENT_CHANNELS) written by ONE statement, a data-modifying CTE, instead of three
    (every money movement publishes one event; this is most of its own writes)."""
    now = clock.now()
    channels = list(getattr(settings, "OUTBOX_EVENT_CHANNELS", []))
    quote = connection.ops.quote_name
    through = DomainEvent.audience.through
    sql = (
        f"WITH e AS (INSERT INTO {quote(DomainEvent._meta.db_table)} "
        "(topic, subject_type, subject_id, payload, occurred_at) "
        "VALUES (%s, %s, %s, %s::jsonb, %s) RETURNING id), "
        f"a AS (INSERT INTO {quote(through._meta.db_table)} (domainevent_id, organisation_id) "
        "SELECT e.id, o FROM e, unnest(%s::bigint[]) AS o), "
        f"m AS (INSERT INTO {quote(OutboxMessage._meta.db_table)} (channel, payload, status, "
        "attempts, emails_done, next_attempt_at, give_up_at, last_error, created_at) "
        "SELECT c, jsonb_build_object('event_id', e.id), %s, 0, 0, %s, %s, '', %s "
        "FROM e, unnest(%s::text[]) AS c) "
        "SELECT id FROM e"
    )
    params = [
        topic,
        subject_type,
        subject_id,
        json.dumps(payload),  # as the JSONField writes it (no encoder)
        now,
        audience_ids,
        OutboxMessage.Status.PENDING,
        now,
        now + OUTBOX_GIVE_UP_AFTER,
        now,
        channels,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (pk,) = cursor.fetchone()
    if channels:
        _kick_once()
    return DomainEvent(
        pk=pk,
        topic=topic,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload,
        occurred_at=now,
    )


def outbox_enqueue(*, channel: str, payload: dict[str, Any]) -> OutboxMessage:
    """Queue a side effect; it runs after commit, and is retried by the sweep until it succeeds.

    Inside `outbox_batch()` the row is written when the batch ends (unsaved until then).
    """
    now = clock.now()
    message = OutboxMessage(
        channel=channel,
        payload=payload,
        next_attempt_at=now,
        give_up_at=now + OUTBOX_GIVE_UP_AFTER,
        created_at=now,
    )
    pending = _batch.get()
    if pending is not None:
        pending.append(message)
        return message
    message.save(force_insert=True)
    _kick_once()
    return message


def _kick_once() -> None:
    """Kick the dispatcher after commit, once per transaction however many rows it queued
    (one dispatch run delivers them all)."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        callback is _kick_dispatcher for _, callback, _ in connection.run_on_commit
    ):
        return
    transaction.on_commit(_kick_dispatcher)


def _kick_dispatcher() -> None:
    from tradeassure.platform.tasks import dispatch_outbox

    try:
        dispatch_outbox.delay()
    except Exception:
        import logging

        logging.getLogger(__name__).warning("Broker unavailable; outbox sweep will deliver later.")


def notify(*, users: Iterable[Any], title: str, body: str = "", url: str = "") -> None:
    """Tell people something they must act on: a bell notification now, an email after commit."""
    now = clock.now()
    recipients = [user for user in users if user is not None and user.is_active]
    # Moments in `title`/`body` (tradeassure.core.moments.moment_token) are written out in each
    # recipient's own time zone, in the bell and in the email.
    texts = {
        user.pk: (
            render_moments(title, getattr(user, "time_zone", "")),
            render_moments(body, getattr(user, "time_zone", "")),
        )
        for user in recipients
    }
    Notification.objects.bulk_create(
        # A title longer than the column (a long party or goods name) is cut, never a 500.
        Notification(
            recipient=user,
            title=texts[user.pk][0][:200],
            body=texts[user.pk][1],
            url=url,
            created_at=now,
        )
        for user in recipients
    )
    for user in recipients:
        if user.email:
            own_title, own_body = texts[user.pk]
            outbox_enqueue(
                channel="email",
                payload={
                    "to": user.email,
                    "subject": f"[TradeAssure] {own_title}",
                    "body": f"{own_body}\n\n{settings.SITE_URL}{url}" if url else own_body,
                },
            )


# --- the same, for a batch of transitions (set-based sweeps) ---------------------------------


@dataclass(frozen=True)
class EventSpec:
    """One domain event of a batch (see `event_publish`)."""

    topic: str
    subject_type: str
    subject_id: int
    audience: tuple[int, ...]
    payload: dict[str, Any]


@dataclass(frozen=True)
class NoticeSpec:
    """One notification of a batch to a list of people (see `notify`)."""

    users: tuple[Any, ...]
    title: str
    body: str = ""
    url: str = ""


def events_publish_many(events: Sequence[EventSpec]) -> list[int]:
    """`event_publish` for a batch: the events and their audiences with one bulk insert each,
    ONE outbox row per event channel naming all of them (`{"event_ids": [...]}`), and one
    dispatcher kick after commit for the whole batch; returns the events' ids."""
    for spec in events:
        if not is_event_topic(spec.topic):
            raise ValueError(f"Unknown event topic {spec.topic!r}.")
    if not events:
        return []
    now = clock.now()
    pks = bulk_insert(
        DomainEvent,
        ["topic", "subject_type", "subject_id", "payload", "occurred_at"],
        [(s.topic, s.subject_type, s.subject_id, s.payload, now) for s in events],
        returning=True,
    )
    bulk_insert(
        DomainEvent.audience.through,
        ["domainevent_id", "organisation_id"],
        [
            (pk, org_id)
            for pk, spec in zip(pks, events, strict=True)
            for org_id in sorted({org for org in spec.audience if org})
        ],
    )
    # One outbox row per channel for the whole batch (its handler takes `event_ids`; the
    # webhook fan-out creates each endpoint's deliveries from them), not one per event.
    _outbox_enqueue_many(
        [
            (channel, {"event_ids": pks})
            for channel in getattr(settings, "OUTBOX_EVENT_CHANNELS", [])
        ]
    )
    return pks


# The most emails one outbox row of a batch carries (the dispatcher sends them in chunks of
# outbox.EMAIL_CHUNK, recording its progress in the row; a bigger batch makes several rows).
EMAILS_PER_ROW = 1000


def notify_many(notices: Sequence[NoticeSpec]) -> int:
    """`notify` for a batch: every bell notification with one bulk insert, the emails in outbox
    rows of up to EMAILS_PER_ROW each (`{"emails": [...]}`: the dispatcher sends each email with
    its own Message-ID and records its progress chunk by chunk), and one dispatcher kick after
    commit. Returns the notifications."""
    now = clock.now()
    rows: list[tuple[Any, ...]] = []
    emails: list[dict[str, Any]] = []
    site = settings.SITE_URL
    # A batch repeats the same few texts for many readers of the same few zones: each text is
    # written out once per zone.
    rendered: dict[tuple[str, str], str] = {}

    def render(text: str, zone: str) -> str:
        found = rendered.get((text, zone))
        if found is None:
            found = rendered[(text, zone)] = render_moments(text, zone)
        return found

    for notice in notices:
        for user in notice.users:
            if user is None or not user.is_active:
                continue
            # Each recipient reads the deadlines in their own time zone, as with `notify`.
            zone = getattr(user, "time_zone", "") or ""
            title = render(notice.title, zone)
            body = render(notice.body, zone)
            rows.append((user.pk, title[:200], body, notice.url, now, None))
            if user.email:
                emails.append(
                    {
                        "to": user.email,
                        "subject": f"[TradeAssure] {title}",
                        "body": f"{body}\n\n{site}{notice.url}" if notice.url else body,
                    }
                )
    bulk_insert(
        Notification, ["recipient_id", "title", "body", "url", "created_at", "read_at"], rows
    )
    _outbox_enqueue_many(
        [
            ("email", {"emails": emails[start : start + EMAILS_PER_ROW]})
            for start in range(0, len(emails), EMAILS_PER_ROW)
        ]
    )
    return len(rows)


def _outbox_enqueue_many(messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
    if not messages:
        return
    now = clock.now()
    give_up_at = now + OUTBOX_GIVE_UP_AFTER
    bulk_insert(
        OutboxMessage,
        [
            "channel",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "give_up_at",
            "last_error",
            "created_at",
            "sent_at",
        ],
        [
            (channel, payload, OutboxMessage.Status.PENDING, 0, now, give_up_at, "", now, None)
            for channel, payload in messages
        ],
    )
    _kick_once()
