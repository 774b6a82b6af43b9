"""Serializers for the API's own resources. Output and input serializers are kept apart."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tradeassure.platform.models import (
    DomainEvent,
    Notification,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class EventTopicField(serializers.CharField):
    """An event's topic: published as the enum of the catalogue's topics (`EventTopic`)."""


class TopicSubscriptionField(serializers.CharField):
    """A webhook endpoint's topic or `<prefix>.*` pattern (`TopicSubscription` in the schema).

    Checked against the catalogue by the service, so the browser form gets the same answer."""


class EventSubjectSerializer(serializers.Serializer):
    type = serializers.CharField(source="subject_type", help_text="e.g. `order`, `dispute`.")
    id = serializers.IntegerField(source="subject_id")


class EventSerializer(serializers.ModelSerializer):
    """The same envelope a webhook delivery's body carries."""

    topic = EventTopicField(read_only=True)
    subject = EventSubjectSerializer(source="*")
    # A declared field: the serializer metaclass moves it off the class, so it does not shadow
    # Serializer.data at run time as the stubs assume.
    data = serializers.DictField(source="payload", help_text="Topic-specific facts.")  # type: ignore[assignment]

    class Meta:
        model = DomainEvent
        fields = ["id", "topic", "subject", "occurred_at", "data"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    is_read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "title", "body", "url", "created_at", "read_at", "is_read"]
        read_only_fields = fields

    def get_is_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class MarkedReadSerializer(serializers.Serializer):
    marked_read = serializers.IntegerField(help_text="How many notifications were marked read.")


class WebhookEndpointSerializer(serializers.ModelSerializer):
    secret_hint = serializers.SerializerMethodField(
        help_text="The last 4 characters of the signing secret (the secret is shown once)."
    )
    topics = serializers.ListField(
        child=TopicSubscriptionField(), help_text="Topics received; empty = every topic."
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "topics", "is_active", "secret_hint", "created_at"]
        read_only_fields = fields

    def get_secret_hint(self, endpoint: WebhookEndpoint) -> str:
        return f"…{endpoint.secret[-4:]}"


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.SerializerMethodField(
        help_text="The signing secret. Shown only in this response: store it now."
    )

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        return self.context["secret"]


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    topics = serializers.ListField(
        child=TopicSubscriptionField(max_length=80),
        required=False,
        max_length=50,
        help_text="Topics to receive, e.g. `order.confirmed` or `order.*`; empty = all.",
    )


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    topics = serializers.ListField(
        child=TopicSubscriptionField(max_length=80),
        required=False,
        max_length=50,
        help_text="Replaces the topics, e.g. `order.confirmed` or `order.*`; empty = all.",
    )
    is_active = serializers.BooleanField(
        required=False, help_text="Pause (false) or resume (true) deliveries."
    )


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "response_status",
            "response_body",
            "error",
            "succeeded",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    topic = EventTopicField(read_only=True)
    event_id = serializers.IntegerField(allow_null=True, read_only=True)
    endpoint_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint_id",
            "event_id",
            "topic",
            "is_test",
            "status",
            "attempts",
            "next_attempt_at",
            "give_up_at",
            "last_response_status",
            "last_error",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.SerializerMethodField(help_text="The body sent (an event envelope).")
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload", "attempt_log"]
        read_only_fields = fields

    @extend_schema_field(EventSerializer)
    def get_payload(self, delivery: WebhookDelivery) -> dict:
        return delivery.payload
