"""Writes to the order conversation: post a message, mark the thread read, hide a message (staff).

Posting never locks the order row (a conversation must not wait on, or block, the order's money
moves); the message, its attachment rows, the other side's notification and the
`order.message_posted` event are written in one transaction, and files stored for a post that
then fails are deleted again."""

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import transaction

from accounts.models import User
from accounts.team import Capability, team_require
from orders.conversation.models import OrderMessage, OrderMessageAttachment, OrderReadReceipt
from orders.error_codes import OrderErrorCode
from orders.models import Order, Party
from orders.parties import order_buyers, order_supplier_staff, party_of
from orders.topics import OrderTopic
from tradeassure.core import clock
from tradeassure.core.errors import DomainError, NotAllowed, NotFound, ValidationFailed
from tradeassure.core.uploads import DOCUMENT_KINDS, upload_check, upload_delete, upload_store
from tradeassure.platform.events import event_publish, notify

ATTACHMENT_FOLDER = "order-messages"
HIDE_PERMISSION = "orders.hide_ordermessage"


class MessageRateLimited(DomainError):
    """Too many messages from one user in the last minute (answered as 429)."""

    status = 429
    code = OrderErrorCode.MESSAGE_RATE_LIMITED
    title = "Too many messages."


def _conversation_party(order: Order, user: User) -> str:
    party = party_of(order=order, user=user)
    if party not in (Party.BUYER, Party.SUPPLIER):
        raise NotAllowed(
            "Only the buyer and the supplier write in the order conversation.",
            code=OrderErrorCode.MESSAGE_NOT_A_PARTY,
        )
    return str(party)


def _organisation_of(order: Order, party: str) -> int:
    if party == Party.BUYER:
        return order.buyer_organisation_id
    return order.supplier.organisation_id


def _check_body(body: str, files: Sequence[File]) -> str:
    limit = settings.ORDER_CONVERSATION["MAX_CHARACTERS"]
    if len(body) > limit:
        message = f"A message has at most {limit:,} characters; this one has {len(body):,}."
        raise ValidationFailed(
            message, code=OrderErrorCode.MESSAGE_TOO_LONG, fields={"body": [message]}
        )
    if not body.strip() and not files:
        message = "Write a message or attach a file."
        raise ValidationFailed(
            message, code=OrderErrorCode.MESSAGE_EMPTY, fields={"body": [message]}
        )
    return body.strip()


def _check_files(files: Sequence[File]) -> None:
    limit = settings.ORDER_CONVERSATION["MAX_FILES_PER_MESSAGE"]
    if len(files) > limit:
        message = f"Attach at most {limit} files to a message."
        raise ValidationFailed(message, fields={"files": [message]})
    for file in files:
        try:
            upload_check(file=file, allowed_kinds=DOCUMENT_KINDS)
        except ValidationFailed as error:
            name = str(getattr(file, "name", "") or "file")[:80]
            message = f"{name}: {error.message}"
            raise ValidationFailed(message, code=error.code, fields={"files": [message]}) from None


def _check_rate(user: User) -> None:
    limit = settings.ORDER_CONVERSATION["RATE_PER_MINUTE"]
    since = clock.now() - timedelta(minutes=1)
    recent = OrderMessage.objects.filter(author=user, created_at__gt=since).count()
    if recent >= limit:
        raise MessageRateLimited(
            f"You have sent {limit} messages in the last minute; wait a moment and send again."
        )


