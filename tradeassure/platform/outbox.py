"""Delivering outbox messages in batches: one handler per channel, retried with backoff.

A dispatcher run:

1. claims up to CLAIM_BATCH due rows in one short transaction (`FOR UPDATE SKIP LOCKED`, so two
   dispatchers never claim the same row): status CLAIMED, a claim token, a lease, attempts + 1;
   and commits, so no row lock is held while anything is delivered;
2. delivers outside any transaction: emails in chunks over one mail connection per batch, each
   chunk's hand-over recorded (`handed_over_at`) before it is handed to the mail server; other
   channels (webhook fan-out, …) one by one, each in its own transaction;
3. marks each row sent (a chunk at a time) or due again with backoff, but only while it still
   holds the claim.

Guarantee: at-least-once, with a stable id to deduplicate by. A worker that dies between claim
and hand-over leaves rows that were never sent; when the lease expires they are claimed again
and sent once. A worker that dies after handing a chunk to the mail server but before marking it
may have sent it: those rows (at most one chunk, EMAIL_CHUNK messages) are sent again when the
lease expires, with the same `Message-ID` header (`message_id_for`), so a mail server or client
that deduplicates by Message-ID shows the message once. Webhooks carry the stable
`TradeAssure-Delivery` id for the same reason (tradeassure.platform.webhooks). Nothing is lost.
"""

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils.module_loading import import_string

from tradeassure.core import clock
from tradeassure.platform.models import OutboxMessage, SystemAlert

logger = logging.getLogger(__name__)

DEFAULT_EMAIL_HANDLER = "tradeassure.platform.outbox.send_email"
# Rows claimed per transaction, and emails handed over between two marks (the most a crash can
# send twice).
CLAIM_BATCH = 200
EMAIL_CHUNK = 25

LEASE = timedelta(minutes=5)  # the default of settings.OUTBOX_LEASE_SECONDS


def _lease() -> timedelta:
    """A claim outlives a whole batch by far (OUTBOX_LEASE_SECONDS, 5 minutes by default); a
    batch running past half of it renews it."""
    return timedelta(seconds=getattr(settings, "OUTBOX_LEASE_SECONDS", LEASE.total_seconds()))


Status = OutboxMessage.Status


def message_id_for(message: OutboxMessage) -> str:
    """The email's Message-ID: the same on every attempt, so a repeat can be recognised."""
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "tradeassure.local"
    return f"<outbox.{message.pk}.{int(message.created_at.timestamp())}@{domain}>"


def email_for(message: OutboxMessage, mailer=None) -> EmailMessage:
    payload = message.payload
    return EmailMessage(
        subject=payload["subject"],
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[payload["to"]],
        headers={"Message-ID": message_id_for(message)},
        connection=mailer,
    )


def send_email(payload: dict) -> None:
    """The email channel's handler for one message (the batch path below sends many at once)."""
    EmailMessage(
        subject=payload["subject"],
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[payload["to"]],
    ).send()


def _handlers() -> dict[str, str]:
    return {"email": DEFAULT_EMAIL_HANDLER, **getattr(settings, "OUTBOX_HANDLERS", {})}


def handler_for(channel: str) -> Callable[[dict], None]:
    return import_string(_handlers()[channel])


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min … capped at 6 hours between attempts."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


@dataclass
class Claim:
    token: uuid.UUID
    messages: list[OutboxMessage]
    renewed_at: datetime


def outbox_dispatch_due(*, batch_size: int = 1000) -> int:
    """Deliver due messages, up to `batch_size`; returns how many were handled (sent or failed
    an attempt). Safe to run from many workers at once: each row is claimed by one of them."""
    handled = 0
    with _bookkeeping_without_fsync_wait():
        while handled < batch_size:
            claim = outbox_claim(limit=min(CLAIM_BATCH, batch_size - handled))
            if not claim.messages:
                break
            _deliver(claim)
            handled += len(claim.messages)
    return handled


