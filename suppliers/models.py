"""Supplier companies and their catalogue."""

from django.core.validators import MinValueValidator
from django.db import models

from tradeassure.money import AMOUNT_DECIMAL_PLACES, AMOUNT_MAX_DIGITS, CURRENCY_CHOICES


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["legal_name"]
        indexes = [models.Index(fields=["country"])]

    def __str__(self) -> str:
        return self.legal_name


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

    class Meta:
        ordering = ["name"]
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
