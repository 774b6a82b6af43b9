"""The order conversation over the API (`/api/v1/orders/{order_id}/messages/`)."""

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.conversation.models import OrderMessage, OrderMessageAttachment, OrderReadReceipt


class OrderMessageInputSerializer(serializers.Serializer):
    """JSON: a text message. The 10,000-character limit is the service's (a clear 400)."""

    body = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text=f"At most {settings.ORDER_CONVERSATION['MAX_CHARACTERS']:,} characters.",
    )


class OrderMessageUploadInputSerializer(serializers.Serializer):
    """multipart/form-data: optional text and up to the limit of `files` (PDF, PNG, JPEG, WebP)."""

    body = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=False
    )
    files = serializers.ListField(
        child=serializers.FileField(), required=False, default=list, max_length=20
    )


class OrderMessagesReadInputSerializer(serializers.Serializer):
    up_to = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The last message id your organisation has read (default: the newest).",
    )


class OrderMessageAttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = OrderMessageAttachment
        fields = ["id", "original_name", "content_type", "size", "download_url"]
        read_only_fields = fields

    def get_download_url(self, attachment: OrderMessageAttachment) -> str:
        """The API download (an API key works there; the page's URL needs a browser session)."""
        return reverse(
            "api:order-message-file",
            kwargs={
                "order_id": attachment.message.order_id,
                "pk": attachment.message_id,
                "attachment_id": attachment.pk,
            },
        )


class OrderMessageSerializer(serializers.ModelSerializer):
    """A hidden message shows no text and no files to the parties (staff still see them)."""

    body = serializers.SerializerMethodField()
    attachments = serializers.SerializerMethodField()
    hidden = serializers.SerializerMethodField()

    class Meta:
        model = OrderMessage
        fields = ["id", "author_party", "body", "attachments", "created_at", "hidden"]
        read_only_fields = fields

    def _shown(self, message: OrderMessage) -> bool:
        request = self.context.get("request")
        return not message.is_hidden or bool(request and request.user.is_staff)

    def get_body(self, message: OrderMessage) -> str:
        return message.body if self._shown(message) else ""

    @extend_schema_field(OrderMessageAttachmentSerializer(many=True))
    def get_attachments(self, message: OrderMessage) -> list:
        if not self._shown(message):
            return []
        return list(OrderMessageAttachmentSerializer(message.attachments.all(), many=True).data)

    def get_hidden(self, message: OrderMessage) -> bool:
        return message.is_hidden


class OrderReadReceiptSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderReadReceipt
        fields = ["organisation", "last_read_message_id", "read_at"]
        read_only_fields = fields
