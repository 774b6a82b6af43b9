"""The API's own resources: the events feed, notifications, webhook endpoints and deliveries."""

import django_filters
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.team import Capability, team_require
from tradeassure.platform.api import filters as api_filters
from tradeassure.platform.api import selectors, services
from tradeassure.platform.api.pagination import AscendingCursorPagination
from tradeassure.platform.api.serializers import (
    EventSerializer,
    MarkedReadSerializer,
    NotificationSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreateSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
)
from tradeassure.platform.api.viewsets import ApiViewSet, ReadOnlyApiViewSet
from tradeassure.platform.models import (
    DomainEvent,
    Notification,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)


class EventFilter(django_filters.FilterSet):
    topic = django_filters.CharFilter(help_text="Exact topic, e.g. `order.confirmed`.")
    topic_prefix = django_filters.CharFilter(
        field_name="topic", lookup_expr="startswith", help_text="e.g. `order.`"
    )
    subject_type = django_filters.CharFilter()
    subject_id = api_filters.IntegerFilter()
    occurred_after = api_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = api_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = DomainEvent
        fields = ["topic", "subject_type", "subject_id"]


@extend_schema_view(
    list=extend_schema(
        summary="The events feed",
        description=(
            "Every domain event your organisation may see, oldest first: the same envelopes "
            "webhooks deliver. Poll it by following `next` (cursor pagination; a cursor stays "
            "valid, so store the last `next` and resume from it)."
        ),
    ),
    retrieve=extend_schema(summary="One event"),
)
class EventViewSet(ReadOnlyApiViewSet):
    queryset = DomainEvent.objects.none()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]
    pagination_class = AscendingCursorPagination

    def get_queryset(self):
        return selectors.events_for(self.request.user)


class NotificationFilter(django_filters.FilterSet):
    unread = api_filters.BooleanFilter(
        field_name="read_at", lookup_expr="isnull", help_text="true: only unread ones."
    )

    class Meta:
        model = Notification
        fields = ["unread"]


@extend_schema_view(
    list=extend_schema(summary="Your notifications, newest first"),
    retrieve=extend_schema(summary="One notification"),
)
class NotificationViewSet(ReadOnlyApiViewSet):
    queryset = Notification.objects.none()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        return selectors.notifications_for(self.request.user)

    @extend_schema(request=None, responses=NotificationSerializer, summary="Mark one read")
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = services.notification_mark_read(
            user=request.user, notification_id=self._pk(pk)
        )
        return Response(NotificationSerializer(notification).data)

    @extend_schema(request=None, responses=MarkedReadSerializer, summary="Mark all read")
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        count = services.notification_mark_all_read(user=request.user)
        return Response(MarkedReadSerializer({"marked_read": count}).data)

    @staticmethod
    def _pk(pk) -> int:
        from tradeassure.core.errors import NotFound

        try:
            return int(pk)
        except (TypeError, ValueError) as exc:
            raise NotFound("No such notification.") from exc


_ENDPOINT_EXAMPLE = OpenApiExample(
    "Subscribe to order events",
    value={
        "url": "https://example.com/hooks/tradeassure",
        "description": "ERP sync",
        "topics": ["order.*"],
    },
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(summary="Your organisation's webhook endpoints"),
    retrieve=extend_schema(summary="One webhook endpoint"),
    create=extend_schema(
        summary="Subscribe a URL",
        request=WebhookEndpointCreateSerializer,
        responses={201: WebhookEndpointWithSecretSerializer},
        examples=[_ENDPOINT_EXAMPLE],
        description="The response holds the signing secret, shown only once.",
    ),
    partial_update=extend_schema(
        summary="Change or pause an endpoint",
        request=WebhookEndpointUpdateSerializer,
        responses=WebhookEndpointSerializer,
    ),
    destroy=extend_schema(
        summary="Delete an endpoint (and its delivery log)",
        responses={204: OpenApiResponse(description="Deleted.")},
    ),
)
class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet,
):
    queryset = WebhookEndpoint.objects.none()
    serializer_class = WebhookEndpointSerializer
    filter_backends: list = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        # Webhooks are integrations: admins (and admin keys) only, by the role table.
        if not getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            team_require(self.request.user, Capability.MANAGE_INTEGRATIONS)
        return selectors.webhook_endpoints_for(self.request.user)

    def create(self, request, *args, **kwargs):
        data = _validated(WebhookEndpointCreateSerializer, request.data)
        endpoint, secret = services.webhook_endpoint_create(actor=request.user, **data)
        body = WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        data = _validated(WebhookEndpointUpdateSerializer, request.data)
        endpoint = services.webhook_endpoint_update(
            actor=request.user, endpoint_id=endpoint.pk, **data
        )
        return Response(WebhookEndpointSerializer(endpoint).data)

    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        endpoint = self.get_object()
        services.webhook_endpoint_delete(actor=request.user, endpoint_id=endpoint.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses=WebhookEndpointWithSecretSerializer,
        summary="Rotate the signing secret",
        description="The old secret keeps signing (as a second `v1=`) for 24 hours.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = self.get_object()
        endpoint, secret = services.webhook_endpoint_rotate_secret(
            actor=request.user, endpoint_id=endpoint.pk
        )
        body = WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data
        return Response(body)

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Send a test delivery",
        description="Queues a `webhook.test` delivery; watch it under webhook-deliveries.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        endpoint = self.get_object()
        delivery = services.webhook_send_test(actor=request.user, endpoint_id=endpoint.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = api_filters.IntegerFilter(field_name="endpoint_id")
    status = django_filters.ChoiceFilter(choices=WebhookDelivery.Status.choices)
    topic = django_filters.CharFilter()
    event = api_filters.IntegerFilter(field_name="event_id")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "topic", "event"]


@extend_schema_view(
    list=extend_schema(summary="Webhook deliveries to your endpoints, newest first"),
    retrieve=extend_schema(
        summary="One delivery with its attempts", responses=WebhookDeliveryDetailSerializer
    ),
)
class WebhookDeliveryViewSet(ReadOnlyApiViewSet):
    queryset = WebhookDelivery.objects.none()
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self):
        if not getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            team_require(self.request.user, Capability.MANAGE_INTEGRATIONS)
        queryset = selectors.webhook_deliveries_for(self.request.user)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(
                Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
            )
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return WebhookDeliveryDetailSerializer
        return WebhookDeliverySerializer

    @extend_schema(
        request=None,
        responses={202: WebhookDeliverySerializer},
        summary="Deliver again now",
        description="Same body and delivery id; a fresh 3-day retry window.",
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        delivery = self.get_object()
        delivery = services.webhook_redeliver(actor=request.user, delivery_id=delivery.pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


def _validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