@contextmanager
def _bookkeeping_without_fsync_wait() -> Iterator[None]:
    """On PostgreSQL, the dispatcher's own commits (claims, hand-overs, marks, the webhook
    fan-out) do not wait for the WAL flush (`synchronous_commit = off`): a database crash can
    lose only their last fraction of a second, which puts rows back to "due" (sent again, with
    the same Message-ID or delivery id) and never loses a message. Money and every other write
    of the worker keep their durable commits: the setting is reset when the dispatch ends."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET synchronous_commit")
        except DatabaseError:
            connection.close()  # a broken connection is not reused with the setting


def outbox_claim(*, limit: int) -> Claim:
    """Claim up to `limit` due rows (pending and due, or claimed by a run whose lease expired),
    in one transaction that commits before anything is delivered."""
    now = clock.now()
    token = uuid.uuid4()
    with transaction.atomic():
        expired = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=Status.CLAIMED, lease_expires_at__lte=now)
            .order_by("lease_expires_at", "id")[:limit]
        )
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")[: limit - len(expired)]
        )
        messages = expired + due
        if messages:
            OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
                status=Status.CLAIMED,
                claim=token,
                lease_expires_at=now + _lease(),
                attempts=F("attempts") + 1,
            )
    for message in messages:
        message.status, message.claim, message.attempts = (
            Status.CLAIMED,
            token,
            message.attempts + 1,
        )
    return Claim(token=token, messages=messages, renewed_at=now)


def _deliver(claim: Claim) -> None:
    emails = [m for m in claim.messages if m.channel == "email"]
    if emails and _handlers()["email"] == DEFAULT_EMAIL_HANDLER:
        _deliver_emails(claim, emails)
        others = [m for m in claim.messages if m.channel != "email"]
    else:
        others = claim.messages
    for message in others:
        _deliver_one(claim, message)


def _deliver_emails(claim: Claim, emails: list[OutboxMessage]) -> None:
    """One mail connection for the batch; each chunk's hand-over is recorded, then the chunk is
    sent message by message (so one refused address fails only its own row), then marked sent
    (and the batch's lease renewed if it is running long)."""
    mailer = get_connection()
    try:
        mailer.open()
        for start in range(0, len(emails), EMAIL_CHUNK):
            chunk = _hand_over(claim, emails[start : start + EMAIL_CHUNK])
            sent: list[OutboxMessage] = []
            for message in chunk:
                try:
                    mailer.send_messages([email_for(message, mailer)])
                except Exception as exc:
                    _failed(claim, message, exc)
                    mailer.close()  # a broken session is reopened by the next send
                else:
                    sent.append(message)
            _mark_sent(claim, sent)
            _renew_if_half_gone(claim)
    finally:
        mailer.close()


def _hand_over(claim: Claim, chunk: list[OutboxMessage]) -> list[OutboxMessage]:
    """Record that these rows are about to be handed over; returns the ones this run still
    holds (all of them, unless the batch outlived its lease and another run took some)."""
    ids = [m.pk for m in chunk]
    mine = OutboxMessage.objects.filter(pk__in=ids, claim=claim.token, status=Status.CLAIMED)
    if mine.update(handed_over_at=clock.now()) == len(ids):
        return chunk
    held = set(mine.values_list("pk", flat=True))
    return [m for m in chunk if m.pk in held]


def _deliver_one(claim: Claim, message: OutboxMessage) -> None:
    """A non-email channel: its handler and the row's outcome commit together, so a handler
    that writes (the webhook fan-out) takes effect once."""
    try:
        with transaction.atomic():
            current = (
                OutboxMessage.objects.select_for_update()
                .filter(pk=message.pk, claim=claim.token, status=Status.CLAIMED)
                .first()
            )
            if current is None:
                return  # our lease expired and another run took the row over
            OutboxMessage.objects.filter(pk=message.pk).update(handed_over_at=clock.now())
            handler_for(message.channel)(message.payload)
            _mark_sent(claim, [message])
    except Exception as exc:
        _failed(claim, message, exc)


def _mark_sent(claim: Claim, messages: list[OutboxMessage]) -> None:
    """Mark these rows sent, if this run still holds them."""
    if messages:
        OutboxMessage.objects.filter(
            pk__in=[m.pk for m in messages], claim=claim.token, status=Status.CLAIMED
        ).update(status=Status.SENT, sent_at=clock.now(), last_error="", lease_expires_at=None)


def _renew_if_half_gone(claim: Claim) -> None:
    """Extend the lease of the batch's remaining rows once half of it has passed (a slow mail
    server), so a live run's rows are not taken over; a fast batch never needs it."""
    now = clock.now()
    if now - claim.renewed_at < _lease() / 2:
        return
    OutboxMessage.objects.filter(claim=claim.token, status=Status.CLAIMED).update(
        lease_expires_at=now + _lease()
    )
    claim.renewed_at = now


def _failed(claim: Claim, message: OutboxMessage, exc: Exception) -> None:
    now = clock.now()
    error = f"{type(exc).__name__}: {exc}"[:2000]
    logger.warning("Outbox %s failed: %s", message, error)
    with transaction.atomic():
        mine = OutboxMessage.objects.filter(pk=message.pk, claim=claim.token, status=Status.CLAIMED)
        if now >= message.give_up_at:
            if mine.update(status=Status.FAILED, last_error=error, lease_expires_at=None):
                SystemAlert.objects.create(
                    source="outbox", message=f"Gave up on {message}: {error}", created_at=now
                )
        else:
            mine.update(
                status=Status.PENDING,
                last_error=error,
                lease_expires_at=None,
                next_attempt_at=now + retry_delay(message.attempts),
            )
