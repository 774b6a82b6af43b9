"""Supplier companies and their catalogue."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tradeassure.core.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, CURRENCY_CHOICES


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class VerificationStatus(models.TextChoices):
    NOT_SUBMITTED = "not_submitted", "Not submitted"
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class TradeAssuranceStatus(models.TextChoices):
    NONE = "none", "Not applied"
    PENDING = "pending", "Application pending"
    APPROVED = "approved", "Trade Assurance"
    REJECTED = "rejected", "Application rejected"
    SUSPENDED = "suspended", "Suspended"


class Supplier(models.Model):
    """A supplier company: the supplier side of an organisation."""

    class Membership(models.TextChoices):
        FREE = "free", "Free"
        GOLD = "gold", "Gold"

    organisation = models.OneToOneField(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="supplier"
    )
    legal_name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2 code")
    year_established = models.PositiveSmallIntegerField(null=True, blank=True)
    categories = models.ManyToManyField(Category, blank=True, related_name="suppliers")
    declared_capacity = models.PositiveIntegerField(
        default=0, help_text="Units per month, as declared by the supplier"
    )
    verified_capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Units per month, as verified by vetting staff"
    )
    membership = models.CharField(
        max_length=10, choices=Membership.choices, default=Membership.FREE
    )
    membership_expires_on = models.DateField(null=True, blank=True)
    # The expiry date each warning was sent for (30 and 7 days before): a renewal, which moves
    # the expiry date, re-arms both; the sweep sends each at most once per expiry date.
    expiry_warned_30_for = models.DateField(null=True, blank=True, editable=False)
    expiry_warned_7_for = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    description = models.TextField(blank=True, help_text="What the company makes, shown publicly")
    # Business verification, decided by vetting staff (suppliers.services).
    verification_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.NOT_SUBMITTED
    )
    verification_reason = models.TextField(blank=True)
    verification_decided_at = models.DateTimeField(null=True, blank=True)
    # Trade Assurance: status and the limit in USD (suppliers.services keeps both current).
    ta_status = models.CharField(
        "Trade Assurance status",
        max_length=20,
        choices=TradeAssuranceStatus.choices,
        default=TradeAssuranceStatus.NONE,
    )
    ta_status_reason = models.TextField(blank=True)
    ta_status_changed_at = models.DateTimeField(null=True, blank=True)
    ta_limit_usd = models.DecimalField(
        "Trade Assurance limit (USD)",
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        default=Decimal("0"),
    )
    # After a reinstatement, automatic suspension waits until this moment.
    suspension_grace_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["legal_name"]
        indexes = [
            models.Index(fields=["country"]),
            models.Index(fields=["ta_status"]),
            models.Index(fields=["verification_status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ta_limit_usd__gte=0), name="supplier_ta_limit_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(membership="free")
                | models.Q(membership_expires_on__isnull=False),
                name="supplier_gold_membership_has_expiry",
            ),
        ]

    def __str__(self) -> str:
        return self.legal_name

    @property
    def has_trade_assurance(self) -> bool:
        return self.ta_status == TradeAssuranceStatus.APPROVED


class Product(models.Model):
    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=200)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", null=True, blank=True
    )
    description = models.TextField(blank=True)
    specifications = models.TextField(blank=True)
    minimum_order_quantity = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)]
    )
    unit = models.CharField(max_length=30, default="pcs")
    unit_price = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    lead_time_days = models.PositiveSmallIntegerField(default=30)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The product photo, stored privately by tradeassure.core.uploads and served by a view.
    image_name = models.CharField(max_length=255, blank=True)
    image_content_type = models.CharField(max_length=50, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["supplier", "is_active"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(unit_price__gt=0), name="product_unit_price_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_order_quantity__gte=1), name="product_moq_at_least_one"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class VerificationDocument(models.Model):
    """A document a supplier uploaded for business verification (private: see views)."""

    class Kind(models.TextChoices):
        BUSINESS_LICENCE = "business_licence", "Business licence"
        TAX_REGISTRATION = "tax_registration", "Tax registration"
        FACTORY_AUDIT = "factory_audit", "Factory audit report"
        CERTIFICATE = "certificate", "Quality certificate"
        OTHER = "other", "Other"

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    file_name = models.CharField(max_length=255, help_text="Random name under PRIVATE_MEDIA_ROOT")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["-uploaded_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"


class TradeAssuranceApplication(models.Model):
    """A supplier's request for Trade Assurance, with the rule checks as they were when it applied."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="applications")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    rule_checks = models.JSONField(default=list)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-submitted_at", "-pk"]
        verbose_name = "Trade Assurance application"
        constraints = [
            models.UniqueConstraint(
                fields=["supplier"],
                condition=models.Q(status="pending"),
                name="one_pending_ta_application_per_supplier",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.supplier} ({self.get_status_display()})"


class SupplierStatusChange(models.Model):
    """One row per change of verification, Trade Assurance status, limit or membership."""

    class Field(models.TextChoices):
        VERIFICATION = "verification", "Verification"
        TRADE_ASSURANCE = "trade_assurance", "Trade Assurance status"
        LIMIT = "limit", "Trade Assurance limit (USD)"
        MEMBERSHIP = "membership", "Membership"

    supplier = models.ForeignKey(Supplier, on_delete=models.CASCADE, related_name="status_changes")
    field = models.CharField(max_length=20, choices=Field.choices)
    from_value = models.CharField(max_length=100, blank=True)
    to_value = models.CharField(max_length=100)
    reason = models.TextField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        help_text="Empty when the system made the change",
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["supplier", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_field_display()}: {self.from_value or '—'} → {self.to_value}"

    def _readable(self, value: str) -> str:
        """The stored value in words (the raw value stays in the row for machines)."""
        if not value:
            return "—"
        if self.field == self.Field.VERIFICATION and value in VerificationStatus.values:
            return VerificationStatus(value).label
        if self.field == self.Field.TRADE_ASSURANCE and value in TradeAssuranceStatus.values:
            return TradeAssuranceStatus(value).label
        if self.field == self.Field.LIMIT:
            return f"USD {Decimal(value):,.2f}"
        if self.field == self.Field.MEMBERSHIP:
            tier, _, expires = value.partition(":")
            return f"{tier.capitalize()} until {expires}" if expires else tier.capitalize()
        return value

    @property
    def from_display(self) -> str:
        return self._readable(self.from_value)

    @property
    def to_display(self) -> str:
        return self._readable(self.to_value)


class SupplierOrderRecord(models.Model):
    """The facts of one order as the orders/disputes apps report them; metrics are computed here."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        REFUNDED = "refunded", "Refunded"

    supplier = models.ForeignKey(Supplier, on_delete=models.PROTECT, related_name="order_records")
    order_reference = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    amount_usd = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    placed_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    shipment_deadline = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    disputed = models.BooleanField(default=False)
    dispute_lost = models.BooleanField(default=False)
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-placed_at", "-pk"]
        indexes = [
            models.Index(fields=["supplier", "placed_at"]),
            models.Index(fields=["supplier", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0) & models.Q(amount_usd__gte=0),
                name="order_record_amount_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__gte=1, rating__lte=5),
                name="order_record_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["open", "completed", "cancelled", "refunded"]),
                name="order_record_status_known",
            ),
        ]

    def __str__(self) -> str:
        return self.order_reference


class SupplierMetrics(models.Model):
    """The last computed snapshot of a supplier's 180-day metrics, so pages never recompute."""

    supplier = models.OneToOneField(
        Supplier, on_delete=models.CASCADE, primary_key=True, related_name="metrics"
    )
    computed_at = models.DateTimeField()
    window_days = models.PositiveSmallIntegerField()
    orders_count = models.PositiveIntegerField(default=0)
    closed_count = models.PositiveIntegerField(default=0)
    completed_count = models.PositiveIntegerField(default=0)
    completion_rate = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    on_time_rate = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    dispute_rate = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    disputes_lost = models.PositiveIntegerField(default=0)
    average_rating = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)
    ratings_count = models.PositiveIntegerField(default=0)
    median_hours_to_confirm = models.DecimalField(
        max_digits=8, decimal_places=1, null=True, blank=True
    )
    completed_volume_usd = models.DecimalField(
        "completed protected volume, lifetime (USD)",
        max_digits=AMOUNT_MAX_DIGITS,
        decimal_places=AMOUNT_DECIMAL_PLACES,
        default=Decimal("0"),
    )
    open_exposure_usd = models.DecimalField(
        max_digits=AMOUNT_MAX_DIGITS, decimal_places=AMOUNT_DECIMAL_PLACES, default=Decimal("0")
    )

    class Meta:
        verbose_name_plural = "supplier metrics"

    def __str__(self) -> str:
        return f"Metrics of {self.supplier_id}"


class PendingVerification(Supplier):
    """The vetting queue of suppliers whose business verification waits for a decision."""

    class Meta:
        proxy = True
        verbose_name = "pending verification"
        verbose_name_plural = "queue: pending verifications"
