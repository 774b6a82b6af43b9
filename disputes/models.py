"""Disputes: a buyer's claim on a protected order, its negotiation, mediation and inspection.

Status changes happen only in `disputes.services`, by the map in `disputes.transitions`; each one
writes a `DisputeEvent` in the same transaction. Deadlines the beat sweeps enforce live in
indexed `*_due_at` columns (null when the timer is not running).
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from tradeassure.core.inspections import InspectionVerdict
from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, CURRENCY_CHOICES
from tradeassure.core.timeline import TransitionEvent


def _amount(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, **kwargs
    )


def _due_index(field: str, name: str) -> models.Index:
    return models.Index(
        fields=[field], name=name, condition=models.Q(**{f"{field}__isnull": False})
    )


class DisputeStatus(models.TextChoices):
    AWAITING_SUPPLIER = "awaiting_supplier", "Awaiting the supplier's answer"
    NEGOTIATING = "negotiating", "Negotiating"
    ESCALATED = "escalated", "Escalated, waiting for a mediator"
    UNDER_REVIEW = "under_review", "Under review by a mediator"
    AWAITING_INSPECTION = "awaiting_inspection", "Awaiting inspection"
    RESOLVED = "resolved", "Resolved"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (
    DisputeStatus.AWAITING_SUPPLIER,
    DisputeStatus.NEGOTIATING,
    DisputeStatus.ESCALATED,
    DisputeStatus.UNDER_REVIEW,
    DisputeStatus.AWAITING_INSPECTION,
)
CLOSED_STATUSES = (DisputeStatus.RESOLVED, DisputeStatus.CANCELLED)
MEDIATION_STATUSES = (
    DisputeStatus.ESCALATED,
    DisputeStatus.UNDER_REVIEW,
    DisputeStatus.AWAITING_INSPECTION,
)


class DisputeType(models.TextChoices):
    LATE_SHIPMENT = "late_shipment", "Late or no shipment"
    NOT_RECEIVED = "not_received", "Goods not received"
    QUALITY = "quality", "Quality not as agreed"
    QUANTITY_SHORT = "quantity_short", "Quantity short"
    DAMAGED = "damaged", "Goods damaged"


class Remedy(models.TextChoices):
    """What a party asks for or a mediator decides."""

    FULL_REFUND = "full_refund", "Full refund"
    PARTIAL_REFUND = "partial_refund", "Partial refund"
    NEW_AGREEMENT = "new_agreement", "New agreement (new deadline, price reduction, replacement)"
    NO_REFUND = "no_refund", "No refund (the claim is rejected)"


# What a buyer may request when filing, and what parties may propose to each other.
REQUESTABLE_REMEDIES = (Remedy.FULL_REFUND, Remedy.PARTIAL_REFUND, Remedy.NEW_AGREEMENT)


class DisputeParty(models.TextChoices):
    BUYER = "buyer", "Buyer"
    SUPPLIER = "supplier", "Supplier"
    MEDIATOR = "mediator", "Mediator"
    INSPECTOR = "inspector", "Inspector"
    SYSTEM = "system", "System"


class Dispute(models.Model):
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="disputes")
    type = models.CharField(max_length=20, choices=DisputeType.choices)
    status = models.CharField(
        max_length=30, choices=DisputeStatus.choices, default=DisputeStatus.AWAITING_SUPPLIER
    )
    description = models.TextField()
    requested_remedy = models.CharField(max_length=20, choices=Remedy.choices)
    requested_amount = _amount(null=True, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    # The order status when the dispute opened (decides which outcomes make sense).
    order_status_at_opening = models.CharField(max_length=30)

    # Timers (null when not running).
    supplier_answered_at = models.DateTimeField(null=True, blank=True)
    supplier_response_due_at = models.DateTimeField(null=True, blank=True)
    buyer_may_escalate_at = models.DateTimeField(null=True, blank=True)
    escalation_due_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_by = models.CharField(max_length=20, choices=DisputeParty.choices, blank=True)
    pickup_due_at = models.DateTimeField(null=True, blank=True)

    # Mediation.
    mediator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="disputes_mediated",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    # Set when the mediator must decide on what is there (a party missed a deadline).
    flagged_for_decision = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=300, blank=True)

    # Outcome.
    outcome = models.CharField(max_length=20, choices=Remedy.choices, blank=True)
    outcome_refund = _amount(null=True, blank=True)
    outcome_reason = models.TextField(blank=True)
    resolved_via = models.CharField(max_length=20, blank=True)  # agreement | decision
    supplier_at_fault = models.BooleanField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["order", "status"]),
            _due_index("supplier_response_due_at", "dispute_supplier_response_due"),
            _due_index("escalation_due_at", "dispute_escalation_due"),
            _due_index("pickup_due_at", "dispute_pickup_due"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=~models.Q(status__in=["resolved", "cancelled"]),
                name="dispute_one_open_per_order",
            ),
            models.CheckConstraint(
                condition=models.Q(requested_amount__isnull=True)
                | models.Q(requested_amount__gt=0),
                name="dispute_requested_amount_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(outcome_refund__isnull=True) | models.Q(outcome_refund__gte=0),
                name="dispute_outcome_refund_not_negative",
            ),
        ]
        permissions = [
            ("mediate_dispute", "Can mediate disputes (assign, request, inspect, decide)")
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("disputes:detail", args=[self.pk])

    @property
    def reference(self) -> str:
        return f"D-{self.pk:06d}" if self.pk else "D-new"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class DisputeEvent(TransitionEvent):
    """The dispute's timeline: one row per step (append-only)."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="events")
    actor_party = models.CharField(max_length=20, choices=DisputeParty.choices)

    class Meta:
        ordering = ["dispute", "id"]
        indexes = [models.Index(fields=["dispute", "id"])]

    def __str__(self) -> str:
        return f"{self.dispute} {self.action} {self.from_status}→{self.to_status}"


