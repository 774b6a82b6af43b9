"""Delivering outbox messages: one handler per channel, retried with backoff until give-up."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils.module_loading import import_string

from tradeassure.core import clock
from tradeassure.platform.models import OutboxMessage, SystemAlert

logger = logging.getLogger(__name__)


def send_email(payload: dict) -> None:
    send_mail(
        subject=payload["subject"],
        message=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[payload["to"]],
    )


def handler_for(channel: str) -> Callable[[dict], None]:
    handlers = {
        "email": "tradeassure.platform.outbox.send_email",
        **getattr(settings, "OUTBOX_HANDLERS", {}),
    }
    return import_string(handlers[channel])


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min … capped at 6 hours between attempts."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


def outbox_dispatch_due(*, batch_size: int = 100) -> int:
    """Deliver due messages; returns how many were handled. Safe to run from many workers at once.

    Each message is claimed under a row lock with SKIP LOCKED, so two dispatchers never deliver the
    same message; a crash before commit leaves it pending for the next sweep (at-least-once).
    """
    handled = 0
    while handled < batch_size:
        with transaction.atomic():
            message = (
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=clock.now())
                .order_by("next_attempt_at", "id")
                .first()
            )
            if message is None:
                break
            _deliver(message)
        handled += 1
    return handled


def _deliver(message: OutboxMessage) -> None:
    now = clock.now()
    message.attempts += 1
    try:
        handler_for(message.channel)(message.payload)
    except Exception as exc:
        message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if now >= message.give_up_at:
            message.status = OutboxMessage.Status.FAILED
            SystemAlert.objects.create(
                source="outbox",
                message=f"Gave up on {message}: {message.last_error}",
                created_at=now,
            )
        else:
            message.next_attempt_at = now + retry_delay(message.attempts)
        logger.warning("Outbox %s failed: %s", message, message.last_error)
    else:
        message.status = OutboxMessage.Status.SENT
        message.sent_at = now
        message.last_error = ""
    message.save(update_fields=["attempts", "status", "sent_at", "last_error", "next_attempt_at"])
