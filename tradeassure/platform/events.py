"""Publishing domain events and notifying people, inside the caller's transaction."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from tradeassure.core import clock
from tradeassure.core.bulk import bulk_insert
from tradeassure.platform.catalogue import is_event_topic
from tradeassure.platform.models import DomainEvent, Notification, OutboxMessage

OUTBOX_GIVE_UP_AFTER = timedelta(days=3)


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
    event = DomainEvent.objects.create(
        topic=topic,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload or {},
        occurred_at=clock.now(),
    )
    audience_ids = sorted({org_id for org_id in audience if org_id})
    if audience_ids:
        event.audience.set(audience_ids)
    for channel in getattr(settings, "OUTBOX_EVENT_CHANNELS", []):
        outbox_enqueue(channel=channel, payload={"event_id": event.pk})
    return event


def outbox_enqueue(*, channel: str, payload: dict[str, Any]) -> OutboxMessage:
    """Queue a side effect; it runs after commit, and is retried by the sweep until it succeeds."""
    now = clock.now()
    message = OutboxMessage.objects.create(
        channel=channel,
        payload=payload,
        next_attempt_at=now,
        give_up_at=now + OUTBOX_GIVE_UP_AFTER,
        created_at=now,
    )
    _kick_after_commit()
    return message


def _kick_after_commit() -> None:
    """One dispatcher kick (one Celery message) per transaction, however many rows it queued:
    the dispatcher delivers every pending row it finds, so a second kick would find none."""
    pending = transaction.get_connection().run_on_commit
    if not any(entry[1] is _kick_dispatcher for entry in pending):
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
    Notification.objects.bulk_create(
        # A title longer than the column (a long party or goods name) is cut, never a 500.
        Notification(recipient=user, title=title[:200], body=body, url=url, created_at=now)
        for user in recipients
    )
    for user in recipients:
        if user.email:
            outbox_enqueue(
                channel="email",
                payload={
                    "to": user.email,
                    "subject": f"[TradeAssure] {title}",
                    "body": f"{body}\n\n{settings.SITE_URL}{url}" if url else body,
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
    """`event_publish` for a batch: the events, their audiences and their outbox rows with one
    bulk insert each, and one dispatcher kick after commit for the whole batch; returns the
    events' ids."""
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
    _outbox_enqueue_many(
        [
            (channel, {"event_id": pk})
            for pk in pks
            for channel in getattr(settings, "OUTBOX_EVENT_CHANNELS", [])
        ]
    )
    return pks


def notify_many(notices: Sequence[NoticeSpec]) -> int:
    """`notify` for a batch: every bell notification with one bulk insert, every email as an
    outbox row with another, and one dispatcher kick after commit. Returns the notifications."""
    now = clock.now()
    rows: list[tuple[Any, ...]] = []
    emails: list[tuple[str, dict[str, Any]]] = []
    for notice in notices:
        email_body = (
            f"{notice.body}\n\n{settings.SITE_URL}{notice.url}" if notice.url else notice.body
        )
        for user in notice.users:
            if user is None or not user.is_active:
                continue
            rows.append((user.pk, notice.title, notice.body, notice.url, now, None))
            if user.email:
                emails.append(
                    (
                        "email",
                        {
                            "to": user.email,
                            "subject": f"[TradeAssure] {notice.title}",
                            "body": email_body,
                        },
                    )
                )
    bulk_insert(
        Notification, ["recipient_id", "title", "body", "url", "created_at", "read_at"], rows
    )
    _outbox_enqueue_many(emails)
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
    _kick_after_commit()
