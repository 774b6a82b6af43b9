"""`/api/v1/orders/{order_id}/messages/`: list (cursor, oldest first), post, mark read.

POSTs go through the Idempotency-Key cycle of every API view; outsiders get 404."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from orders.conversation import selectors, services
from orders.conversation.models import OrderMessage
from orders.conversation.serializers import (
    OrderMessageInputSerializer,
    OrderMessageSerializer,
    OrderMessagesReadInputSerializer,
    OrderMessageUploadInputSerializer,
    OrderReadReceiptSerializer,
)
from orders.error_codes import OrderErrorCode
from orders.models import Order
from tradeassure.core.errors import NotFound
from tradeassure.core.uploads import upload_response
from tradeassure.platform.api.pagination import AscendingCursorPagination
from tradeassure.platform.api.viewsets import ApiViewSet

_ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(
        summary="The order's conversation, oldest first",
        description="The buyer organisation and the supplier (and permitted staff). A message "
        "staff hid shows `hidden: true` with no text or files.",
        parameters=[_ORDER_ID],
    ),
    create=extend_schema(
        summary="Write in the order's conversation (buyer or supplier)",
        description="JSON for text, multipart/form-data for files (checked by content). At most "
        "10,000 characters; a few messages a minute per user (429 `message_rate_limited`). "
        "Notifies the other side and publishes `order.message_posted`.",
        parameters=[_ORDER_ID],
        request={
            "application/json": OrderMessageInputSerializer,
            "multipart/form-data": OrderMessageUploadInputSerializer,
        },
        responses={201: OrderMessageSerializer},
    ),
)
class OrderMessageViewSet(mixins.ListModelMixin, ApiViewSet):
    queryset = OrderMessage.objects.none()
    serializer_class = OrderMessageSerializer
    pagination_class = AscendingCursorPagination
    filter_backends: list = []
    parser_classes = [JSONParser, MultiPartParser]

    def _order(self) -> Order:
        try:
            order_id = int(self.kwargs["order_id"])
        except (TypeError, ValueError) as exc:
            raise NotFound("No such order.", code=OrderErrorCode.ORDER_NOT_FOUND) from exc
        return selectors.order_for_conversation(user=self.request.user, pk=order_id)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return OrderMessage.objects.none()
        return selectors.order_messages(order=self._order())

    def create(self, request, *args, **kwargs):
        order = self._order()
        if (request.content_type or "").startswith("multipart/"):
            serializer = OrderMessageUploadInputSerializer(data=request.data)
        else:
            serializer = OrderMessageInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        message = services.order_message_post(
            order=order, actor=request.user, body=data["body"], files=data.get("files", [])
        )
        message = selectors.order_messages(order=order).get(pk=message.pk)
        return Response(
            OrderMessageSerializer(message, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Mark the conversation read for your organisation",
        description="Up to a message id (default: the newest); receipts never move back.",
        parameters=[_ORDER_ID],
        request=OrderMessagesReadInputSerializer,
        responses={200: OrderReadReceiptSerializer},
    )
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def read(self, request, *args, **kwargs):
        order = self._order()
        serializer = OrderMessagesReadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        receipt = services.order_messages_mark_read(
            order=order, actor=request.user, up_to=serializer.validated_data["up_to"]
        )
        return Response(OrderReadReceiptSerializer(receipt).data)

    @extend_schema(
        summary="Download a message's file (the parties and permitted staff)",
        parameters=[
            _ORDER_ID,
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH),
            OpenApiParameter("attachment_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        description=(
            "The bytes, as `application/octet-stream` (an attachment); the attachment's "
            "`content_type` in the message says what they are."
        ),
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file (PDF or image), as an attachment."
            )
        },
    )
    @action(detail=True, methods=["get"], url_path=r"files/(?P<attachment_id>[^/.]+)")
    def file(self, request, pk=None, attachment_id=None, **kwargs):
        order = self._order()
        try:
            message_pk, file_pk = int(str(pk)), int(str(attachment_id))
        except ValueError as exc:
            raise NotFound("No such file.", code=OrderErrorCode.MESSAGE_NOT_FOUND) from exc
        attachment = selectors.message_attachment_for_user(
            user=request.user, order_pk=order.pk, message_pk=message_pk, pk=file_pk
        )
        return upload_response(
            name=attachment.stored_name,
            download_name=attachment.original_name,
            content_type="application/octet-stream",
        )
