"""Publishing domain events and notifying people, inside the caller's transaction."""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from tradeassure.core import clock
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
    transaction.on_commit(_kick_dispatcher)
    return message


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