def order_message_post(
    *, order: Order, actor: User, body: str, files: Sequence[File] = ()
) -> OrderMessage:
    """The buyer or the supplier writes in the order's thread (text, files, or both).

    Checks everything before writing: the author is a party, the text is within the limit, every
    file passes the content checks, the author is under the per-minute rate. Then the other side
    is notified and `order.message_posted` is published to both organisations."""
    files = [file for file in files if file is not None]
    party = _conversation_party(order, actor)
    team_require(actor, Capability.TALK)
    body = _check_body(body, files)
    _check_files(files)
    _check_rate(actor)
    stored = []
    try:
        with transaction.atomic():
            for file in files:
                stored.append(upload_store(file=file, folder=ATTACHMENT_FOLDER))
            message = OrderMessage.objects.create(
                order=order,
                author=actor,
                author_party=party,
                author_organisation_id=_organisation_of(order, party),
                body=body,
                created_at=clock.now(),
            )
            OrderMessageAttachment.objects.bulk_create(
                OrderMessageAttachment(
                    message=message,
                    stored_name=item.name,
                    original_name=item.original_name,
                    content_type=item.content_type,
                    size=item.size,
                )
                for item in stored
            )
            # The author has read their own thread up to here.
            _receipt_advance(order, _organisation_of(order, party), message.pk)
            others = order_supplier_staff(order) if party == Party.BUYER else order_buyers(order)
            who = "the buyer" if party == Party.BUYER else "the supplier"
            excerpt = body[:300] + ("…" if len(body) > 300 else "")
            if stored:
                excerpt += f"\n({len(stored)} file{'s' if len(stored) > 1 else ''} attached)"
            notify(
                users=others,
                title=f"{order.reference}: new message from {who}",
                body=excerpt.strip(),
                url=order.get_absolute_url() + "#conversation",
            )
            event_publish(
                topic=OrderTopic.MESSAGE_POSTED,
                subject_type="order",
                subject_id=order.pk,
                audience=[order.buyer_organisation_id, order.supplier.organisation_id],
                payload={
                    "order": order.reference,
                    "message": message.pk,
                    "author": party,
                    "body": body,
                    "attachments": len(stored),
                },
            )
    except BaseException:
        for item in stored:
            upload_delete(name=item.name)
        raise
    return message


def _receipt_advance(order: Order, organisation_id: int, message_id: int) -> None:
    """Move the organisation's receipt forward to `message_id` (never back)."""
    now = clock.now()
    receipt, created = OrderReadReceipt.objects.get_or_create(
        order=order,
        organisation_id=organisation_id,
        defaults={"last_read_message_id": message_id, "read_at": now},
    )
    if not created:
        OrderReadReceipt.objects.filter(pk=receipt.pk, last_read_message_id__lt=message_id).update(
            last_read_message_id=message_id, read_at=now
        )


def order_messages_mark_read(
    *, order: Order, actor: User, up_to: int | None = None
) -> OrderReadReceipt:
    """The actor's organisation has read the thread up to message `up_to` (default: the last).

    Only the two parties keep receipts (staff reading a thread are refused). A message id not in
    this order is refused; a receipt never moves back."""
    party = _conversation_party(order, actor)
    messages = OrderMessage.objects.filter(order=order)
    if up_to is None:
        up_to = messages.order_by("-id").values_list("pk", flat=True).first() or 0
    elif not messages.filter(pk=up_to).exists():
        message = "No such message on this order."
        raise NotFound(message, code=OrderErrorCode.MESSAGE_NOT_FOUND)
    organisation_id = _organisation_of(order, party)
    with transaction.atomic():
        _receipt_advance(order, organisation_id, up_to)
    return OrderReadReceipt.objects.get(order=order, organisation_id=organisation_id)


def order_message_hide(*, message: OrderMessage | int, actor: User, reason: str) -> OrderMessage:
    """Staff hide a message, with a reason; who, when and why are kept on the row.

    The text and files stay stored (a mediator may still read them); the parties see
    "hidden by staff". Hiding twice keeps the first record."""
    if not (actor.is_active and actor.is_staff and actor.has_perm(HIDE_PERMISSION)):
        raise NotAllowed("Only staff with the permission may hide a message.")
    reason = reason.strip()
    if not reason:
        raise ValidationFailed(
            "Say why the message is hidden.", fields={"reason": ["Say why it is hidden."]}
        )
    if len(reason) > 500:
        raise ValidationFailed(
            "The reason has at most 500 characters.", fields={"reason": ["500 characters at most."]}
        )
    pk = message if isinstance(message, int) else message.pk
    with transaction.atomic():
        row = OrderMessage.objects.select_for_update().filter(pk=pk).first()
        if row is None:
            raise NotFound("No such message.", code=OrderErrorCode.MESSAGE_NOT_FOUND)
        if row.hidden_at is None:
            row.hidden_at = clock.now()
            row.hidden_by = actor
            row.hidden_reason = reason
            row.save(update_fields=["hidden_at", "hidden_by", "hidden_reason"])
    return row
