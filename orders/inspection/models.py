"""Rows of the pre-shipment inspection (imported by `orders.models`, so they belong to the orders
app): the inspection, its timeline (one row per transition) and the report's files."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from tradeassure.core.inspections import InspectionVerdict
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, CURRENCY_CHOICES
from tradeassure.core.timeline import TransitionEvent


class InspectionStatus(models.TextChoices):
    AWAITING_FEE = "awaiting_fee", "Booked: waiting for the buyer to pay the fee"
    SCHEDULED = "scheduled", "Fee paid: waiting for the inspection"
    CONFORMS = "conforms", "Reported: the goods conform"
    DOES_NOT_CONFORM = "does_not_conform", "Reported: the goods do not conform (shipment blocked)"
    RESOLVED = "resolved", "Did not conform: the parties agreed what next"
    CANCELLED = "cancelled", "Cancelled"


# An order has at most one of these at a time (a second booking is refused).
ACTIVE_STATUSES = (
    InspectionStatus.AWAITING_FEE,
    InspectionStatus.SCHEDULED,
    InspectionStatus.DOES_NOT_CONFORM,
)


class InspectionResolution(models.TextChoices):
    CONTRACT_VERSION = "contract_version", "A new contract version was agreed"
    REPLACEMENT = "replacement", "The supplier replaces the goods (the buyer agreed)"
    REFUND = "refund", "The order was cancelled with a full refund"
    DISPUTE = "dispute", "Settled in a dispute"


class InspectionParty(models.TextChoices):
    BUYER = "buyer", "Buyer"
    SUPPLIER = "supplier", "Supplier"
    INSPECTOR = "inspector", "Inspector"
    SYSTEM = "system", "System"
    MEDIATOR = "mediator", "Mediator"


class PreshipmentInspection(models.Model):
    order = models.ForeignKey(
        "orders.Order", on_delete=models.CASCADE, related_name="preshipment_inspections"
    )
    # The contract version the goods are checked against (the one in force when booked).
    contract_version = models.ForeignKey(
        "orders.ContractVersion", on_delete=models.PROTECT, related_name="+"
    )
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="preshipment_inspections"
    )
    status = models.CharField(
        max_length=20, choices=InspectionStatus.choices, default=InspectionStatus.AWAITING_FEE
    )
    instructions = models.TextField(blank=True)
    fee_amount = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    booked_at = models.DateTimeField()
    # The buyer pays the fee by then, or the booking lapses (a beat sweep); null once paid.
    fee_due_at = models.DateTimeField(null=True, blank=True)
    fee_payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    fee_paid_at = models.DateTimeField(null=True, blank=True)
    # Set once the fee was refunded (supplier at fault) or paid to the inspector.
    fee_settled_at = models.DateTimeField(null=True, blank=True)
    fee_refunded = models.BooleanField(default=False)
    # Dates the supplier proposes for the visit (ISO dates, in order), with its note.
    proposed_dates = models.JSONField(default=list, blank=True)
    dates_note = models.CharField(max_length=500, blank=True)
    verdict = models.CharField(max_length=20, choices=InspectionVerdict.choices, blank=True)
    findings = models.TextField(blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reported_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=20, choices=InspectionResolution.choices, blank=True)
    resolution_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-booked_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "status"], name="preship_inspector_queue"),
            models.Index(
                fields=["fee_due_at"],
                name="preship_inspection_fee_due",
                condition=models.Q(fee_due_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fee_amount__gt=0), name="preship_inspection_fee_positive"
            ),
            models.UniqueConstraint(
                fields=["order"],
                condition=models.Q(status__in=[str(s) for s in ACTIVE_STATUSES]),
                name="preship_inspection_one_active_per_order",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["conforms", "does_not_conform", "resolved"])
                | ~models.Q(verdict=""),
                name="preship_inspection_reported_has_verdict",
            ),
        ]

    def __str__(self) -> str:
        return f"Pre-shipment inspection {self.pk} of order {self.order_id}"

    def get_absolute_url(self) -> str:
        """Where the parties see it: the inspection panel of the order page."""
        return reverse("orders:detail", args=[self.order_id]) + "#inspection"

    def get_inspector_url(self) -> str:
        """Where the inspection company reads the contract and reports."""
        return reverse("orders:inspection_report", args=[self.pk])

    @property
    def blocks_shipment(self) -> bool:
        return self.status == InspectionStatus.DOES_NOT_CONFORM


class PreshipmentInspectionEvent(TransitionEvent):
    """The inspection's timeline: one row per transition (append-only)."""

    inspection = models.ForeignKey(
        PreshipmentInspection, on_delete=models.CASCADE, related_name="events"
    )
    actor_party = models.CharField(max_length=20, choices=InspectionParty.choices)

    class Meta:
        ordering = ["inspection", "id"]
        indexes = [models.Index(fields=["inspection", "id"], name="preship_inspection_timeline")]

    def __str__(self) -> str:
        return f"{self.inspection_id} {self.action} {self.from_status}→{self.to_status}"


class PreshipmentInspectionFile(models.Model):
    """A file of the inspector's report, stored privately (checked by content, like dispute
    evidence) and served only to the order's parties, the inspector and permitted staff."""

    inspection = models.ForeignKey(
        PreshipmentInspection, on_delete=models.CASCADE, related_name="files"
    )
    stored_name = models.CharField(max_length=255)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["inspection", "id"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")
