"""Orders over the API. Input serializers only shape and type the input; the rules live in
`orders.services` (which answer with ValidationFailed and per-field errors)."""

from decimal import Decimal
from typing import cast

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orders.models import (
    ContractLineItem,
    ContractVersion,
    Coverage,
    Incoterm,
    Order,
    OrderEvent,
    OrderRating,
    Shipment,
    ShipmentDocument,
    ShippingMethod,
)
from orders.selectors import OrderDetail
from orders.terms import ContractTerms, LineItemTerms
from payments.models import Payment
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


# --- input ---------------------------------------------------------------------------------------
class LineItemInputSerializer(serializers.Serializer):
    product_id = serializers.IntegerField(
        required=False, allow_null=True, help_text="A product of this supplier (checks its MOQ)."
    )
    description = serializers.CharField(max_length=200)
    specifications = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=10000
    )
    quality_requirements = serializers.CharField(
        max_length=5000, help_text="Measurable requirements the goods must meet."
    )
    quantity = serializers.DecimalField(max_digits=12, decimal_places=3)
    unit = serializers.CharField(max_length=30)
    unit_price = _money()


class ContractTermsInputSerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=settings.SUPPORTED_CURRENCIES)
    coverage = serializers.ChoiceField(choices=Coverage.choices)
    # many=True turns the call into a ListSerializer, which takes max_length; the stubs type
    # only the child serializer's __init__.
    items = LineItemInputSerializer(many=True, allow_empty=False, max_length=100)  # type: ignore[call-arg]
    shipment_deadline = serializers.DateTimeField()
    incoterm = serializers.ChoiceField(choices=Incoterm.choices)
    destination = serializers.CharField(max_length=200)
    shipping_method = serializers.ChoiceField(choices=ShippingMethod.choices)
    shipping_fee = _money(min_value=Decimal(0))
    initial_payment_amount = _money(
        help_text="Paid into escrow before production; the rest is the balance, due before shipping."
    )
    packaging = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    customisation = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=5000
    )


def contract_terms_from(data: dict) -> ContractTerms:
    """Validated input → the services' ContractTerms value object."""
    items = [LineItemTerms(**item) for item in data["items"]]
    return ContractTerms(**{**data, "items": items})


class OrderCreateInputSerializer(serializers.Serializer):
    supplier_id = serializers.IntegerField()
    purchase_order_number = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=40
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    terms = ContractTermsInputSerializer()


class NoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ProposeChangesInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    terms = ContractTermsInputSerializer()


class PayInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=Payment.Method.choices)
    return_url = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="A path on this site to link back to from the payment page.",
    )


class ExtendShipmentDeadlineInputSerializer(serializers.Serializer):
    new_deadline = serializers.DateTimeField()
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ShipInputSerializer(serializers.Serializer):
    """multipart/form-data: the three shipping documents are PDF, PNG, JPEG or WebP files."""

    carrier = serializers.CharField(max_length=100)
    tracking_number = serializers.CharField(max_length=100)
    shipped_on = serializers.DateField()
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    commercial_invoice = serializers.FileField()
    bill_of_lading = serializers.FileField()
    packing_list = serializers.FileField()


class RateInputSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


# --- output --------------------------------------------------------------------------------------
class PartySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class LineItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContractLineItem
        fields = [
            "position",
            "product_id",
            "description",
            "specifications",
            "quality_requirements",
            "quantity",
            "unit",
            "unit_price",
            "line_total",
        ]
        read_only_fields = fields


class ContractVersionSerializer(serializers.ModelSerializer):
    items = LineItemSerializer(many=True, read_only=True)

    class Meta:
        model = ContractVersion
        fields = [
            "number",
            "state",
            "proposed_by_party",
            "proposal_note",
            "created_at",
            "decided_at",
            "currency",
            "coverage",
            "packaging",
            "customisation",
            "shipment_deadline",
            "incoterm",
            "destination",
            "shipping_method",
            "shipping_fee",
            "subtotal",
            "total",
            "initial_payment_amount",
            "balance_amount",
            "items",
        ]
        read_only_fields = fields


class OrderEventSerializer(serializers.ModelSerializer):
    # A declared field (moved off the class by the metaclass), not Serializer.data.
    data = serializers.DictField(  # type: ignore[assignment]
        read_only=True, help_text="The action's facts (an object)."
    )

    class Meta:
        model = OrderEvent
        fields = [
            "id",
            "action",
            "actor_party",
            "from_status",
            "to_status",
            "note",
            "data",
            "created_at",
        ]
        read_only_fields = fields


class ShipmentDocumentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ShipmentDocument
        fields = ["id", "kind", "original_name", "content_type", "size", "download_url"]
        read_only_fields = fields

    def get_download_url(self, document: ShipmentDocument) -> str:
        return f"/api/v1/orders/{self.context['order_id']}/documents/{document.pk}/"