class DisputeMessage(models.Model):
    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_party = models.CharField(max_length=20, choices=DisputeParty.choices)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["dispute", "id"]

    def __str__(self) -> str:
        return f"{self.dispute} {self.author_party}: {self.body[:40]}"


class Proposal(models.Model):
    """A remedy one party offers the other. Accepting the other side's proposal settles at once."""

    class State(models.TextChoices):
        OPEN = "open", "Waiting for an answer"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Replaced by a counter-proposal"
        CLOSED = "closed", "Closed with the dispute"

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="proposals")
    party = models.CharField(max_length=20, choices=DisputeParty.choices)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    remedy = models.CharField(max_length=20, choices=Remedy.choices)
    refund_amount = _amount(null=True, blank=True)
    new_shipment_deadline = models.DateTimeField(null=True, blank=True)
    price_reduction = _amount(null=True, blank=True)
    replacement = models.BooleanField(default=False)
    terms_note = models.TextField(blank=True)
    message = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["dispute", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dispute"],
                condition=models.Q(state="open"),
                name="dispute_one_open_proposal",
            ),
            models.CheckConstraint(
                condition=models.Q(refund_amount__isnull=True) | models.Q(refund_amount__gt=0),
                name="proposal_refund_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(price_reduction__isnull=True) | models.Q(price_reduction__gt=0),
                name="proposal_price_reduction_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dispute} {self.party}: {self.get_remedy_display()}"


class EvidenceRequest(models.Model):
    """A mediator asks one party for evidence by a due date (enforced by a beat sweep)."""

    class State(models.TextChoices):
        OPEN = "open", "Waiting"
        FULFILLED = "fulfilled", "Provided"
        MISSED = "missed", "Missed the due date"
        CLOSED = "closed", "Closed with the dispute"

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="evidence_requests")
    requested_from = models.CharField(max_length=20, choices=DisputeParty.choices)
    note = models.TextField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.OPEN)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dispute", "id"]
        indexes = [
            models.Index(
                fields=["due_at"], name="evidence_request_due", condition=models.Q(state="open")
            )
        ]

    def __str__(self) -> str:
        return f"{self.dispute}: evidence from the {self.requested_from} by {self.due_at:%Y-%m-%d}"


class Inspection(models.Model):
    """A third-party inspection a mediator ordered; the buyer pays the fee up front."""

    class State(models.TextChoices):
        AWAITING_FEE = "awaiting_fee", "Waiting for the buyer to pay the fee"
        ASSIGNED = "assigned", "Assigned to the inspector"
        REPORTED = "reported", "Reported"
        CANCELLED = "cancelled", "Cancelled"

    # The kernel's choices, shared with the orders' pre-shipment inspection.
    Verdict = InspectionVerdict

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="inspections")
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="inspections"
    )
    instructions = models.TextField()
    fee_amount = _amount()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    state = models.CharField(max_length=20, choices=State.choices, default=State.AWAITING_FEE)
    ordered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    ordered_at = models.DateTimeField()
    fee_due_at = models.DateTimeField(null=True, blank=True)
    fee_payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    fee_paid_at = models.DateTimeField(null=True, blank=True)
    fee_settled = models.BooleanField(default=False)
    verdict = models.CharField(max_length=20, choices=Verdict.choices, blank=True)
    findings = models.TextField(blank=True)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-ordered_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "state"]),
            _due_index("fee_due_at", "inspection_fee_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fee_amount__gt=0), name="inspection_fee_positive"
            ),
            models.UniqueConstraint(
                fields=["dispute"],
                condition=models.Q(state__in=["awaiting_fee", "assigned"]),
                name="inspection_one_active_per_dispute",
            ),
        ]

    def __str__(self) -> str:
        return f"Inspection {self.pk} for {self.dispute}"

    def get_absolute_url(self) -> str:
        return reverse("disputes:inspection_detail", args=[self.pk])


class Evidence(models.Model):
    """A file a party (or the inspector) attached; stored privately under a random name."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="evidence")
    party = models.CharField(max_length=20, choices=DisputeParty.choices)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=300, blank=True)
    stored_name = models.CharField(max_length=255)
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField()
    request = models.ForeignKey(
        EvidenceRequest, on_delete=models.SET_NULL, null=True, blank=True, related_name="files"
    )
    inspection = models.ForeignKey(
        Inspection, on_delete=models.SET_NULL, null=True, blank=True, related_name="report_files"
    )

    class Meta:
        ordering = ["dispute", "id"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.dispute}: {self.original_name}"

    def get_absolute_url(self) -> str:
        return reverse("disputes:evidence", args=[self.dispute_id, self.pk])

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


class CitedMessage(models.Model):
    """A message of the order conversation a party offers as evidence in the dispute.

    The message itself stays where it is (append-only, in the order's thread); this row says who
    cited it, when and why. A message staff hid cannot be cited."""

    dispute = models.ForeignKey(Dispute, on_delete=models.CASCADE, related_name="cited_messages")
    message = models.ForeignKey("orders.OrderMessage", on_delete=models.PROTECT, related_name="+")
    party = models.CharField(max_length=20, choices=DisputeParty.choices)
    cited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)
    cited_at = models.DateTimeField()

    class Meta:
        ordering = ["dispute", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dispute", "message"], name="cited_message_once")
        ]

    def __str__(self) -> str:
        return f"{self.dispute}: message #{self.message_id}"
