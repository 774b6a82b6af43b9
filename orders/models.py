"""Protected orders: the contract (in versions), its lifecycle, shipment and rating.

An `Order` is the agreement between a buyer organisation and a supplier. Its terms live in
`ContractVersion` rows: every change after submission is a new version the other party accepts.
The order row carries a copy of the terms in force (for lists and search) and the deadlines the
beat sweeps enforce (`*_due_at`, indexed). Status changes happen only in `orders.services`, by the
transition map in `orders.transitions`; each one writes an `OrderEvent`.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from payments.references import escrow_reference_for_order
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, CURRENCY_CHOICES
from tradeassure.core.timeline import TransitionEvent


def _amount(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


class OrderStatus(models.TextChoices):
    PENDING_CONFIRMATION = "pending_confirmation", "Awaiting supplier confirmation"
    AWAITING_PAYMENT = "awaiting_payment", "Awaiting initial payment"
    IN_PRODUCTION = "in_production", "In production"
    AWAITING_BALANCE = "awaiting_balance", "Awaiting balance payment"
    READY_TO_SHIP = "ready_to_ship", "Ready to ship"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered (claim window open)"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"


class Coverage(models.TextChoices):
    PRE_SHIPMENT = "pre_shipment", "Pre-shipment (funds released at shipment)"
    POST_DELIVERY = "post_delivery", "Post-delivery (funds held until you accept the goods)"


class Incoterm(models.TextChoices):
    EXW = "EXW", "EXW - Ex Works"
    FCA = "FCA", "FCA - Free Carrier"
    FOB = "FOB", "FOB - Free On Board"
    CFR = "CFR", "CFR - Cost and Freight"
    CIF = "CIF", "CIF - Cost, Insurance and Freight"
    CPT = "CPT", "CPT - Carriage Paid To"
    CIP = "CIP", "CIP - Carriage and Insurance Paid To"
    DAP = "DAP", "DAP - Delivered At Place"
    DPU = "DPU", "DPU - Delivered at Place Unloaded"
    DDP = "DDP", "DDP - Delivered Duty Paid"


class ShippingMethod(models.TextChoices):
    SEA = "sea", "Sea freight"
    AIR = "air", "Air freight"
    EXPRESS = "express", "Express courier"
    RAIL = "rail", "Rail freight"
    ROAD = "road", "Road freight"


class Party(models.TextChoices):
    """Who acted: the two parties, the platform's timers, or a mediator."""

    BUYER = "buyer", "Buyer"
    SUPPLIER = "supplier", "Supplier"
    SYSTEM = "system", "System"
    MEDIATOR = "mediator", "Mediator"


