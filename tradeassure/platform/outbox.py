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
from collections.abc import Callable, Iterable, Iterator
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


def message_id_for(message: OutboxMessage, index: int | None = None) -> str:
    """The email's Message-ID: the same on every attempt, so a repeat can be recognised. The
    emails of a batched row (`payload["emails"]`) are told apart by their `index` in it; an
    email split off a batched row after a failure keeps the id it had there."""
    if index is None and "message_id" in message.payload:
        return str(message.payload["message_id"])
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "tradeassure.local"
    number = f"{message.pk}" if index is None else f"{message.pk}.{index}"
    return f"<outbox.{number}.{int(message.created_at.timestamp())}@{domain}>"


def email_for(
    message: OutboxMessage, mailer=None, *, index: int | None = None, payload: dict | None = None
) -> EmailMessage:
    """The EmailMessage of a one-email row, or of email `index` (its `payload`) of a batch."""
    payload = message.payload if payload is None else payload
    return EmailMessage(
        subject=payload["subject"],
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[payload["to"]],
        headers={"Message-ID": message_id_for(message, index)},
        connection=mailer,
    )


def batched_emails(message: OutboxMessage) -> list[dict] | None:
    """The emails of a batched email row (`{"emails": [...]}`), or None for a one-email row."""
    emails = message.payload.get("emails") if message.channel == "email" else None
    return emails if isinstance(emails, list) else None


def queued_emails(messages: Iterable[OutboxMessage]) -> list[dict]:
    """Every email these outbox rows carry, one dict each (`to`, `subject`, `body`): a one-email
    row's payload, or each email of a batched row; a row split off a batch (it names its
    `message_id`) is counted in its batch. For admin views and tests that count what was queued."""
    found: list[dict] = []
    for message in messages:
        if message.channel != "email" or "message_id" in message.payload:
            continue
        batch = batched_emails(message)
        found.extend(batch if batch is not None else [message.payload])
    return found


def send_email(payload: dict) -> None:
    """The email channel's handler for one message (the batch path below sends many at once)."""
    for email in payload.get("emails", [payload]):
        EmailMessage(
            subject=email["subject"],
            body=email["body"],
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[email["to"]],
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


@dataclass
class _Email:
    """One email to hand over: a one-email row (`index` None) or email `index` of a batch."""

    message: OutboxMessage
    index: int | None
    payload: dict


def _emails_of(messages: list[OutboxMessage]) -> list[_Email]:
    """Every email still to send of the claimed email rows: a batched row from the first email
    not yet confirmed sent (`emails_done`) on."""
    found: list[_Email] = []
    for message in messages:
        batch = batched_emails(message)
        if batch is None:
            found.append(_Email(message, None, message.payload))
        else:
            found.extend(
                _Email(message, index, batch[index])
                for index in range(message.emails_done, len(batch))
            )
    return found


def _deliver_emails(claim: Claim, emails: list[OutboxMessage]) -> None:
    """One mail connection for the batch; each chunk's hand-over is recorded, then the chunk is
    sent message by message (so one refused address fails only its own email), then marked
    sent (and the batch's lease renewed if it is running long).

    A batched row (many emails in one row, as a set-based sweep writes them) counts its emails
    confirmed sent in `emails_done`, chunk by chunk: a crash repeats at most the chunk in hand,
    with the same Message-IDs. An email of a batched row that fails is split off into a row of
    its own (same Message-ID), retried with backoff like any other, and the batch goes on."""
    mailer = get_connection()
    try:
        mailer.open()
        pending = _emails_of(emails)
        for start in range(0, len(pending), EMAIL_CHUNK):
            chunk = pending[start : start + EMAIL_CHUNK]
            held = {
                m.pk
                for m in _hand_over(claim, list({e.message.pk: e.message for e in chunk}.values()))
            }
            sent: list[_Email] = []
            failed: list[tuple[_Email, Exception]] = []
            for email in chunk:
                if email.message.pk not in held:
                    continue
                try:
                    mailer.send_messages(
                        [email_for(email.message, mailer, index=email.index, payload=email.payload)]
                    )
                except Exception as exc:
                    failed.append((email, exc))
                    mailer.close()  # a broken session is reopened by the next send
                else:
                    sent.append(email)
            _chunk_done(claim, sent, failed)
            _renew_if_half_gone(claim)
    finally:
        mailer.close()


def _chunk_done(claim: Claim, sent: list[_Email], failed: list[tuple[_Email, Exception]]) -> None:
    """Record a chunk's outcome: one-email rows sent or due again; each batched row's count of
    emails done moved past the chunk (sent when all are), its failed emails split off."""
    for email, exc in failed:
        if email.index is None:
            _failed(claim, email.message, exc)
    _mark_sent(claim, [e.message for e in sent if e.index is None])
    batched: dict[int, OutboxMessage] = {}
    last: dict[int, int] = {}
    for email in [*sent, *(e for e, _ in failed)]:
        if email.index is not None:
            batched[email.message.pk] = email.message
            last[email.message.pk] = max(last.get(email.message.pk, -1), email.index)
    if not batched:
        return
    split = [(e, exc) for e, exc in failed if e.index is not None]
    with transaction.atomic():
        if split:
            _split_off(split)
        for pk, message in batched.items():
            done = last[pk] + 1
            total = len(batched_emails(message) or [])
            mine = OutboxMessage.objects.filter(pk=pk, claim=claim.token, status=Status.CLAIMED)
            if done >= total:
                mine.update(
                    status=Status.SENT,
                    emails_done=done,
                    sent_at=clock.now(),
                    last_error="",
                    lease_expires_at=None,
                )
            else:
                mine.update(emails_done=done)
            message.emails_done = done


def _split_off(failed: list[tuple[_Email, Exception]]) -> None:
    """Failed emails of batched rows become rows of their own, due again after the first
    backoff, keeping the Message-ID they had in the batch and its give-up time."""
    now = clock.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(
            channel="email",
            payload={
                **email.payload,
                "message_id": message_id_for(email.message, email.index),
            },
            status=Status.PENDING,
            attempts=1,
            next_attempt_at=now + retry_delay(1),
            give_up_at=email.message.give_up_at,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            created_at=now,
        )
        for email, exc in failed
    )
    for email, exc in failed:
        logger.warning(
            "Outbox %s email %s failed: %s", email.message, email.index, f"{type(exc).__name__}"
        )


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