class ShipmentSerializer(serializers.ModelSerializer):
    documents = serializers.SerializerMethodField()

    class Meta:
        model = Shipment
        fields = ["carrier", "tracking_number", "shipped_on", "note", "recorded_at", "documents"]
        read_only_fields = fields

    @extend_schema_field(ShipmentDocumentSerializer(many=True))
    def get_documents(self, shipment: Shipment) -> list:
        # many=True builds a ListSerializer (data is a ReturnList); the stubs see Serializer.data.
        return cast(
            list,
            ShipmentDocumentSerializer(
                shipment.documents.all(), many=True, context={"order_id": shipment.order_id}
            ).data,
        )


class RatingSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderRating
        fields = ["score", "comment", "created_at"]
        read_only_fields = fields


class MoneySerializer(serializers.Serializer):
    """The order's escrow, from the ledger."""

    currency = serializers.CharField()
    frozen = serializers.BooleanField(help_text="True while a dispute holds the money.")
    captured = _money()
    held = _money()
    released = _money()
    fees = _money()
    refunded = _money()
    supplier_net = _money()


class ActionSerializer(serializers.Serializer):
    action = serializers.CharField(help_text="POST /orders/{id}/<action with - for _>/")
    # A declared field: the serializer metaclass moves it off the class, so it does not shadow
    # Field.label at run time as the stubs assume.
    label = serializers.CharField()  # type: ignore[assignment]


class PaymentDueSerializer(serializers.Serializer):
    purpose = serializers.CharField()
    amount = _money()


class OrderSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    escrow_reference = serializers.CharField(read_only=True)
    supplier = serializers.SerializerMethodField()
    buyer_organisation = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "reference",
            "escrow_reference",
            "status",
            "supplier",
            "buyer_organisation",
            "purchase_order_number",
            "summary",
            "currency",
            "coverage",
            "subtotal",
            "shipping_fee",
            "total",
            "initial_payment_amount",
            "balance_amount",
            "shipment_deadline",
            "is_late",
            "proposal_pending_from",
            "placed_at",
            "confirmed_at",
            "initial_paid_at",
            "balance_paid_at",
            "shipped_at",
            "delivered_at",
            "completed_at",
            "cancelled_at",
            "refunded_at",
            "confirmation_due_at",
            "payment_due_at",
            "shipment_due_at",
            "receipt_due_at",
            "completion_due_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PartySerializer)
    def get_supplier(self, order: Order) -> dict:
        return {"id": order.supplier_id, "name": order.supplier.legal_name}

    @extend_schema_field(PartySerializer)
    def get_buyer_organisation(self, order: Order) -> dict:
        return {"id": order.buyer_organisation_id, "name": order.buyer_organisation.name}


class OrderDetailSerializer(OrderSerializer):
    """One order with its contract, history, shipment, money and what the caller may do next."""

    # Serializes an `orders.selectors.OrderDetail`: the order's own fields are read through
    # `detail.order`, the facts computed for the caller from the detail itself. (Comment, not
    # docstring: the docstring is the schema's description.)

    your_party = serializers.CharField(allow_null=True, help_text="buyer, supplier or null.")
    contract = ContractVersionSerializer(allow_null=True)
    versions = ContractVersionSerializer(many=True)
    timeline = OrderEventSerializer(many=True)
    shipment = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField()
    money = MoneySerializer(
        allow_null=True,
        help_text="The escrow's figures; null when the caller's team role may not see money "
        "(the role table's `see_money`: finance and admins).",
    )
    payment_due = PaymentDueSerializer(allow_null=True)
    actions = ActionSerializer(many=True)

    class Meta(OrderSerializer.Meta):
        fields = [
            *OrderSerializer.Meta.fields,
            "your_party",
            "contract",
            "versions",
            "timeline",
            "shipment",
            "rating",
            "money",
            "payment_due",
            "actions",
        ]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field]:
        """OrderSerializer's fields, pointed at `detail.order` (before binding sets source_attrs)."""
        fields = super().get_fields()
        for name in OrderSerializer.Meta.fields:
            field = fields[name]
            field.source = "order" if field.source == "*" else f"order.{field.source or name}"
        return fields

    @extend_schema_field(ShipmentSerializer(allow_null=True))
    def get_shipment(self, detail: OrderDetail) -> dict | None:
        shipment = detail.shipment  # the one in force (the latest, after a replacement)
        if shipment is None:
            return None
        return ShipmentSerializer(shipment).data

    @extend_schema_field(RatingSerializer(allow_null=True))
    def get_rating(self, detail: OrderDetail) -> dict | None:
        return RatingSerializer(detail.rating).data if detail.rating is not None else None
