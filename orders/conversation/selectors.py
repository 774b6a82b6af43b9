"""Reads of the order conversation, always through the orders the user may see."""

from django.db.models import Count, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from orders.conversation.models import OrderMessage, OrderMessageAttachment, OrderReadReceipt
from orders.error_codes import OrderErrorCode
from orders.models import Order
from orders.selectors import orders_visible_to
from tradeassure.core.errors import NotFound

VIEW_PERMISSION = "orders.view_ordermessage"


def may_read_conversation(*, order: Order, user) -> bool:
    """The order's two organisations, and staff with the permission to read messages."""
    if not user.is_authenticated or not user.is_active:
        return False
    organisation_id = user.organisation_id
    if organisation_id and organisation_id in (
        order.buyer_organisation_id,
        order.supplier.organisation_id,
    ):
        return True
    return bool(user.is_staff and user.has_perm(VIEW_PERMISSION))


def order_messages(*, order: Order) -> QuerySet[OrderMessage]:
    """The whole thread, oldest first, with authors and files (three queries, any length)."""
    return (
        OrderMessage.objects.filter(order=order)
        .select_related("author", "hidden_by")
        .prefetch_related(
            Prefetch("attachments", queryset=OrderMessageAttachment.objects.order_by("id"))
        )
        .order_by("id")
    )


def order_for_conversation(*, user, pk: int) -> Order:
    """The order whose thread the user may read, or NotFound (outsiders never learn it exists)."""
    order = orders_visible_to(user).select_related("supplier").filter(pk=pk).first()
    if order is None or not may_read_conversation(order=order, user=user):
        raise NotFound("No such order.", code=OrderErrorCode.ORDER_NOT_FOUND)
    return order


def message_attachment_for_user(
    *, user, order_pk: int, message_pk: int, pk: int
) -> OrderMessageAttachment:
    """A file of a message, for the parties and permitted staff; a hidden message's files only
    for staff. Everyone else: NotFound."""
    order = order_for_conversation(user=user, pk=order_pk)
    attachment = (
        OrderMessageAttachment.objects.select_related("message")
        .filter(pk=pk, message_id=message_pk, message__order=order)
        .first()
    )
    if attachment is None or (attachment.message.is_hidden and not user.is_staff):
        raise NotFound("No such file.", code=OrderErrorCode.MESSAGE_NOT_FOUND)
    return attachment


def orders_with_unread_counts(orders: QuerySet[Order], *, organisation_id: int | None):
    """Annotate `unread_messages`: visible messages from the other side after the organisation's
    receipt. Two correlated subqueries in the same SELECT: constant queries for any page."""
    if not organisation_id:
        return orders.annotate(unread_messages=Value(0, output_field=IntegerField()))
    last_read = OrderReadReceipt.objects.filter(
        order_id=OuterRef("pk"), organisation_id=organisation_id
    ).values("last_read_message_id")[:1]
    unread = (
        OrderMessage.objects.filter(
            order_id=OuterRef("pk"),
            hidden_at__isnull=True,
            pk__gt=OuterRef("_last_read_message"),
        )
        .exclude(author_organisation_id=organisation_id)
        .order_by()
        .values("order_id")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return orders.annotate(
        _last_read_message=Coalesce(Subquery(last_read), Value(0)),
        unread_messages=Coalesce(Subquery(unread, output_field=IntegerField()), Value(0)),
    )


def order_read_receipts(*, order: Order) -> dict[int, int]:
    """organisation id → the last message id it has read."""
    return dict(
        OrderReadReceipt.objects.filter(order=order).values_list(
            "organisation_id", "last_read_message_id"
        )
    )
