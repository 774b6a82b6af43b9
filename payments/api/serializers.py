"""Payments as the payer sees them: status, amount, where to complete it, transfer instructions."""

from rest_framework import serializers

from payments.models import Payment
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS


class PaymentSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    escrow_reference = serializers.CharField(source="escrow.reference", read_only=True)
    payment_url = serializers.SerializerMethodField(
        help_text="The page where the buyer completes the payment (card form or instructions)."
    )

    class Meta:
        model = Payment
        fields = [
            "id",
            "escrow_reference",
            "purpose",
            "method",
            "amount",
            "currency",
            "status",
            "failure_reason",
            "payment_url",
            "created_at",
            "captured_at",
        ]
        read_only_fields = fields

    def get_payment_url(self, payment: Payment) -> str:
        request = self.context.get("request")
        url = payment.get_absolute_url()
        return request.build_absolute_uri(url) if request is not None else url


class PaymentDetailSerializer(PaymentSerializer):
    bank_transfer_instructions = serializers.DictField(
        child=serializers.CharField(),
        read_only=True,
        help_text="For bank transfers: where to send the money and the reference to quote.",
    )

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "bank_transfer_instructions"]
        read_only_fields = fields


class SandboxCardInputSerializer(serializers.Serializer):
    card_number = serializers.CharField(
        max_length=30,
        help_text="Sandbox test card: 4242 4242 4242 4242 is captured; see the README for declines.",
    )


class CardConfirmInputSerializer(serializers.Serializer):
    payment_method = serializers.CharField(
        max_length=100,
        help_text="A payment method created with the provider's own script or SDK (Stripe: pm_…).",
    )


class CardSubmittedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    attempt = serializers.CharField(
        help_text="The card submission this payment took (your Idempotency-Key). A payment "
        "takes one card at a time: another submission gets 409 `payment_already_submitted` "
        "until this one is declined."
    )
    status = serializers.CharField(help_text="The payment's status after the submission.")


class CardConfirmedSerializer(CardSubmittedSerializer):
    provider_status = serializers.CharField(
        help_text="The provider's status, e.g. succeeded or requires_action (3-D Secure)."
    )


class SandboxTransferInputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, min_value=0
    )
    currency = serializers.CharField(max_length=3)


class AcceptedSerializer(serializers.Serializer):
    detail = serializers.CharField()
