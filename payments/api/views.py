"""Payments: a payer's payments, their status, and (sandbox only) completing them by API."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.team import Capability, team_require
from payments import services
from payments.api.serializers import (
    AcceptedSerializer,
    CardConfirmedSerializer,
    CardConfirmInputSerializer,
    CardSubmittedSerializer,
    PaymentDetailSerializer,
    PaymentSerializer,
    SandboxCardInputSerializer,
    SandboxTransferInputSerializer,
)
from payments.models import Payment
from tradeassure.platform.api import filters as api_filters
from tradeassure.platform.api.idempotency import HEADER, caller_identity
from tradeassure.platform.api.viewsets import ReadOnlyApiViewSet


def payments_for_payer(user) -> QuerySet[Payment]:
    """Payments the caller's organisation makes (a selector the payments app does not have)."""
    if getattr(user, "organisation_id", None) is None:
        return Payment.objects.none()
    return Payment.objects.select_related("escrow").filter(
        payer_organisation_id=user.organisation_id
    )


def _attempt(request) -> str:
    """A card submission is identified by the request's Idempotency-Key (per caller)."""
    return f"api:{caller_identity(request)}:{request.headers.get(HEADER, '')}"[:255]


class PaymentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Payment.Status.choices)
    purpose = django_filters.ChoiceFilter(choices=Payment.Purpose.choices)
    escrow_reference = django_filters.CharFilter(
        field_name="escrow__reference", help_text="e.g. `order:42`"
    )
    created_after = api_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = api_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Payment
        fields = ["status", "purpose", "escrow_reference"]


@extend_schema_view(
    list=extend_schema(summary="Payments your organisation makes"),
    retrieve=extend_schema(
        summary="A payment's status (poll until `captured`)", responses=PaymentDetailSerializer
    ),
)
class PaymentViewSet(ReadOnlyApiViewSet):
    """Start a payment with `POST /orders/{id}/pay/`; follow it here."""

    queryset = Payment.objects.none()
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    ordering_fields = ["created_at", "id"]
    ordering = ["-id"]

    def get_queryset(self):
        # Payments are money: finance and admins see them (accounts.team), others get 403.
        if not getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            team_require(self.request.user, Capability.SEE_MONEY)
        return payments_for_payer(self.request.user)

    def retrieve(self, request, *args, **kwargs):
        payment = self.get_object()
        data = PaymentDetailSerializer(payment, context=self.get_serializer_context()).data
        data["bank_transfer_instructions"] = services.payment_instructions(payment=payment)
        return Response(data)

    @extend_schema(
        summary="Sandbox: pay by card",
        description=(
            "Sandbox provider only (a real provider takes cards on its own page, `payment_url`). "
            "The outcome arrives by the provider's webhook: poll the payment. One card per "
            "payment at a time: while one is processing (`submitted`), another submission "
            "gets 409 `payment_already_submitted`; after the capture, 409 `already_paid`."
        ),
        request=SandboxCardInputSerializer,
        responses={202: CardSubmittedSerializer},
        examples=[OpenApiExample("Test card", value={"card_number": "4242 4242 4242 4242"})],
    )
    @action(detail=True, methods=["post"], url_path="sandbox-card")
    def sandbox_card(self, request, id=None):
        payment = self.get_object()
        serializer = SandboxCardInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = services.payment_card_submit(
            payment=payment,
            card_number=serializer.validated_data["card_number"],
            actor=request.user,
            attempt=_attempt(request),
        )
        return Response(
            {
                "detail": "Card submitted; poll the payment for its status.",
                "attempt": submission.attempt,
                "status": submission.status,
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Confirm a card payment with a provider payment method",
        description=(
            "For a real provider (Stripe): confirm the payment with a payment method your own "
            "Stripe integration created. A decline is a 402 problem with code `card_declined`; "
            "nothing is paid until the provider's webhook says so: poll the payment. One card "
            "per payment at a time (409 `payment_already_submitted`)."
        ),
        request=CardConfirmInputSerializer,
        # 402 `card_declined` and 503 `provider_unavailable` are problem+json ("default").
        responses={202: CardConfirmedSerializer},
    )
    @action(detail=True, methods=["post"], url_path="confirm-card")
    def confirm_card(self, request, id=None):
        payment = self.get_object()
        serializer = CardConfirmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        submission = services.payment_card_confirm(
            payment=payment,
            payment_method=serializer.validated_data["payment_method"],
            actor=request.user,
            attempt=_attempt(request),
        )
        return Response(
            {
                "detail": "Card confirmed; poll the payment for its status.",
                "attempt": submission.attempt,
                "status": submission.status,
                "provider_status": submission.provider_status,
            },
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Sandbox: make a bank transfer arrive",
        description="Sandbox provider only: simulates the buyer's transfer arriving.",
        request=SandboxTransferInputSerializer,
        responses={202: AcceptedSerializer},
    )
    @action(detail=True, methods=["post"], url_path="sandbox-transfer")
    def sandbox_transfer(self, request, id=None):
        payment = self.get_object()
        serializer = SandboxTransferInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.payment_transfer_simulate(
            payment=payment, actor=request.user, **serializer.validated_data
        )
        return Response(
            {"detail": "Transfer simulated; poll the payment for its status."},
            status=status.HTTP_202_ACCEPTED,
        )