class Order(models.Model):
    buyer_organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="orders_placed"
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders_placed"
    )
    supplier = models.ForeignKey(
        "suppliers.Supplier", on_delete=models.PROTECT, related_name="orders"
    )
    purchase_order_number = models.CharField(
        "your PO number", max_length=40, blank=True, help_text="Your own reference (optional)."
    )
    status = models.CharField(
        max_length=30, choices=OrderStatus.choices, default=OrderStatus.PENDING_CONFIRMATION
    )

    # The terms in force (a copy of the accepted contract version, for lists and search).
    current_version = models.ForeignKey(
        "ContractVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    summary = models.CharField(max_length=250, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    coverage = models.CharField(max_length=20, choices=Coverage.choices)
    subtotal = _amount(default=0)
    shipping_fee = _amount(default=0)
    total = _amount(default=0)
    initial_payment_amount = _amount(default=0)
    balance_amount = _amount(default=0)
    # The shipment deadline in force: the contract's, moved by extensions and dispute pauses.
    shipment_deadline = models.DateTimeField()

    # Milestones.
    placed_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    initial_paid_at = models.DateTimeField(null=True, blank=True)
    balance_requested_at = models.DateTimeField(null=True, blank=True)
    balance_paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)

    # Deadlines the beat sweeps enforce; null when the timer is not running.
    confirmation_due_at = models.DateTimeField(null=True, blank=True)
    payment_due_at = models.DateTimeField(null=True, blank=True)
    shipment_due_at = models.DateTimeField(null=True, blank=True)
    receipt_due_at = models.DateTimeField(null=True, blank=True)
    completion_due_at = models.DateTimeField(null=True, blank=True)

    # Which party has a contract change waiting for the other's answer ("" when none).
    proposal_pending_from = models.CharField(max_length=20, blank=True)
    rating_score = models.PositiveSmallIntegerField(null=True, blank=True)

    is_late = models.BooleanField(default=False)
    late_flagged_at = models.DateTimeField(null=True, blank=True)
    receipt_extended_by_buyer = models.BooleanField(default=False)
    receipt_extended_by_supplier = models.BooleanField(default=False)
    # A pre-shipment inspection found the goods not conforming and the parties have not agreed
    # what next (orders.inspection): shipment is refused while it is set.
    shipment_blocked_by_inspection = models.BooleanField(default=False)

    # Disputes: the status to return to and the timers paused (seconds left per *_due_at field).
    status_before_dispute = models.CharField(max_length=30, choices=OrderStatus.choices, blank=True)
    paused_timers = models.JSONField(default=dict, blank=True)
    disputed_at = models.DateTimeField(null=True, blank=True)
    ever_disputed = models.BooleanField(default=False)
    dispute_lost = models.BooleanField(default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["buyer_organisation", "status"]),
            models.Index(fields=["supplier", "status"]),
            # The order lists (pages and API, keyset pagination) read a party's orders newest
            # first: these walk them in that order, so a page is an index range, not a sort.
            models.Index(
                fields=["buyer_organisation", "-placed_at", "-id"], name="order_buyer_newest"
            ),
            models.Index(fields=["supplier", "-placed_at", "-id"], name="order_supplier_newest"),
            models.Index(
                fields=["confirmation_due_at"],
                name="order_confirmation_due",
                condition=models.Q(confirmation_due_at__isnull=False),
            ),
            models.Index(
                fields=["payment_due_at"],
                name="order_payment_due",
                condition=models.Q(payment_due_at__isnull=False),
            ),
            models.Index(
                fields=["shipment_due_at"],
                name="order_shipment_due",
                condition=models.Q(shipment_due_at__isnull=False),
            ),
            models.Index(
                fields=["receipt_due_at"],
                name="order_receipt_due",
                condition=models.Q(receipt_due_at__isnull=False),
            ),
            models.Index(
                fields=["completion_due_at"],
                name="order_completion_due",
                condition=models.Q(completion_due_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(total__gte=0), name="order_total_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(initial_payment_amount__gt=0),
                name="order_initial_payment_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(balance_amount__gte=0), name="order_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    total=models.F("initial_payment_amount") + models.F("balance_amount")
                ),
                name="order_payment_terms_add_up",
            ),
            models.CheckConstraint(
                condition=models.Q(total=models.F("subtotal") + models.F("shipping_fee")),
                name="order_total_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("orders:detail", args=[self.pk])

    @property
    def reference(self) -> str:
        return f"TA-{self.pk:06d}" if self.pk else "TA-new"

    @property
    def escrow_reference(self) -> str:
        return escrow_reference_for_order(self.pk)

    @property
    def shipment(self) -> "Shipment | None":
        """The shipment in force: the latest one (earlier ones were replaced in a dispute)."""
        shipments = list(self.shipments.all())
        return shipments[-1] if shipments else None


class ContractVersion(models.Model):
    """One version of an order's contract. Accepted versions are the contract history."""

    class State(models.TextChoices):
        PROPOSED = "proposed", "Proposed, awaiting the other party"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        WITHDRAWN = "withdrawn", "Withdrawn"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=20, choices=State.choices)
    proposed_by_party = models.CharField(max_length=20, choices=Party.choices)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    proposal_note = models.TextField(blank=True)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    coverage = models.CharField(max_length=20, choices=Coverage.choices)
    packaging = models.TextField(blank=True)
    customisation = models.TextField(blank=True)
    shipment_deadline = models.DateTimeField()
    incoterm = models.CharField(max_length=3, choices=Incoterm.choices)
    destination = models.CharField(max_length=200)
    shipping_method = models.CharField(max_length=20, choices=ShippingMethod.choices)
    shipping_fee = _amount()
    subtotal = _amount()
    total = _amount()
    initial_payment_amount = _amount()
    balance_amount = _amount()

    class Meta:
        ordering = ["order", "number"]
        constraints = [
            models.UniqueConstraint(fields=["order", "number"], name="contract_version_unique"),
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(state="proposed"),
                name="contract_one_open_proposal",
            ),
            models.CheckConstraint(
                condition=models.Q(shipping_fee__gte=0), name="contract_shipping_fee_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(initial_payment_amount__gt=0),
                name="contract_initial_payment_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(balance_amount__gte=0), name="contract_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    total=models.F("initial_payment_amount") + models.F("balance_amount")
                ),
                name="contract_payment_terms_add_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} v{self.number}"


class ContractLineItem(models.Model):
    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveSmallIntegerField()
    product = models.ForeignKey(
        "suppliers.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    description = models.CharField(max_length=200)
    specifications = models.TextField(blank=True)
    quality_requirements = models.TextField(
        help_text="Measurable requirements the goods must meet (what an inspector checks)."
    )
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    unit = models.CharField(max_length=30)
    unit_price = _amount()
    line_total = _amount()

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="line_item_position"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(unit_price__gt=0), name="line_unit_price_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.unit} {self.description}"


class OrderEvent(TransitionEvent):
    """The order's timeline: one row per transition (append-only)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    actor_party = models.CharField(max_length=20, choices=Party.choices)

    class Meta:
        ordering = ["order", "id"]
        indexes = [models.Index(fields=["order", "id"])]

    def __str__(self) -> str:
        return f"{self.order} {self.action} {self.from_status}→{self.to_status}"


class Shipment(models.Model):
    """A recorded shipment. Usually one per order; a replacement agreed in a dispute adds one
    that `replaces` the previous, which stays (with its documents) for the record."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    replaces = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by"
    )
    carrier = models.CharField(max_length=100)
    tracking_number = models.CharField(max_length=100)
    shipped_on = models.DateField()
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["order", "recorded_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(replaces__isnull=True),
                name="shipment_one_original_per_order",
            )
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}"


class ShipmentDocument(models.Model):
    class Kind(models.TextChoices):
        COMMERCIAL_INVOICE = "commercial_invoice", "Commercial invoice"
        BILL_OF_LADING = "bill_of_lading", "Bill of lading / air waybill"
        PACKING_LIST = "packing_list", "Packing list"

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    stored_name = models.CharField(max_length=255)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["shipment", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"


class OrderRating(models.Model):
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="rating")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    rated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order}: {self.score}/5"


# The conversation's rows live in their own module; imported here so Django registers them.
from orders.conversation.models import (  # noqa: E402, F401
    OrderMessage,
    OrderMessageAttachment,
    OrderReadReceipt,
)
from orders.inspection.models import (  # noqa: E402, F401
    PreshipmentInspection,
    PreshipmentInspectionEvent,
    PreshipmentInspectionFile,
)
